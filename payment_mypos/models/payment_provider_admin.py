# Part of payment_mypos. License LGPL-3.

import ipaddress
import logging
import time
import uuid
from urllib.parse import urlsplit

from werkzeug import urls

from odoo import _, fields, models
from odoo.exceptions import UserError, ValidationError

from .. import compat, const, ipc, utils
from ..controllers.main import MyPOSController

_logger = logging.getLogger(__name__)

Failure, Status = ipc.Failure, ipc.Status


# A further class of the same model, as models/ splits one that grows too long (README, Layout).
class PaymentProvider(models.Model):
    """The administrator's side of a myPOS provider: connection test, setup checks, configuration
    pack, disconnection."""

    _inherit = 'payment.provider'  # pylint: disable=consider-merging-classes-inherited

    # === BUSINESS METHODS - SETUP CHECKS ===#

    def _mypos_get_environment_warning(self):
        """Return a warning when the credentials seem to belong to the other environment, or ''.

        myPOS refuses the sandbox's credentials on its live endpoint and the reverse (errors 3 or
        5: https://developers.mypos.com/apis/checkout-api/checkout-getting-started/error-messages).
        """
        self.ensure_one()
        sandbox = utils.is_sandbox_store(self.mypos_sid, self.mypos_wallet_number)
        if self.state == 'enabled' and sandbox:
            return _(
                "These are myPOS's public sandbox credentials, but the provider is Enabled (live): "
                "myPOS refuses them on its live endpoint, so customers could not pay. Import your "
                "store's live configuration pack, or set the provider to Test Mode."
            )
        if self.state == 'test' and self.mypos_sid and not sandbox:
            return _(
                "These are not the credentials of myPOS's public sandbox store, but the provider "
                "is in Test Mode: if they are your live store's, myPOS refuses them on its "
                "sandbox. Set the provider to Enabled to use them, or clear them to test with the "
                "sandbox store."
            )
        return ''

    def _mypos_webhook_problems(self):
        """Return what prevents myPOS from notifying this database's webhook in live use.

        myPOS posts notifications only to a public https URL (`URL_Notify`,
        https://developers.mypos.com/apis/checkout-api/purchase-notify); a port other than the
        default one is not known to work.

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

    # === BUSINESS METHODS - TEST CONNECTION ===#

    def _mypos_test_connection(self):
        """Check our side of the setup, then call myPOS about a fresh dummy order.

        The call (`IPCGetTxnStatus`) moves no money. It succeeds when myPOS answers with a
        signature that verifies with the configured myPOS certificate and a status that does not
        put the credentials in question: a success, a refusal about the dummy order, or a status
        that is not a code (`Failure.UNCLEAR`; the signature alone proves both keys), which the
        outcome quotes.

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
            problems.append(
                _("Invalid credentials: %(error)s.", error=utils.explain_error(self.env, error))
            )
        if self.state == 'enabled':
            if utils.is_sandbox_store(credentials.sid, credentials.wallet_number):
                problems.append(
                    _("Sandbox credentials in live mode.")
                    + " "
                    + self._mypos_get_environment_warning()
                )
            problems += self._mypos_webhook_problems()
        if problems:  # Calling myPOS would only add noise, or use the wrong store.
            return False, "\n".join(problems)

        url = self._mypos_get_api_url()
        order_id = ipc.make_order_id('odoo-connection-test', uuid.uuid4().hex[:8], int(time.time()))
        method = ipc.const.TXN_STATUS_METHOD
        status, status_msg = None, ''  # The dummy order's status, when not a success.
        try:
            self._mypos_make_request(method, [('OrderID', order_id)])
        except ipc.RemoteError as error:
            # A signed answer that does not put the credentials in question proves the connection.
            proven = error.kind is Failure.UNCLEAR or (
                error.kind is Failure.STATUS
                and error.status_code not in ipc.const.CONNECTION_FAILURE_STATUSES
            )
            if not proven:
                return False, self._mypos_explain_connection_error(error, credentials, url)
            status, status_msg = error.status, ipc.get_field(error.tree or [], 'StatusMsg')
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
                status=utils.explain_status(self.env, status, status_msg),
            )
        if self.state == 'test':
            outcome += " " + _("Test mode: payments go to myPOS's sandbox and move no money.")
        return True, outcome

    def _mypos_explain_connection_error(self, error, credentials, url):
        """Tell the administrator which part of the setup a failed call puts in question.

        :param ipc.RemoteError error: Why the call failed.
        :param ipc.Credentials credentials: The credentials the call was signed with.
        :param str url: The endpoint called.
        :return: The explanation: what is wrong, then what to do.
        :rtype: str
        """
        env = self.env
        explained = utils.explain_error(env, error)
        if error.kind is Failure.UNCLEAR:  # Signed: its explanation says all there is to say.
            return explained
        hint = const.FAILURE_HINTS.get(error.kind)
        if hint is not None:
            params = {'error': explained, 'url': url, 'index': credentials.key_index}
            return utils.translate(env, hint, params)
        status = error.status_code
        if not utils.is_status(error.status):  # Unsigned, without a status.
            return _(
                "myPOS's answer is not signed and gives no status, so it proves nothing: %(error)s",
                error=explained,
            )
        headline = const.STATUS_HEADLINES.get(status)
        store = {
            'index': credentials.key_index,
            'sid': credentials.sid,
            'wallet': credentials.wallet_number,
        }
        parts = [
            utils.translate(env, headline, store) if headline else _("myPOS refused the request."),
            utils.explain_status(env, error.status, ipc.get_field(error.tree or [], 'StatusMsg')),
        ]
        if status in const.ENVIRONMENT_STATUSES:
            if self.state == 'test' and credentials.sid != ipc.const.SANDBOX_SID:
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
        if error.kind is Failure.UNSIGNED:
            parts.append(_("(myPOS did not sign this answer, so it cannot be fully trusted.)"))
        return " ".join(parts)

    # === BUSINESS METHODS - CONFIGURATION PACK AND DISCONNECTION ===#

    def _mypos_import_configuration_pack(self, pack):
        """Decode and validate myPOS's Configuration Pack, then store its five credentials at once.

        :param str pack: The base64 text from myPOS's dashboard (Online stores > Keys).
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
                    reason=utils.explain_error(self.env, error),
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

    def _mypos_get_open_transactions(self):
        """Return the myPOS transactions of this provider whose payment may still be under way."""
        self.ensure_one()
        return (
            self.env['payment.transaction']
            .sudo()
            .search([('provider_id', '=', self.id), ('state', 'in', ('draft', 'pending'))])
        )

    def _get_reset_values(self):
        """Override of `payment` (19.0: its Reset Credentials; here also what Disconnect clears)
        to forget the store's credentials but keep what verifies the payments under way: myPOS's
        certificate and the store's ID (in `mypos_disconnected_sid`)."""
        values = super()._get_reset_values() if compat.ODOO_19 else {}
        if self.code == 'mypos':
            values.update(
                {
                    'mypos_sid': False,
                    'mypos_wallet_number': False,
                    'mypos_key_index': 0,
                    'mypos_private_key_pem': False,
                    'mypos_disconnected_sid': self.mypos_sid or self.mypos_disconnected_sid,
                    'mypos_last_test_date': False,
                    'mypos_last_test_result': False,
                    'mypos_last_test_success': False,
                }
            )
        return values

    def _mypos_disconnect(self):
        """Forget the store's credentials and disable the provider, keeping myPOS's certificate.

        The certificate and the store's ID (kept aside in `mypos_disconnected_sid`) still verify
        the notifications of the payments under way; nothing can be signed any more.

        :return: How many of its transactions were still open.
        :rtype: int
        """
        self.ensure_one()
        open_count = len(self._mypos_get_open_transactions())
        self.write({'state': 'disabled', **self._get_reset_values()})
        _logger.info(
            "myPOS account disconnected from provider %s by user %s (%s open transactions)",
            self.id,
            self.env.uid,
            open_count,
        )
        return open_count

    # === ACTION METHODS ===#

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
