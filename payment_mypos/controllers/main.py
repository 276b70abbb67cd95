# Part of payment_mypos. License LGPL-3.

import io
import logging
import re

from werkzeug.exceptions import abort

from odoo import _, http
from odoo.exceptions import ValidationError
from odoo.http import request

from .. import compat, ipc, utils

_logger = logging.getLogger(__name__)

# myPOS may bring the shopper back with a GET whose query string holds the signed IPCPurchaseOK:
# card token, e-mail, phone. The access log (werkzeug's request line) keeps only the path.
_RETURN_QUERY_RE = re.compile(r'(/payment/mypos/(?:return|cancel))\?[^\s"]*')


def _redact_return_query(value):
    return _RETURN_QUERY_RE.sub(r'\1?[not logged]', value) if isinstance(value, str) else value


class ReturnQueryFilter(logging.Filter):
    """Drop the query string of myPOS's return URLs from the access log's lines."""

    def filter(self, record):
        record.msg = _redact_return_query(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redact_return_query(arg) for arg in record.args)
        return True


_werkzeug_logger = logging.getLogger('werkzeug')
if not any(isinstance(f, ReturnQueryFilter) for f in _werkzeug_logger.filters):
    _werkzeug_logger.addFilter(ReturnQueryFilter())


class MyPOSController(http.Controller):
    _return_url = '/payment/mypos/return'
    _cancel_url = '/payment/mypos/cancel'
    _webhook_url = '/payment/mypos/webhook'

    # The messages each route applies
    # (https://developers.mypos.com/apis/checkout-api/purchase-notify,
    # https://developers.mypos.com/apis/checkout-api/purchase-notify-ok): myPOS posts its
    # notifications to our notify URL and sends the shopper's browser, with the OK or the cancel, to
    # the return URLs. Any other message, signed or not, is refused there.
    # The pre-authorisation's own messages likewise
    # (https://developers.mypos.com/apis/checkout-api/pre-authorization-notify).
    _WEBHOOK_METHODS = (
        ipc.const.NOTIFY_METHODS['done'],
        ipc.const.NOTIFY_METHODS['cancel'],
        ipc.const.PREAUTH_NOTIFY_METHOD,
    )
    _RETURN_METHODS = (
        ipc.const.RETURN_METHODS['ok'],
        ipc.const.RETURN_METHODS['cancel'],
        *ipc.const.PREAUTH_RETURN_METHODS.values(),
    )

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
        the message is signed by myPOS, has the layout of a notification, matches a transaction
        of ours and was applied (repeats included); every refusal is logged as a warning and
        leaves the transaction as it was. A refused message that myPOS did sign (its amount,
        currency or store does not fit the transaction, or the transaction cannot take it) is
        also recorded in the transaction's myPOS log, with the reason; forged or unmatched
        messages leave nothing in the database.

        The route is `auth='none'` and runs as the public user, as `auth='public'` would, minus
        the per-request lookup of that user (see docs/BENCHMARKS.md); everything the handler
        touches goes through `sudo()` anyway.

        :return: `OK` (HTTP 200), or the reason of the refusal (HTTP 400), as plain text.
        """
        request.update_env(user=request.env['ir.model.data']._xmlid_to_res_id('base.public_user'))
        tx_sudo = message = None
        try:
            tx_sudo, message = self._mypos_verified(
                self._mypos_read_fields(), self._WEBHOOK_METHODS
            )
            self._mypos_apply(tx_sudo, message)
        except (ipc.IPCError, ValidationError) as error:
            request.env.cr.rollback()  # A refusal leaves nothing behind, not even half a change.
            reason = error.args[0] if error.args else str(error)
            _logger.warning("Refused a myPOS notification: %s", reason)
            if message is not None:  # For the log, in the reader's language; myPOS gets `reason`.
                explained = (
                    utils.explain_error(tx_sudo.env, error)
                    if isinstance(error, ipc.IPCError)
                    else reason
                )
                self._mypos_log_received(
                    tx_sudo, message, _("Refused (myPOS was not answered OK): %s", explained)
                )
                if message.method == ipc.const.PREAUTH_NOTIFY_METHOD:  # A hold may remain.
                    tx_sudo._mypos_preauth_notify_refused(explained)
            return self._mypos_refusal(reason)
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
        A correctly signed cancel cancels the draft transaction it names; nothing here ever marks
        a transaction paid: that is the notification's job. The route is flagged with
        `save_session=False` so that a browser which does not send the session cookie on this
        cross-site POST keeps its session, and with it the transaction shown on the status page.
        """
        try:
            pairs = self._mypos_read_fields()
            if pairs:
                tx_sudo, message = self._mypos_verified(pairs, self._RETURN_METHODS)
                self._mypos_apply(tx_sudo, message)
        except (ipc.IPCError, ValidationError) as error:
            request.env.cr.rollback()
            _logger.warning(
                "Ignored a myPOS browser return: %s", error.args[0] if error.args else error
            )
        return request.redirect('/payment/status')

    @staticmethod
    def _mypos_refusal(reason, close=False):
        """Return the answer that tells myPOS its message was refused, and why."""
        headers = [('Content-Type', 'text/plain; charset=utf-8')]
        if close:  # The rest of the body was not read: the connection cannot be reused.
            headers.append(('Connection', 'close'))
        return request.make_response(f'REFUSED: {reason}', headers=headers, status=400)

    @staticmethod
    def _mypos_apply(tx_sudo, message):
        """Apply a verified message posted to us and record it in the transaction's myPOS log.

        A message that changed nothing may be a replay: it is counted, not added again.
        """
        before = (tx_sudo.state, tx_sudo.provider_reference)
        compat.process_message(tx_sudo, message)
        repeat = (tx_sudo.state, tx_sudo.provider_reference) == before
        MyPOSController._mypos_log_received(
            tx_sudo, message, _("Received and verified"), once=repeat
        )

    @staticmethod
    def _mypos_log_received(tx_sudo, message, outcome, once=True):
        """Record a verified message posted to us in the transaction's myPOS log."""
        request.env['payment.mypos.log']._mypos_add(
            tx_sudo,
            'in',
            message.method,
            list(message.pairs),
            order_id=message.order_id,
            outcome=outcome,
            once=once,
        )

    @staticmethod
    def _mypos_verified(pairs, methods):
        """Read a form by its layout, find the one transaction it names, verify its signature.

        Nothing of the message reaches the server log before its signature verifies.

        :return: The transaction (sudo) and the verified message.
        :rtype: tuple
        :raise ipc.IPCError: If the form is malformed or not signed by myPOS.
        :raise ValidationError: If it names no transaction, or could name another one.
        """
        form = ipc.read_form(pairs, methods)
        tx_sudo = request.env['payment.transaction'].sudo()._mypos_find_tx(form)
        message = tx_sudo._mypos_verify(form)
        _logger.info(
            "myPOS %s verified for OrderID %s on %s",
            message.method,
            message.order_id,
            request.httprequest.path,
        )
        return tx_sudo, message

    @classmethod
    def _mypos_limit_body(cls):
        """Refuse a body over `ipc.MAX_FORM_BYTES` before Odoo parses it, chunked ones included.

        Called by `ir.http._pre_dispatch`, before Odoo reads the form: a declared length over the
        limit is refused at once; a chunked body is read up to the limit and, when it fits, handed
        on with its length as if it had been sent with one.
        """
        environ = request.httprequest._HTTPRequest__environ  # The WSGI environ, as `bus` reads it.
        limit = ipc.MAX_FORM_BYTES
        too_large = _("the body is larger than %s bytes", limit)
        if environ.get('wsgi.input_terminated'):  # Chunked: read as sent, whatever it declares.
            try:
                body = environ['wsgi.input'].read(limit + 1)
            except (OSError, ValueError):  # A broken chunk.
                abort(cls._mypos_refusal(_("the body is not validly chunked"), close=True))
            if len(body) > limit:
                abort(cls._mypos_refusal(too_large, close=True))
            environ['wsgi.input'] = io.BytesIO(body)
            environ['CONTENT_LENGTH'] = str(len(body))
            environ.pop('wsgi.input_terminated')
            environ.pop('HTTP_TRANSFER_ENCODING', None)  # Else the length would be ignored.
            return
        try:
            length = int(environ.get('CONTENT_LENGTH') or 0)
        except ValueError:
            abort(cls._mypos_refusal(_("the Content-Length is not a number"), close=True))
        if length > limit:
            abort(cls._mypos_refusal(too_large, close=True))

    @staticmethod
    def _mypos_read_fields():
        """Return the posted (or, for GET, query) fields in received order, blank values kept.

        :rtype: list
        :raise ipc.MalformedMessage: If the body is too large, not a form, or repeats a field.
        """
        httprequest = request.httprequest
        if (httprequest.content_length or 0) > ipc.MAX_FORM_BYTES:
            raise ipc.MalformedMessage(
                f"the body is larger than {ipc.MAX_FORM_BYTES} bytes",
                code="body_too_large",
                limit=ipc.MAX_FORM_BYTES,
            )
        if httprequest.method == 'GET':
            return ipc.parse_form(httprequest.query_string) if httprequest.query_string else []
        if httprequest.form:  # Odoo parsed it into an ordered multi-dict: order and blanks kept.
            return ipc.check_pairs(list(httprequest.form.items(multi=True)))
        data = httprequest.get_data()
        return ipc.parse_form(data) if data else []
