# Part of payment_mypos. License LGPL-3.

import contextlib
import functools
import hashlib
import http.client
import ipaddress
import logging
import socket
import threading
import time
import uuid
from urllib.parse import urlsplit

import requests
import urllib3
from werkzeug import urls

from odoo import _, api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.tools import file_open, format_datetime

from odoo.addons.payment import utils as payment_utils

from .. import const, ipc, layouts
from ..controllers.main import MyPOSController

_logger = logging.getLogger(__name__)


@functools.lru_cache(maxsize=4)
def _read_addon_file(path):
    """Return the text of a file shipped with the addon (the public sandbox key material)."""
    with file_open(f'payment_mypos/{path}') as file:
        return file.read()


def _shut_down(sock):
    """End every read on `sock` at once (the deadline of a call to myPOS has passed)."""
    with contextlib.suppress(OSError):  # Already closed: nothing left to end.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)  # Not SSLSocket's: no TLS state touched.


# The largest answer read from myPOS; real ones are a few KB.
MAX_ANSWER_BYTES = 1024 * 1024

# myPOS statuses that say the store's credentials or setup are wrong (API §5, §4.10): a test
# connection answered with one of them fails. Any other signed answer about the dummy order proves
# that myPOS accepted our signature and that we can verify myPOS's.
CONNECTION_FAILURE_STATUSES = {1, 2, 3, 4, 5, 6, 10, 25, 99}


class PaymentProvider(models.Model):
    _name = 'payment.provider'
    _inherit = ['payment.provider', 'mail.thread']

    code = fields.Selection(selection_add=[('mypos', "myPOS")], ondelete={'mypos': 'set default'})
    mypos_sid = fields.Char(
        string="myPOS Store ID (SID)",
        help="The Store ID from myPOS's dashboard (Online stores). In test mode, leave empty to "
        "use myPOS's public sandbox store.",
        groups='base.group_system',
    )
    mypos_wallet_number = fields.Char(
        string="myPOS Wallet Number",
        help="Your myPOS client number (11 digits). In test mode, leave empty to use the sandbox.",
        groups='base.group_system',
    )
    mypos_key_index = fields.Integer(
        string="myPOS Key Index",
        help="The index myPOS gave your store's public key (1 to 99; use the latest one). In test "
        "mode, 0 uses the sandbox's key index.",
        groups='base.group_system',
    )
    # The stored secret. No view shows it and no browser ever receives it: the form edits it
    # through `mypos_private_key`, which reads as empty.
    mypos_private_key_pem = fields.Text(
        string="myPOS Store Private Key (stored)",
        groups='base.group_system',
        copy=False,
    )
    mypos_private_key = fields.Char(
        string="myPOS Store Private Key",
        help="The RSA private key (PEM) whose certificate you uploaded to myPOS. It is never shown "
        "again: leave it blank to keep the stored key. In test mode, empty uses the sandbox.",
        compute='_compute_mypos_private_key',
        inverse='_inverse_mypos_private_key',
        groups='base.group_system',
    )
    mypos_private_key_info = fields.Char(
        string="myPOS Stored Key",
        compute='_compute_mypos_private_key',
        groups='base.group_system',
    )
    mypos_public_certificate = fields.Text(
        string="myPOS Certificate",
        help="myPOS's public certificate (or its bare public key), PEM, from the store's Keys "
        "page. It verifies what myPOS sends. In test mode, empty uses the sandbox certificate.",
        groups='base.group_system',
    )
    # Write-only, like the private key: pasting a pack fills the five fields above on save.
    mypos_configuration_pack = fields.Text(
        string="myPOS Configuration Pack",
        help="The base64 Configuration Pack from myPOS's dashboard (Online stores > your store > "
        "Keys). Importing it replaces the Store ID, wallet number, key index, store private "
        "key and myPOS certificate.",
        compute='_compute_mypos_configuration_pack',
        inverse='_inverse_mypos_configuration_pack',
        groups='base.group_system',
    )
    mypos_environment_warning = fields.Text(
        string="myPOS Environment Warning",
        compute='_compute_mypos_environment_warning',
        groups='base.group_system',
    )
    # What is left of the store after a disconnection: the notifications of payments started
    # before it still name this store, and are still accepted (see `_mypos_get_credentials`).
    mypos_disconnected_sid = fields.Char(
        string="myPOS Disconnected Store ID",
        readonly=True,
        copy=False,
        groups='base.group_system',
    )
    mypos_last_test_date = fields.Datetime(
        string="myPOS Last Connection Test",
        readonly=True,
        copy=False,
        groups='base.group_system',
    )
    mypos_last_test_result = fields.Text(
        string="myPOS Last Test Outcome",
        readonly=True,
        copy=False,
        groups='base.group_system',
    )
    mypos_last_test_success = fields.Boolean(
        string="myPOS Last Test Succeeded",
        readonly=True,
        copy=False,
        groups='base.group_system',
    )

    # Capabilities
    mypos_online_payments = fields.Boolean(
        string="Online Payments",
        help="Offer myPOS's hosted payment page at checkout. When off, myPOS is not offered to "
        "customers, but notifications, refunds and status checks keep working.",
        default=True,
    )
    mypos_terminal_payments = fields.Boolean(
        string="Terminal Payments",
        help="Payments on myPOS card terminals. Coming soon.",
        default=False,
        readonly=True,
    )

    # === COMPUTE METHODS ===#

    def _compute_mypos_configuration_pack(self):
        for provider in self:
            provider.mypos_configuration_pack = False

    def _inverse_mypos_configuration_pack(self):
        """Import a pasted pack; a blank one changes nothing."""
        for provider in self:
            pack = (provider.mypos_configuration_pack or '').strip()
            if pack:
                provider._mypos_import_configuration_pack(pack)
        # Like the private key, the pack (which holds it) is never echoed back.
        self.invalidate_recordset(['mypos_configuration_pack'])

    @api.depends('code', 'state', 'mypos_sid', 'mypos_wallet_number')
    def _compute_mypos_environment_warning(self):
        for provider in self:
            provider.mypos_environment_warning = (
                provider.code == 'mypos' and provider._mypos_get_environment_warning()
            ) or False

    @api.depends('mypos_private_key_pem')
    def _compute_mypos_private_key(self):
        for provider in self:
            provider.mypos_private_key = False
            pem = provider.mypos_private_key_pem
            if not pem:
                provider.mypos_private_key_info = _(
                    "No key stored (test mode signs with myPOS's public sandbox key)"
                )
                continue
            try:
                key = ipc.load_private_key(pem)
            except ipc.InvalidKey:
                provider.mypos_private_key_info = _("A key is stored but cannot be read")
                continue
            fingerprint = hashlib.sha256(
                key.public_key().public_numbers().n.to_bytes((key.key_size + 7) // 8, 'big')
            ).hexdigest()[:16]
            provider.mypos_private_key_info = _(
                "RSA %(bits)s-bit key stored (public key fingerprint %(fp)s)",
                bits=key.key_size,
                fp=fingerprint,
            )

    def _inverse_mypos_private_key(self):
        """Store a newly entered key; a blank entry keeps the stored one."""
        for provider in self:
            value = (provider.mypos_private_key or '').strip()
            if not value:
                continue
            try:
                pem = ipc.normalize_pem(value)
                ipc.load_private_key(pem)
            except ipc.InvalidKey as error:
                raise ValidationError(
                    _("myPOS: The store private key is not valid: %s", error)
                ) from None
            provider.mypos_private_key_pem = pem
        # Forget the entered value, so that not even the answer to this save echoes it back.
        self.invalidate_recordset(['mypos_private_key'])

    # === CONSTRAINT METHODS ===#

    @api.constrains(
        'state',
        'code',
        'mypos_sid',
        'mypos_wallet_number',
        'mypos_key_index',
        'mypos_private_key',
        'mypos_private_key_pem',
        'mypos_public_certificate',
    )
    def _check_mypos_credentials(self):
        """Check the credentials: all required when enabled, valid whenever given."""
        for provider in self.filtered(lambda p: p.code == 'mypos' and p.state != 'disabled'):
            if provider.state == 'enabled':
                missing = [
                    provider._fields[name].string
                    for name in (
                        'mypos_sid',
                        'mypos_wallet_number',
                        'mypos_key_index',
                        'mypos_private_key_pem',
                        'mypos_public_certificate',
                    )
                    if not provider[name]
                ]
                if missing:
                    raise ValidationError(
                        _("myPOS: To enable myPOS, fill in: %s.", ", ".join(missing))
                    )
            try:
                ipc.check_credentials(provider._mypos_get_credentials())
            except ipc.IPCError as error:
                raise ValidationError(_("myPOS: Invalid credentials: %s.", error)) from None

    # === CRUD METHODS ===#

    def write(self, vals):
        """Override of `payment` to forget the parsed keys when the key material changes."""
        res = super().write(vals)
        if {
            'mypos_private_key',
            'mypos_private_key_pem',
            'mypos_public_certificate',
            'mypos_configuration_pack',
        } & set(vals):
            ipc.forget_keys()
        return res

    # === BUSINESS METHODS ===#

    def _mypos_get_credentials(self):
        """Return the store credentials; in test state, empty ones fall back to the sandbox.

        Note: self.ensure_one()

        :rtype: ipc.Credentials
        """
        self.ensure_one()

        def pick(value, fallback, states):
            return value or (fallback() if self.state in states else value)

        # What verifies myPOS's messages also falls back when disabled, so that a disconnected
        # provider still applies the notifications of payments under way; what signs requests
        # falls back in test state only, so a disabled provider never signs with the sandbox key.
        verifying, signing = ('test', 'disabled'), ('test',)
        sid = self.mypos_sid or (self.state == 'disabled' and self.mypos_disconnected_sid)
        return ipc.Credentials(
            sid=pick(sid, lambda: const.SANDBOX_SID, verifying),
            wallet_number=pick(
                self.mypos_wallet_number, lambda: const.SANDBOX_WALLET_NUMBER, signing
            ),
            key_index=pick(self.mypos_key_index, lambda: const.SANDBOX_KEY_INDEX, signing),
            private_key=pick(
                self.mypos_private_key_pem,
                lambda: _read_addon_file(const.SANDBOX_PRIVATE_KEY_FILE),
                signing,
            ),
            certificate=pick(
                self.mypos_public_certificate,
                lambda: _read_addon_file(const.SANDBOX_CERTIFICATE_FILE),
                verifying,
            ),
        )

    @staticmethod
    def _mypos_is_sandbox_certificate(certificate):
        """Tell whether a certificate (or public key) holds myPOS's public sandbox key."""
        sandbox = ipc.load_public_key(_read_addon_file(const.SANDBOX_CERTIFICATE_FILE))
        try:
            key = ipc.load_public_key(certificate)
        except ipc.InvalidKey:
            return False
        return key.public_numbers() == sandbox.public_numbers()

    def _mypos_get_api_url(self):
        """Return the myPOS endpoint of the provider's state.

        In test state the system parameter `payment_mypos.sandbox_url` may replace the sandbox
        (a local emulator); live always uses myPOS's production endpoint.
        """
        self.ensure_one()
        if self.state == 'enabled':
            return const.PRODUCTION_URL
        override = self.env['ir.config_parameter'].sudo().get_param('payment_mypos.sandbox_url')
        return (override or '').strip() or const.SANDBOX_URL

    def _mypos_make_request(self, method, params, reference=None):
        """Send a signed server-to-server call to myPOS and return its verified answer.

        A failure says in its `kind` whether myPOS may have acted on the call: only 'unreachable'
        (no connection could be made: DNS, connection refused, invalid URL) proves that the
        request never left; a broken connection after it left is 'lost', like a timeout.

        Note: self.ensure_one()

        :param str method: `IPCGetTxnStatus`, `IPCRefund`, ...
        :param list params: The call's own (name, value) pairs, in posting order.
        :param str reference: The transaction reference, for the log.
        :return: The answer, verified, with status 0 and read against its layout.
        :rtype: layouts.Message
        :raise ipc.RemoteError: If myPOS cannot be reached in time, or its answer is not a
                                correctly signed success; `kind` tells which.
        """
        self.ensure_one()
        credentials = self._mypos_get_credentials()
        fields = ipc.build_request(credentials, method, params)
        url = self._mypos_get_api_url()
        _logger.info("Sending %s to %s for %s", method, url, reference)
        # The whole call, body included, must fit in REQUEST_TIMEOUT (plus one last read at most).
        deadline = time.monotonic() + const.REQUEST_TIMEOUT
        connect_timeout = min(const.CONNECT_TIMEOUT, const.REQUEST_TIMEOUT / 2)
        try:
            response = requests.post(
                url,
                data=fields,
                headers={'User-Agent': const.USER_AGENT, 'Accept-Encoding': 'identity'},
                timeout=(connect_timeout, const.REQUEST_TIMEOUT - connect_timeout),
                stream=True,
                allow_redirects=False,  # An answer comes from the endpoint itself, or not at all.
            )
            with response:
                body = self._mypos_read_body(response, deadline)
        except requests.exceptions.Timeout as error:
            _logger.warning("%s to %s timed out: %s", method, url, error)
            raise ipc.RemoteError(
                'timeout',
                _(
                    "myPOS did not answer within %(seconds)s seconds (%(url)s).",
                    seconds=const.REQUEST_TIMEOUT,
                    url=url,
                ),
            ) from None
        except requests.exceptions.RequestException as error:
            _logger.warning("%s to %s failed: %s", method, url, error)
            if self._mypos_never_sent(error):
                raise ipc.RemoteError(
                    'unreachable',
                    _(
                        "myPOS cannot be reached at %(url)s (%(error)s).",
                        url=url,
                        error=type(error).__name__,
                    ),
                ) from None
            raise ipc.RemoteError(
                'lost',
                _(
                    "The connection to myPOS at %(url)s broke after the request was sent "
                    "(%(error)s): myPOS may have acted on it.",
                    url=url,
                    error=type(error).__name__,
                ),
            ) from None
        if response.status_code != 200:
            _logger.warning("%s to %s answered HTTP %s", method, url, response.status_code)
            raise ipc.RemoteError(
                'http',
                _(
                    "myPOS answered with HTTP error %(code)s at %(url)s.",
                    code=response.status_code,
                    url=url,
                ),
            )
        try:
            tree = ipc.read_answer(body, credentials.certificate)
            message = layouts.read_answer(tree, method)
        except ipc.RemoteError as error:
            _logger.warning("%s to %s: %s (%s bytes)", method, url, error, len(body))
            raise
        except ipc.MalformedMessage as error:
            _logger.warning("%s to %s: %s", method, url, error)
            raise ipc.RemoteError(
                'garbage',
                _("myPOS's answer is signed, but cannot be read: %s", error),
                tree=tree,
            ) from None
        _logger.info("myPOS answered %s for %s: status %s", method, reference, message.status)
        return message

    @staticmethod
    def _mypos_never_sent(error):
        """Tell whether a failed call provably never left this server (so no money can move)."""
        if isinstance(
            error,
            requests.exceptions.InvalidURL
            | requests.exceptions.MissingSchema
            | requests.exceptions.InvalidSchema,
        ):
            return True
        reason = getattr(error.args[0], 'reason', None) if error.args else None
        return isinstance(error, requests.exceptions.ConnectionError) and isinstance(
            reason, urllib3.exceptions.NewConnectionError
        )

    @staticmethod
    def _mypos_read_body(response, deadline):
        """Return the body of a streamed answer, giving up at `deadline` or past MAX_ANSWER_BYTES.

        Reads wait for one arrival of data at most (`read1`), with the time left as socket
        timeout, and a watchdog shuts the socket at the deadline: an answer trickling in (body or
        chunk headers) cannot stretch the call past it.

        :raise requests.exceptions.Timeout: If the body is still coming at `deadline`.
        :raise requests.exceptions.ConnectionError: If the connection broke before its end.
        :raise ipc.RemoteError: If the body is too large to be an answer of myPOS.
        """
        if response.status_code != 200:
            return b''
        raw = getattr(response.raw, '_fp', None)  # http.client's response, below urllib3's.
        if not hasattr(raw, 'read1'):
            raw = None
        # The socket under http.client's buffered reader (urllib3 may already have let go of
        # its connection object when the answer closes the connection, as HTTP/1.0 ones do).
        sock = getattr(getattr(getattr(raw, 'fp', None), 'raw', None), '_sock', None)
        watchdog = None
        if sock is not None:
            watchdog = threading.Timer(max(deadline - time.monotonic(), 0.0), _shut_down, [sock])
            watchdog.daemon = True
            watchdog.start()
        try:
            return PaymentProvider._mypos_read_chunks(response, raw, sock, deadline)
        except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError):
            if time.monotonic() >= deadline:  # Cut by the watchdog.
                raise requests.exceptions.ReadTimeout(
                    "the answer took too long to arrive"
                ) from None
            raise
        finally:
            if watchdog is not None:
                watchdog.cancel()

    @staticmethod
    def _mypos_read_chunks(response, raw, sock, deadline):
        pieces = response.iter_content(chunk_size=16384)
        chunks, size = [], 0
        while True:
            if raw is not None:
                try:
                    if sock is not None:  # No single read may wait past the deadline either.
                        sock.settimeout(max(deadline - time.monotonic(), 0.001))
                    chunk = raw.read1(16384)
                except (OSError, ValueError, http.client.HTTPException) as error:
                    if isinstance(error, TimeoutError):
                        raise requests.exceptions.ReadTimeout(str(error)) from None
                    raise requests.exceptions.ConnectionError(error) from None
            else:
                chunk = next(pieces, b'')
            if not chunk:
                if raw is not None and getattr(raw, 'length', None):  # Content-Length not reached.
                    raise requests.exceptions.ChunkedEncodingError("the answer was cut off")
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                raise ipc.RemoteError(
                    'garbage',
                    _(
                        "myPOS's answer is larger than %(size)s bytes: it is not an answer of "
                        "myPOS.",
                        size=MAX_ANSWER_BYTES,
                    ),
                )
            if time.monotonic() > deadline:
                raise requests.exceptions.ReadTimeout("the answer took too long to arrive")
        return b''.join(chunks)

    # The compute method of `payment` returns nothing; there is nothing to pass on.
    def _compute_feature_support_fields(self):  # pylint: disable=missing-return
        """Override of `payment` to enable partial refunds (IPCRefund, API §4.5)."""
        super()._compute_feature_support_fields()
        self.filtered(lambda p: p.code == 'mypos').update({'support_refund': 'partial'})

    def _get_supported_currencies(self):
        """Override of `payment` to return the currencies myPOS accepts."""
        supported_currencies = super()._get_supported_currencies()
        if self.code == 'mypos':
            supported_currencies = supported_currencies.filtered(
                lambda c: c.name in const.SUPPORTED_CURRENCIES
            )
        return supported_currencies

    def _get_default_payment_method_codes(self):
        """Override of `payment` to return the default payment method codes."""
        default_codes = super()._get_default_payment_method_codes()
        if self.code != 'mypos':
            return default_codes
        return const.DEFAULT_PAYMENT_METHOD_CODES

    @api.model
    def _get_compatible_providers(self, *args, report=None, **kwargs):
        """Override of `payment` to leave out myPOS when its online payments are turned off."""
        providers = super()._get_compatible_providers(*args, report=report, **kwargs)
        unfiltered_providers = providers
        providers = providers.filtered(lambda p: p.code != 'mypos' or p.mypos_online_payments)
        payment_utils.add_to_report(
            report,
            unfiltered_providers - providers,
            available=False,
            reason=_("online payments turned off in the provider's capabilities"),
        )
        return providers

    # === ACTION METHODS - ADMINISTRATION ===#

    def action_mypos_test_connection(self):
        """Check the setup and make a signed call that moves no money; record and show the outcome.

        A failure is returned as a notification rather than raised, so that the recorded outcome
        is kept.

        Note: self.ensure_one()

        :return: A notification action.
        :rtype: dict
        :raise UserError: If the provider is not myPOS or is disabled.
        """
        self.ensure_one()
        if self.code != 'mypos':
            raise UserError(_("myPOS: This is not a myPOS provider."))
        if self.state == 'disabled':
            raise UserError(
                _(
                    "myPOS: The provider is disabled. Set it to Test Mode (or Enabled) before "
                    "testing the connection."
                )
            )
        success, outcome = self._mypos_test_connection()
        self.write(
            {
                'mypos_last_test_date': fields.Datetime.now(),
                'mypos_last_test_result': outcome,
                'mypos_last_test_success': success,
            }
        )
        return {
            'type': 'ir.actions.client',
            'tag': 'display_notification',
            'params': {
                'title': _("myPOS connection works") if success else _("myPOS connection failed"),
                'message': outcome,
                'type': 'success' if success else 'danger',
                'sticky': not success,
                'next': {'type': 'ir.actions.client', 'tag': 'soft_reload'},
            },
        }

    def action_mypos_disconnect(self):
        """Ask for confirmation, with the count of the payments under way, before disconnecting.

        Note: self.ensure_one()

        :return: The confirmation wizard.
        :rtype: dict
        """
        self.ensure_one()
        if self.code != 'mypos':
            raise UserError(_("myPOS: This is not a myPOS provider."))
        return {
            'type': 'ir.actions.act_window',
            'name': _("Disconnect myPOS"),
            'res_model': 'payment.mypos.disconnect.wizard',
            'view_mode': 'form',
            'target': 'new',
            'context': {'default_provider_id': self.id},
        }

    def action_mypos_import_configuration_pack(self):
        """Report the credentials of the pack the form just imported (on save, by its inverse).

        Note: self.ensure_one()

        :return: A notification action.
        :rtype: dict
        """
        self.ensure_one()
        warning = self.mypos_environment_warning
        message = _(
            "Store ID (SID): %(sid)s, wallet number: %(wallet)s, key index: %(index)s.",
            sid=self.mypos_sid or '-',
            wallet=self.mypos_wallet_number or '-',
            index=self.mypos_key_index or '-',
        )
        return {
            'type': 'ir.actions.client',
            'tag': 'display_notification',
            'params': {
                'title': _("myPOS configuration pack imported"),
                'message': f'{message}\n{warning}' if warning else message,
                'type': 'warning' if warning else 'success',
                'sticky': bool(warning),
                'next': {'type': 'ir.actions.client', 'tag': 'soft_reload'},
            },
        }

    # === BUSINESS METHODS - ADMINISTRATION ===#

    def _mypos_import_configuration_pack(self, pack):
        """Decode and validate myPOS's Configuration Pack, then store its five credentials at once.

        Note: self.ensure_one()

        :param str pack: The base64 text from myPOS's dashboard (API §6.3).
        :raise ValidationError: If the pack is malformed; nothing is changed then.
        """
        self.ensure_one()
        try:
            credentials = ipc.decode_configuration_pack(pack)
        except ipc.IPCError as error:
            raise ValidationError(
                _(
                    "myPOS: The configuration pack cannot be imported: %(reason)s. Copy the whole "
                    "pack again from myPOS's dashboard (Online stores > your store > Keys). "
                    "Nothing was changed.",
                    reason=error,
                )
            ) from None
        self.write(
            {
                'mypos_sid': credentials.sid,
                'mypos_wallet_number': credentials.wallet_number,
                'mypos_key_index': credentials.key_index,
                'mypos_private_key_pem': credentials.private_key,
                'mypos_public_certificate': credentials.certificate,
            }
        )
        _logger.info(
            "myPOS configuration pack imported on provider %s by user %s (SID %s, key index %s)",
            self.id,
            self.env.uid,
            credentials.sid,
            credentials.key_index,
        )
        self.message_post(
            body=_(
                "A myPOS configuration pack was imported by %(user)s: the store credentials were "
                "replaced.",
                user=self.env.user.name,
            )
        )

    def _mypos_get_environment_warning(self):
        """Return a warning when the credentials seem to belong to the other environment, or ''.

        myPOS refuses the sandbox's credentials on its live endpoint and the reverse, with errors
        3 or 5 (API §1, §5); the public sandbox store is the only store known to be a test one.

        Note: self.ensure_one()
        """
        self.ensure_one()
        is_sandbox_store = (
            self.mypos_sid == const.SANDBOX_SID
            or self.mypos_wallet_number == const.SANDBOX_WALLET_NUMBER
        )
        if self.state == 'enabled' and is_sandbox_store:
            return _(
                "These are myPOS's public sandbox credentials, but the provider is Enabled (live): "
                "myPOS refuses them on its live endpoint, so customers could not pay. Import your "
                "store's live configuration pack, or set the provider to Test Mode."
            )
        if self.state == 'test' and self.mypos_sid and not is_sandbox_store:
            return _(
                "These are not the credentials of myPOS's public sandbox store, but the provider "
                "is in Test Mode: if they are your live store's, myPOS refuses them on its "
                "sandbox. Set the provider to Enabled to use them, or clear them to test with the "
                "sandbox store."
            )
        return ''

    def _mypos_get_webhook_problems(self):
        """Return what prevents myPOS from notifying this database's webhook in live use.

        myPOS posts notifications only to a public https URL (API §7 `URL_Notify`); a port other
        than the default one is not known to work.

        Note: self.ensure_one()

        :return: The problems, as sentences (none if the URL is fine).
        :rtype: list
        """
        self.ensure_one()
        url = urls.url_join(self.get_base_url(), MyPOSController._webhook_url)
        parts = urlsplit(url)
        problems = []
        if parts.scheme != 'https':
            problems.append(
                _(
                    "The webhook URL %(url)s is not https: myPOS notifies https URLs only. Serve "
                    "Odoo over https and set the system parameter web.base.url to its https "
                    "address.",
                    url=url,
                )
            )
        try:
            port = parts.port
        except ValueError:
            port = -1
        if port not in (None, 443) and not (parts.scheme == 'http' and port == 80):
            problems.append(
                _(
                    "The webhook URL %(url)s names port %(port)s: use the default https port "
                    "(443), without a port in web.base.url.",
                    url=url,
                    port=port,
                )
            )
        host = (parts.hostname or '').lower()
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            local = host in ('', 'localhost') or host.endswith(('.localhost', '.local'))
        else:
            local = not address.is_global
        if local:
            problems.append(
                _(
                    "The webhook URL %(url)s points to %(host)s, which myPOS cannot reach from the "
                    "internet: set web.base.url to the public domain name of this database.",
                    url=url,
                    host=host or '?',
                )
            )
        return problems

    def _mypos_test_connection(self):
        """Check our side of the setup, then call myPOS about a fresh dummy order.

        The call (`IPCGetTxnStatus`, API §4.8, §4.10) moves no money. It succeeds when myPOS
        answers with a signature that verifies with the configured myPOS certificate and a status
        that does not put the credentials in question.

        Note: self.ensure_one()

        :return: Whether the connection works, and the outcome for the administrator.
        :rtype: tuple(bool, str)
        """
        self.ensure_one()
        problems = []
        credentials = self._mypos_get_credentials()
        try:
            ipc.check_credentials(credentials)
        except ipc.IPCError as error:
            problems.append(_("Invalid credentials: %(error)s.", error=error))
        if self.state == 'enabled':
            if credentials.sid == const.SANDBOX_SID or (
                credentials.wallet_number == const.SANDBOX_WALLET_NUMBER
            ):
                problems.append(
                    _("Sandbox credentials in live mode.")
                    + " "
                    + self._mypos_get_environment_warning()
                )
            problems += self._mypos_get_webhook_problems()
        if problems:  # Calling myPOS would only add noise, or use the wrong store.
            return False, "\n".join(problems)

        url = self._mypos_get_api_url()
        order_id = ipc.make_order_id('odoo-connection-test', uuid.uuid4().hex[:8], int(time.time()))
        method = 'IPCGetTxnStatus'
        try:
            self._mypos_make_request(method, [('OrderID', order_id)], reference=order_id)
            status, tree = 0, []
        except ipc.RemoteError as error:
            status = self._mypos_status_code(error.status)
            if error.kind != 'status' or status in CONNECTION_FAILURE_STATUSES:
                return False, self._mypos_explain_connection_error(error, credentials, url)
            tree = error.tree
        outcome = _(
            "myPOS answered %(method)s at %(url)s and its signature verifies with the configured "
            "myPOS certificate: requests signed with key index %(index)s are accepted for store "
            "%(sid)s.",
            method=method,
            url=url,
            index=credentials.key_index,
            sid=credentials.sid,
        )
        if status:
            outcome += " " + _(
                "(For the dummy order it answered: %(status)s)",
                status=ipc.explain_status(status, ipc.get_field(tree, 'StatusMsg')),
            )
        if self.state == 'test':
            outcome += " " + _("Test mode: payments go to myPOS's sandbox and move no money.")
        return True, outcome

    @staticmethod
    def _mypos_status_code(status):
        try:
            return int(status)
        except (TypeError, ValueError):
            return None

    def _mypos_explain_connection_error(self, error, credentials, url):
        """Tell the administrator which part of the setup a failed call puts in question.

        :param ipc.RemoteError error: Why the call failed.
        :param ipc.Credentials credentials: The credentials the call was signed with.
        :param str url: The endpoint called.
        :return: The explanation: what is wrong, then what to do.
        :rtype: str
        """
        status = self._mypos_status_code(error.status)
        status_text = ipc.explain_status(error.status, ipc.get_field(error.tree or [], 'StatusMsg'))
        if error.kind == 'timeout':
            return _(
                "Endpoint timed out: %(error)s Check that this server can open https connections "
                "to %(url)s (firewall, proxy), then try again; if it persists, myPOS may be "
                "having an outage.",
                error=error,
                url=url,
            )
        if error.kind == 'lost':
            return _(
                "Connection broken: %(error)s Check that nothing between this server and "
                "%(url)s (proxy, firewall) cuts connections, then try again.",
                error=error,
                url=url,
            )
        if error.kind == 'unreachable':
            return _(
                "Endpoint unreachable: %(error)s Check this server's internet access (DNS, "
                "firewall, outgoing https) and, in test mode, the system parameter "
                "payment_mypos.sandbox_url if it is set.",
                error=error,
            )
        if error.kind == 'http':
            return _(
                "Endpoint error: %(error)s The URL may be wrong (check the system parameter "
                "payment_mypos.sandbox_url if it is set) or myPOS may be having an outage; try "
                "again later.",
                error=error,
            )
        if error.kind == 'garbage':
            return _(
                "Not a myPOS answer: %(error)s The endpoint %(url)s does not lead to myPOS's API "
                "(a proxy or a wrong URL?).",
                error=error,
                url=url,
            )
        if error.kind == 'signature':
            return _(
                "The answer's signature does not verify: the configured myPOS certificate does "
                "not match the key myPOS signs with for key index %(index)s. Download the myPOS "
                "certificate of that key index from myPOS's dashboard (Online stores > your store "
                "> Keys), or import the configuration pack again.",
                index=credentials.key_index,
            )
        if status is None:  # Unsigned, without a status.
            return _(
                "myPOS's answer is not signed and gives no status, so it proves nothing: %(error)s",
                error=error,
            )
        if status == 2:
            headline = _(
                "Request signature refused: the store private key or the key index (%(index)s) "
                "does not match the public key uploaded to myPOS.",
                index=credentials.key_index,
            )
        elif status == 4:
            headline = _(
                "Invalid Store ID (SID): myPOS does not know store %(sid)s.",
                sid=credentials.sid,
            )
        elif status in (5, 6, 25):
            headline = _(
                "Wallet or store problem: wallet number %(wallet)s, or store %(sid)s's setup in "
                "myPOS's dashboard.",
                wallet=credentials.wallet_number,
                sid=credentials.sid,
            )
        elif status == 3:
            headline = _(
                "myPOS refused the request: the key index (%(index)s) is not the store's latest "
                "one, or the credentials belong to the other environment.",
                index=credentials.key_index,
            )
        else:
            headline = _("myPOS refused the request.")
        parts = [headline, status_text]
        if status in (3, 4, 5):
            if self.state == 'test' and credentials.sid != const.SANDBOX_SID:
                parts.append(
                    _(
                        "Live credentials in test mode? These are not myPOS's public sandbox "
                        "credentials; myPOS's sandbox refuses a live store's. Set the provider to "
                        "Enabled to use them, or clear them to test with the sandbox store."
                    )
                )
            elif self.state == 'enabled':
                parts.append(
                    _(
                        "Sandbox credentials in live mode? myPOS's live endpoint refuses sandbox "
                        "credentials: import your store's live configuration pack."
                    )
                )
        if error.kind == 'unsigned':
            parts.append(_("(myPOS did not sign this answer, so it cannot be fully trusted.)"))
        return " ".join(parts)

    def _mypos_get_open_transactions(self):
        """Return the myPOS transactions of this provider whose payment may still be under way."""
        self.ensure_one()
        return (
            self.env['payment.transaction']
            .sudo()
            .search(
                [
                    ('provider_id', '=', self.id),
                    ('state', 'in', ('draft', 'pending')),
                ]
            )
        )

    def _mypos_disconnect(self):
        """Forget the store's credentials and disable the provider, keeping myPOS's certificate.

        The certificate and the store's ID (kept aside in `mypos_disconnected_sid`) still verify
        the notifications of the payments under way; nothing can be signed any more.

        Note: self.ensure_one()
        """
        self.ensure_one()
        open_count = len(self._mypos_get_open_transactions())
        former_sid = self.mypos_sid or self.mypos_disconnected_sid
        self.write(
            {
                'state': 'disabled',
                'mypos_sid': False,
                'mypos_wallet_number': False,
                'mypos_key_index': 0,
                'mypos_private_key_pem': False,
                'mypos_disconnected_sid': former_sid,
                'mypos_last_test_date': False,
                'mypos_last_test_result': False,
                'mypos_last_test_success': False,
            }
        )
        now = fields.Datetime.now()
        _logger.info(
            "myPOS account disconnected from provider %s by user %s (%s open transactions)",
            self.id,
            self.env.uid,
            open_count,
        )
        self.message_post(
            body=_(
                "myPOS account disconnected by %(user)s on %(date)s: Store ID, wallet number, key "
                "index and private key cleared, provider disabled. %(count)s transaction(s) were "
                "still draft or pending; their notifications are still verified with the kept "
                "myPOS certificate and applied.",
                user=self.env.user.name,
                date=format_datetime(self.env, now),
                count=open_count,
            )
        )
