# Part of payment_mypos. License LGPL-3.

import functools
import hashlib
import logging
import pprint

import requests

from odoo import _, api, fields, models
from odoo.exceptions import ValidationError
from odoo.tools import file_open

from odoo.addons.payment_mypos import const, ipc


_logger = logging.getLogger(__name__)


@functools.lru_cache(maxsize=4)
def _read_addon_file(path):
    """Return the text of a file shipped with the addon (the public sandbox key material)."""
    with file_open(f'payment_mypos/{path}') as file:
        return file.read()


class PaymentProvider(models.Model):
    _inherit = 'payment.provider'

    code = fields.Selection(
        selection_add=[('mypos', "myPOS")], ondelete={'mypos': 'set default'}
    )
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
        help="myPOS's public certificate (or its bare public key), PEM, from the store's Keys page. "
             "It verifies what myPOS sends. In test mode, empty uses the sandbox certificate.",
        groups='base.group_system',
    )

    #=== COMPUTE METHODS ===#

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
            fingerprint = hashlib.sha256(key.public_key().public_numbers().n.to_bytes(
                (key.key_size + 7) // 8, 'big'
            )).hexdigest()[:16]
            provider.mypos_private_key_info = _(
                "RSA %(bits)s-bit key stored (public key fingerprint %(fp)s)",
                bits=key.key_size, fp=fingerprint,
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
                    "myPOS: " + _("The store private key is not valid: %s", error)
                ) from None
            provider.mypos_private_key_pem = pem
        # Forget the entered value, so that not even the answer to this save echoes it back.
        self.invalidate_recordset(['mypos_private_key'])

    #=== CONSTRAINT METHODS ===#

    @api.constrains(
        'state', 'code', 'mypos_sid', 'mypos_wallet_number', 'mypos_key_index',
        'mypos_private_key', 'mypos_private_key_pem', 'mypos_public_certificate',
    )
    def _check_mypos_credentials(self):
        """Check the credentials: all required when enabled, valid whenever given."""
        for provider in self.filtered(lambda p: p.code == 'mypos' and p.state != 'disabled'):
            if provider.state == 'enabled':
                missing = [
                    provider._fields[name].string for name in (
                        'mypos_sid', 'mypos_wallet_number', 'mypos_key_index',
                        'mypos_private_key_pem', 'mypos_public_certificate',
                    ) if not provider[name]
                ]
                if missing:
                    raise ValidationError("myPOS: " + _(
                        "To enable myPOS, fill in: %s.", ", ".join(missing)
                    ))
            try:
                ipc.check_credentials(provider._mypos_get_credentials())
            except ipc.IPCError as error:
                raise ValidationError("myPOS: " + _("Invalid credentials: %s.", error)) from None

    #=== BUSINESS METHODS ===#

    def _mypos_get_credentials(self):
        """Return the store credentials; in test state, empty ones fall back to the sandbox.

        Note: self.ensure_one()

        :rtype: ipc.Credentials
        """
        self.ensure_one()
        sandbox = self.state != 'enabled'

        def pick(value, fallback):
            return value or (fallback() if sandbox else value)

        return ipc.Credentials(
            sid=pick(self.mypos_sid, lambda: const.SANDBOX_SID),
            wallet_number=pick(self.mypos_wallet_number, lambda: const.SANDBOX_WALLET_NUMBER),
            key_index=pick(self.mypos_key_index, lambda: const.SANDBOX_KEY_INDEX),
            private_key=pick(
                self.mypos_private_key_pem,
                lambda: _read_addon_file(const.SANDBOX_PRIVATE_KEY_FILE),
            ),
            certificate=pick(
                self.mypos_public_certificate,
                lambda: _read_addon_file(const.SANDBOX_CERTIFICATE_FILE),
            ),
        )

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

        Note: self.ensure_one()

        :param str method: `IPCGetTxnStatus`, `IPCRefund`, ...
        :param list params: The call's own (name, value) pairs, in posting order.
        :param str reference: The transaction reference, for the log.
        :return: The answer, verified and with status 0, as a tree of (key, value) pairs.
        :rtype: list
        :raise ipc.RemoteError: If myPOS cannot be reached in time, or its answer is not a
                                correctly signed success; `kind` tells which.
        """
        self.ensure_one()
        credentials = self._mypos_get_credentials()
        fields = ipc.build_request(credentials, method, params)
        url = self._mypos_get_api_url()
        _logger.info(
            "Sending %s to %s for %s:\n%s", method, url, reference,
            pprint.pformat([field for field in fields if field[0] != 'Signature']),
        )
        try:
            response = requests.post(
                url, data=fields, headers={'User-Agent': const.USER_AGENT},
                timeout=const.REQUEST_TIMEOUT,
            )
        except requests.exceptions.Timeout:
            _logger.warning("%s to %s timed out", method, url)
            raise ipc.RemoteError('timeout', _(
                "myPOS did not answer within %(seconds)s seconds (%(url)s).",
                seconds=const.REQUEST_TIMEOUT, url=url,
            )) from None
        except requests.exceptions.RequestException as error:
            _logger.warning("%s to %s failed: %s", method, url, error)
            raise ipc.RemoteError('unreachable', _(
                "myPOS cannot be reached at %(url)s (%(error)s).", url=url, error=type(error).__name__,
            )) from None
        if response.status_code != 200:
            _logger.warning("%s to %s answered HTTP %s", method, url, response.status_code)
            raise ipc.RemoteError('http', _(
                "myPOS answered with HTTP error %(code)s at %(url)s.",
                code=response.status_code, url=url,
            ))
        try:
            tree = ipc.read_answer(response.content, credentials.certificate)
        except ipc.RemoteError as error:
            _logger.warning("%s to %s: %s\n%s", method, url, error, response.text[:2000])
            raise
        _logger.info("myPOS answered %s for %s:\n%s", method, reference, pprint.pformat(tree))
        return tree

    def _mypos_verify_message(self, pairs):
        """Verify a form posted by myPOS and return its fields.

        :param list pairs: (name, value) pairs in received order.
        :rtype: dict
        :raise ipc.IPCError: If the signature is missing or wrong.
        """
        self.ensure_one()
        return ipc.verify_form(pairs, self._mypos_get_credentials().certificate)

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
