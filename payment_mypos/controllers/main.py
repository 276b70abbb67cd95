# Part of payment_mypos. License LGPL-3.

import logging

from odoo import _, http
from odoo.exceptions import ValidationError
from odoo.http import request

from .. import const, ipc

_logger = logging.getLogger(__name__)


class MyPOSController(http.Controller):
    _return_url = '/payment/mypos/return'
    _cancel_url = '/payment/mypos/cancel'
    _webhook_url = '/payment/mypos/webhook'

    # The messages each route applies; any other signed message is refused there.
    _WEBHOOK_METHODS = (
        const.NOTIFY_METHODS['done'],
        const.NOTIFY_METHODS['cancel'],
        const.RETURN_METHODS['cancel'],
    )
    _RETURN_METHODS = (const.RETURN_METHODS['ok'], const.RETURN_METHODS['cancel'])

    @http.route(
        _webhook_url,
        type='http',
        auth='none',
        methods=['POST'],
        csrf=False,
        save_session=False,
        readonly=False,  # `auth='none'` routes default to a read-only cursor.
    )
    def mypos_webhook(self, **_kwargs):
        """Apply a notification from myPOS (the IPN) and acknowledge it with exactly `OK`.

        Anything else than `OK` tells myPOS that the notification was refused: for a payment it
        then reverses the payment and sends `IPCPurchaseRollback`. So `OK` is answered only when
        the message is signed by myPOS, matches a transaction of ours and was applied (repeats
        included); every refusal is logged as a warning and leaves the transaction as it was.
        A refused message that myPOS did sign (its amount, currency or store does not fit the
        transaction, or the transaction cannot take it) is also recorded in the transaction's
        myPOS log, with the reason, for whoever has to sort it out; forged or unmatched messages
        leave nothing in the database.

        The route is `auth='none'` and runs as the public user, as `auth='public'` would, minus
        the work `auth='public'` does at every request to find that user: a query checking that
        it exists (without `website`, about 5% of a notification's time, see
        docs/BENCHMARKS.md) or the current website's lookup (with it). Everything the handler
        touches goes through `sudo()` anyway.

        :return: `OK` (HTTP 200), or the reason of the refusal (HTTP 400), as plain text.
        """
        request.update_env(user=request.env['ir.model.data']._xmlid_to_res_id('base.public_user'))
        verified = {}
        try:
            self._mypos_handle_message(self._WEBHOOK_METHODS, verified=verified)
        except (ipc.IPCError, ValidationError) as error:
            request.env.cr.rollback()  # A refusal leaves nothing behind, not even half a change.
            reason = error.args[0] if error.args else str(error)
            _logger.warning("Refused a myPOS notification: %s", reason)
            if verified:
                verified['tx']._mypos_log_received(
                    verified['data'], _("Refused (myPOS was not answered OK): %s", reason)
                )
            return request.make_response(
                f'REFUSED: {reason}',
                headers=[('Content-Type', 'text/plain; charset=utf-8')],
                status=400,
            )
        return request.make_response('OK', headers=[('Content-Type', 'text/plain; charset=utf-8')])

    @http.route(
        [_return_url, _cancel_url],
        type='http',
        auth='public',
        methods=['GET', 'POST'],
        csrf=False,
        save_session=False,
    )
    def mypos_return_from_checkout(self, **_kwargs):
        """Bring the shopper back from myPOS's page to Odoo's payment status page.

        myPOS posts (or links) `IPCPurchaseOK` to `URL_OK` and `IPCPurchaseCancel` to `URL_Cancel`.
        A correctly signed cancel cancels a draft or pending transaction; nothing here ever marks
        a transaction paid: that is the notification's job. The route is flagged with
        `save_session=False` so that a browser which does not send the session cookie on this
        cross-site POST keeps its session, and with it the transaction shown on the status page.
        """
        try:
            self._mypos_handle_message(self._RETURN_METHODS, optional=True)
        except (ipc.IPCError, ValidationError) as error:
            request.env.cr.rollback()
            _logger.warning(
                "Ignored a myPOS browser return: %s", error.args[0] if error.args else error
            )
        return request.redirect('/payment/status')

    @staticmethod
    def _mypos_read_fields():
        """Return the posted (or, for GET, query) fields in received order, blank values kept.

        :rtype: list
        :raise ipc.MalformedMessage: If the body is too large, not a form, or repeats a field.
        """
        httprequest = request.httprequest
        if (httprequest.content_length or 0) > ipc.MAX_FORM_BYTES:
            raise ipc.MalformedMessage(f"the body is larger than {ipc.MAX_FORM_BYTES} bytes")
        if httprequest.method == 'GET':
            return ipc.parse_form(httprequest.query_string) if httprequest.query_string else []
        if httprequest.form:  # Odoo parsed it into an ordered multi-dict: order and blanks kept.
            return ipc.check_pairs(list(httprequest.form.items(multi=True)))
        data = httprequest.get_data()
        return ipc.parse_form(data) if data else []

    def _mypos_handle_message(self, allowed_methods, optional=False, verified=None):
        """Read, verify and apply the message of the current request.

        :param tuple allowed_methods: The `IPCmethod` values this route applies.
        :param bool optional: Whether a request without any field is fine (browser returns).
        :param dict verified: When given, receives the transaction (`tx`) and the verified fields
                              (`data`) once the signature verifies, for the caller's records.
        :raise ipc.IPCError: If the message is malformed or not signed by myPOS.
        :raise ValidationError: If it matches no transaction or does not fit it.
        """
        pairs = self._mypos_read_fields()
        if not pairs and optional:
            return
        ipc.check_pairs(pairs)
        _logger.info(
            "Message received from myPOS on %s: %s",
            request.httprequest.path,
            [(name, value) for name, value in pairs if name != 'Signature'],
        )
        tx_sudo = (
            request.env['payment.transaction']
            .sudo()
            ._get_tx_from_notification_data('mypos', {'OrderID': ipc.get_field(pairs, 'OrderID')})
        )
        notification_data = tx_sudo.provider_id._mypos_verify_message(pairs)
        if verified is not None:
            verified.update(tx=tx_sudo, data=notification_data)
        method = notification_data.get('IPCmethod')
        if method not in allowed_methods:
            raise ValidationError(_("myPOS: %s is not accepted on this URL.", method))
        tx_sudo._handle_notification_data('mypos', notification_data)
