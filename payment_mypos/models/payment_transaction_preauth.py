# Part of payment_mypos. License LGPL-3.

import logging
from datetime import datetime, time, timedelta

from werkzeug import urls

from odoo import _, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.tools.misc import format_amount, format_date

from odoo.addons.payment import utils as payment_utils

from .. import compat, const, ipc, utils
from ..const import CheckOutcome
from ..controllers.main import MyPOSController

_logger = logging.getLogger(__name__)

PreAuthStatus = ipc.const.PreAuthStatus


# A further class of the same model, as models/ splits one that grows too long (README, Layout).
class PaymentTransaction(models.Model):
    """Manual capture with myPOS's pre-authorisation: the card is authorised on myPOS's page, then
    captured (`IPCPreAuthCompletion`) or released (`IPCPreAuthCancellation`) from Odoo, at most
    once, and reconciled with `IPCPreAuthStatus`.
    https://developers.mypos.com/apis/checkout-api/pre-authorization"""

    _inherit = 'payment.transaction'  # pylint: disable=consider-merging-classes-inherited

    mypos_preauth = fields.Boolean(
        string="myPOS Pre-authorisation",
        help="The card was authorised on myPOS's page (IPCPreAuthorization), to be captured or "
        "released later; set when the payment form is built.",
        readonly=True,
        copy=False,
    )
    mypos_preauth_expiry = fields.Date(
        string="myPOS Authorisation Expires",
        help="The day myPOS releases the hold on the card if it is not captured (PreAuthExpDate).",
        readonly=True,
        copy=False,
    )
    mypos_preauth_call = fields.Selection(
        string="myPOS Call Waiting",
        selection=[('capture', "Capture sent"), ('void', "Release sent")],
        help="A capture or release was sent to myPOS and its outcome is not known yet: the status "
        "check settles it with myPOS; it is never sent twice.",
        readonly=True,
        copy=False,
    )
    mypos_preauth_warned = fields.Boolean(
        string="myPOS Expiry Reminder Sent", readonly=True, copy=False
    )

    # === BUSINESS METHODS - THE PRE-AUTHORISATION FORM ===#

    def _mypos_uses_preauth(self):
        """Whether this payment is authorised on myPOS's page rather than paid: the provider
        captures manually. Saving a card stays a purchase (a pre-authorisation has no
        CardTokenRequest)."""
        self.ensure_one()
        return bool(self.provider_id.capture_manually) and self.operation != 'validation'

    def _mypos_preauth_form(self, order_id, amount_minor):
        """Return the signed `IPCPreAuthorization` form of this transaction, its reference as
        the `ItemName` (a pre-authorisation has no cart).
        https://developers.mypos.com/apis/checkout-api/pre-authorization"""
        base_url = self.provider_id.get_base_url()
        self.mypos_preauth = True
        return ipc.build_preauthorization(
            self.provider_id._mypos_get_credentials(),
            source=const.SOURCE,
            order_id=order_id,
            amount_minor=amount_minor,
            decimals=self._mypos_decimals(),
            currency=self.currency_id.name,
            item_name=self.reference,
            url_ok=urls.url_join(base_url, MyPOSController._return_url),
            url_cancel=urls.url_join(base_url, MyPOSController._cancel_url),
            url_notify=urls.url_join(base_url, MyPOSController._webhook_url),
            language=ipc.checkout_language(self.partner_lang),
        )

    # === BUSINESS METHODS - MESSAGES OF THE PAGE ===#

    def _mypos_check_message_kind(self, message):
        """Refuse a message of a purchase about a pre-authorisation, and the reverse: a purchase
        notification never authorises, an authorisation never pays."""
        if message.method in ipc.const.PREAUTH_FORM_METHODS and not self.mypos_preauth:
            raise ValidationError(
                _(
                    "myPOS: %(method)s is a pre-authorisation's message, and %(reference)s was "
                    "not pre-authorised; it is refused.",
                    method=message.method,
                    reference=self.reference,
                )
            )
        if message.method in ipc.const.PURCHASE_FORM_METHODS and self.mypos_preauth:
            raise ValidationError(
                _(
                    "myPOS: %(method)s is a purchase's message, and %(reference)s was "
                    "pre-authorised, not paid; it is refused.",
                    method=message.method,
                    reference=self.reference,
                )
            )

    def _mypos_apply_preauth_message(self, message):
        """Apply a verified message of myPOS's pre-authorisation page: the notification authorises
        the transaction; the browser's OK only marks it pending; its cancel cancels a draft."""
        method = message.method
        if method == ipc.const.PREAUTH_RETURN_METHODS['ok']:
            if self.state == 'draft':
                self._set_pending()
            return
        if method == ipc.const.PREAUTH_RETURN_METHODS['cancel']:
            if self.state == 'draft':
                self._set_canceled(
                    state_message=_("The pre-authorisation was cancelled on myPOS's page.")
                )
            return
        if self.state in ('authorized', 'done'):
            if self.provider_reference != message.trnref:
                raise ValidationError(
                    _(
                        "myPOS: The transaction is already authorised with myPOS reference "
                        "%(held)s; refusing a second authorisation %(new)s so that myPOS releases "
                        "it.",
                        held=self.provider_reference,
                        new=message.trnref,
                    )
                )
            return  # A repeated notification.
        if self.state not in ('draft', 'pending'):
            raise ValidationError(
                _(
                    "myPOS: The transaction is cancelled in Odoo; refusing the authorisation so "
                    "that myPOS releases it."
                )
            )
        self.write(
            {
                'provider_reference': message.trnref,
                'mypos_preauth_expiry': message.expiry,
                'mypos_next_check': fields.Datetime.now() + const.PREAUTH_CHECK_INTERVAL,
            }
        )
        self._set_authorized()

    def _mypos_preauth_notify_refused(self, reason):
        """Tell a person that myPOS authorised the card and Odoo refused it: what myPOS then does
        with the hold is undocumented (docs/mypos-protocol.md §4.12 (h)); once per transaction."""
        message = _(
            "myPOS: myPOS authorised %(reference)s on the customer's card, but Odoo refused the "
            "authorisation (%(reason)s). Check in myPOS's dashboard that the hold was released.",
            reference=self.reference,
            reason=reason,
        )
        if self.state_message != message:
            self._mypos_tell_person(message)

    # === BUSINESS METHODS - CAPTURE AND RELEASE ===#

    def action_capture(self):
        """Override of `payment` to refuse, before anything is sent, capturing several
        authorisations (a sales order's, an invoice's Capture) when one of them cannot be: a
        refusal after another's completion was sent would roll its booking back."""
        self._mypos_check_all_sendable(ipc.const.PREAUTH_COMPLETION_METHOD)
        return super().action_capture()

    def action_void(self):
        """Override of `payment` to refuse, before anything is sent, releasing several
        authorisations when one of them cannot be (see `action_capture`)."""
        self._mypos_check_all_sendable(ipc.const.PREAUTH_CANCELLATION_METHOD)
        return super().action_void()

    def _mypos_check_all_sendable(self, method):
        for tx in self.sudo().filtered(
            lambda t: t.provider_code == 'mypos' and t.state == 'authorized'
        ):
            tx._mypos_check_preauth_sendable(method)

    def _capture(self, amount_to_capture=None):
        """Override of `payment` (19.0) to refuse before the capture transaction is created."""
        if self.provider_code == 'mypos':
            self._mypos_check_before_child(ipc.const.PREAUTH_COMPLETION_METHOD, amount_to_capture)
        return super()._capture(amount_to_capture=amount_to_capture)

    def _void(self, amount_to_void=None):
        """Override of `payment` (19.0) to refuse before the release transaction is created."""
        if self.provider_code == 'mypos':
            self._mypos_check_before_child(ipc.const.PREAUTH_CANCELLATION_METHOD, amount_to_void)
        return super()._void(amount_to_void=amount_to_void)

    def _send_capture_request(self, amount_to_capture=None):
        """Override of `payment` to capture the authorisation with `IPCPreAuthCompletion`.

        The full authorised amount only (`full_only`): myPOS releases what a completion leaves,
        which Odoo's capture wizard would keep authorised. On 19.0 this runs on the capture
        transaction `_capture` created; on 18.0 on the authorisation, which creates it here so
        that both series record the capture the same way.

        :return: 18.0: the capture transaction; 19.0: None.
        """
        if self.provider_code != 'mypos':
            if compat.ODOO_19:
                return super()._send_capture_request()
            return super()._send_capture_request(amount_to_capture=amount_to_capture)
        if compat.ODOO_19:
            super()._send_capture_request()
        return self._mypos_send_child_request(
            ipc.const.PREAUTH_COMPLETION_METHOD, amount_to_capture
        )

    def _send_void_request(self, amount_to_void=None):
        """Override of `payment` to release the authorisation with `IPCPreAuthCancellation`,
        for the full authorised amount as myPOS's PHP SDK sends it (see `_send_capture_request`).

        :return: 18.0: the release transaction; 19.0: None.
        """
        if self.provider_code != 'mypos':
            if compat.ODOO_19:
                return super()._send_void_request()
            return super()._send_void_request(amount_to_void=amount_to_void)
        if compat.ODOO_19:
            super()._send_void_request()
        return self._mypos_send_child_request(ipc.const.PREAUTH_CANCELLATION_METHOD, amount_to_void)

    def _mypos_send_child_request(self, method, amount):
        """Send the capture or release: 19.0 runs it on the transaction `_capture` or `_void`
        created; 18.0 on the authorisation, which creates that transaction here first.

        :return: 18.0: the capture or release transaction; 19.0: None.
        """
        if compat.ODOO_19:
            self.source_transaction_id._mypos_send_preauth_call(method, self)
            return None
        self._ensure_provider_is_not_disabled()
        self._mypos_check_before_child(method, amount)
        child = self._create_child_transaction(self.amount)
        child._log_sent_message()
        self._mypos_send_preauth_call(method, child)
        return child

    def _mypos_check_before_child(self, method, amount):
        """Refuse, before a capture or release transaction is created, what cannot be sent."""
        self._mypos_check_full_amount(amount)
        self._mypos_check_preauth_sendable(method)

    def _mypos_check_full_amount(self, amount):
        """Refuse a partial capture or release: myPOS takes one completion per authorisation."""
        if amount and self.currency_id.compare_amounts(amount, self.amount) != 0:
            raise UserError(
                _(
                    "myPOS: Only the full authorised amount (%(amount)s) of %(reference)s can "
                    "be captured or released.",
                    amount=format_amount(self.env, self.amount, self.currency_id),
                    reference=self.reference,
                )
            )

    def _mypos_preauth_source(self):
        """The authorisation this transaction captures or releases (itself, if it is one)."""
        self.ensure_one()
        return self if self.mypos_preauth else self.source_transaction_id

    def _mypos_send_preauth_call(self, method, target):
        """Capture or release this authorisation, applying the outcome to `target`, the capture
        or release transaction.

        One completion or cancellation per authorisation: recorded (committed) before it is sent;
        one already recorded, even by a request that rolled back, is never sent again: its outcome
        is asked of myPOS (`IPCPreAuthStatus`). Done only on a signed success that echoes the call;
        a lost or unclear answer leaves `target` pending for the status check.

        Note: self.ensure_one()

        :param str method: `IPCPreAuthCompletion` or `IPCPreAuthCancellation`.
        :param recordset target: The capture or release `payment.transaction`.
        """
        self.ensure_one()
        kind = self._mypos_call_kind(method)
        self._mypos_check_preauth_sendable(method)
        self._mypos_check_full_amount(target.amount)
        amount_minor = payment_utils.to_minor_currency_units(target.amount, self.currency_id)
        params = [
            ('OrderID', self.mypos_order_id),
            ('Amount', ipc.format_amount(amount_minor, self._mypos_decimals())),
            ('Currency', self.currency_id.name),
        ]
        # Built and signed once before it is recorded: a broken key fails here, not as a call
        # recorded but never sent, which would hold the authorisation.
        try:
            credentials = self.provider_id._mypos_get_credentials()
            ipc.build_request(credentials, method, params, source=const.SOURCE)
        except ipc.IPCError as error:
            raise UserError(
                _(
                    "myPOS: The call to myPOS cannot be signed; nothing was sent: %s",
                    utils.explain_error(self.env, error),
                )
            ) from None
        Outbox = self.env['payment.mypos.outbox']
        row_id = Outbox._mypos_reserve_preauth(self, method, target)
        if not row_id:
            earlier = Outbox._mypos_preauth_row(self)
            earlier_method = earlier['method'] if earlier else method
            self._mypos_wait_for_preauth_call(
                self._mypos_call_kind(earlier_method),
                target,
                self._mypos_call_message(method, 'held', order_id=self.mypos_order_id),
            )
            self._mypos_check_status()
            return
        try:
            answer = self.provider_id._mypos_make_request(method, params, tx=self)
        except ipc.RemoteError as error:
            explained = utils.explain_error(self.env, error)
            if self._mypos_is_duplicate(error) or error.kind.may_have_moved_money:
                case = 'duplicate' if self._mypos_is_duplicate(error) else 'unclear'
                self._mypos_wait_for_preauth_call(
                    kind, target, self._mypos_call_message(method, case, error=explained)
                )
                if case == 'duplicate':
                    self._mypos_check_status()
                return
            # A signed refusal, or nothing sent: nothing moved; the authorisation stays.
            Outbox._mypos_update(row_id, state='void')
            case = 'refused' if error.kind is ipc.Failure.STATUS else 'not_sent'
            target._set_error(self._mypos_call_message(method, case, error=explained))
            return
        try:
            with self.env.cr.savepoint():
                compat.process_message(target, answer)
        except ValidationError as error:
            # A signed success that does not match the call: money may have moved, but not as
            # asked. The status check settles it; a person compares with myPOS's dashboard.
            _logger.warning(
                "Unexpected myPOS answer to %s of %s: %s", method, self.reference, error
            )
            Outbox._mypos_update(row_id, state='flagged')
            message = self._mypos_call_message(method, 'mismatch', error=error.args[0])
            self._mypos_wait_for_preauth_call(kind, target, message)
            self._mypos_tell_person(message)

    @staticmethod
    def _mypos_call_kind(method):
        """The `mypos_preauth_call` of a call: 'capture' or 'void'."""
        return 'capture' if method == ipc.const.PREAUTH_COMPLETION_METHOD else 'void'

    def _mypos_check_preauth_sendable(self, method):
        """Refuse a capture or release of what is no authorisation, or of one whose earlier
        capture or release waits for myPOS."""
        if not self.mypos_preauth or self.state != 'authorized' or not self.mypos_order_id:
            raise UserError(
                _("myPOS: %s is not an authorisation to capture or release.", self.reference)
            )
        if self.mypos_preauth_call:
            raise UserError(
                self._mypos_call_message(method, 'held', order_id=self.mypos_order_id)
                + " "
                + _('Use "Check status with myPOS" on %s.', self.reference)
            )

    def _mypos_wait_for_preauth_call(self, kind, target, message):
        """Leave a capture or release whose outcome is unknown to the status check: the
        authorisation stays authorised, flagged, its check due soon; `target` pending."""
        self.write(
            {
                'mypos_preauth_call': kind,
                'mypos_next_check': utils.next_check_date(0),
                'state_message': message,
            }
        )
        if target and target.state == 'draft':
            target._set_pending(state_message=message)

    def _mypos_apply_preauth_answer(self, message):
        """Apply myPOS's signed success to a capture or release (this transaction)."""
        preauth = self._mypos_preauth_source()
        is_capture = message.method == ipc.const.PREAUTH_COMPLETION_METHOD
        if (is_capture and message.order_id != preauth.mypos_order_id) or self == preauth:
            raise ValidationError(
                _(
                    "myPOS: The answer to %(method)s is not about %(reference)s.",
                    method=message.method,
                    reference=preauth.reference,
                )
            )
        if is_capture:
            self._mypos_apply_capture(preauth)
        else:
            self._mypos_apply_release(preauth)

    def _mypos_apply_capture(self, preauth, state_message=None):
        """Mark this capture done (the authorisation's reference, for refunds) and the
        authorisation captured; its payment is created at once."""
        if self.state == 'done':
            return
        preauth.write({'mypos_preauth_call': False, 'mypos_next_check': False})
        self.provider_reference = preauth.provider_reference
        self._set_done(state_message=state_message)
        if preauth.state == 'authorized':  # 18.0 rolls the source up itself; 19.0 too.
            preauth._set_done(state_message=state_message)
        self.env.ref('payment.cron_post_process_payment_tx')._trigger()

    def _mypos_apply_release(self, preauth, state_message=None):
        """Mark the authorisation and this release cancelled."""
        preauth.write({'mypos_preauth_call': False, 'mypos_next_check': False})
        message = state_message or _("The authorisation was released: nothing was captured.")
        preauth._set_canceled(state_message=message)
        self._mypos_close_unrolled(message)

    def _mypos_close_unrolled(self, message):
        """Cancel these captures or releases of an authorisation already cancelled, without
        rolling it up again (18.0 would roll a fully voided authorisation up to done)."""
        self._update_state(('draft', 'pending'), 'cancel', message)

    # === BUSINESS METHODS - RECONCILIATION (IPCPreAuthStatus) ===#

    def _mypos_start_preauth_status_call(self):
        """Build, sign and log the `IPCPreAuthStatus` call about this authorisation."""
        params = [('OrderID', self.mypos_order_id)]
        return self.provider_id._mypos_start_call(ipc.const.PREAUTH_STATUS_METHOD, params, tx=self)

    def _mypos_apply_preauth_status(self, answer):
        """Apply what `IPCPreAuthStatus` says of this authorisation.
        https://developers.mypos.com/apis/checkout-api/pre-auth-status

        1 pending: authorised (a capture or release Odoo sent long enough ago did not take
        effect); 3 captured: the capture Odoo recorded before sending it is done (one made outside
        Odoo is for a person: its amount is unknown); 4 declined, 5 expired or reversed,
        6 released: cancelled.

        :rtype: const.CheckOutcome
        """
        status = answer.preauth_status
        if answer.order_id != self.mypos_order_id or status is None:
            return CheckOutcome.INVALID  # Signed, but not an answer about this authorisation.
        if answer.expiry and answer.expiry != self.mypos_preauth_expiry:
            self.write({'mypos_preauth_expiry': answer.expiry, 'mypos_preauth_warned': False})
        waiting = self.child_transaction_ids.filtered(
            lambda tx: tx.operation == self.operation and tx.state in ('draft', 'pending')
        )
        if status == PreAuthStatus.PENDING:
            self._mypos_preauth_still_held(waiting)
        elif status == PreAuthStatus.CAPTURED:
            self._mypos_preauth_captured(waiting)
        elif self.state in ('draft', 'pending', 'authorized'):
            message = utils.translate(self.env, const.PREAUTH_END_MESSAGES[status], {})
            self.write({'mypos_preauth_call': False, 'mypos_next_check': False})
            self._set_canceled(state_message=message)
            waiting._mypos_close_unrolled(message)
        self._mypos_log_check(
            _(
                "IPCPreAuthStatus %(status)s: the transaction is now %(state)s.",
                status=int(status),
                state=self._mypos_state_label(),
            ),
            method=ipc.const.PREAUTH_STATUS_METHOD,
        )
        return CheckOutcome.APPLIED

    def _mypos_preauth_still_held(self, waiting):
        """myPOS still holds the authorisation: authorise a transaction whose notification never
        came; close a capture or release that Odoo sent long enough ago and myPOS did not make,
        so that it can be sent again."""
        if self.state in ('draft', 'pending'):
            self._set_authorized(
                state_message=_(
                    "myPOS confirmed the authorisation (IPCPreAuthStatus); its myPOS reference "
                    "was not received, so it cannot be refunded from Odoo once captured."
                )
            )
            self.mypos_next_check = fields.Datetime.now() + const.PREAUTH_CHECK_INTERVAL
            return
        Outbox = self.env['payment.mypos.outbox']
        before = fields.Datetime.now() - const.FIRST_CHECK_DELAY
        voided = Outbox._mypos_void_preauth(self, before)
        # Also when its record was forgotten already (a check that rolled back after it).
        forgotten = self.mypos_preauth_call and not Outbox._mypos_preauth_row(self)
        if not voided and not forgotten:
            return  # Nothing sent, or sent too recently to tell.
        message = _(
            "myPOS: myPOS did not make the capture or release sent earlier: the amount is still "
            "authorised. Capture or release it again."
        )
        self.mypos_preauth_call = False
        waiting._set_error(message)
        self._mypos_tell_person(message)

    def _mypos_preauth_captured(self, waiting):
        """myPOS captured the authorisation: book the capture Odoo recorded before sending it
        (rebuilt if the request that sent it rolled back); else tell a person."""
        if self.state == 'done':
            return
        row = self.env['payment.mypos.outbox']._mypos_preauth_row(self)
        sent = row and row['method']
        if self.state == 'authorized' and sent == ipc.const.PREAUTH_COMPLETION_METHOD:
            capture = waiting[:1] or self._create_child_transaction(row['amount'])
            capture._mypos_apply_capture(
                self, state_message=_("myPOS confirmed the capture (IPCPreAuthStatus).")
            )
            if row['state'] == 'flagged':  # Its answer did not match: booked as sent, checked.
                self._mypos_tell_person(
                    _(
                        "myPOS: myPOS confirmed the capture of %(reference)s, whose answer did "
                        "not match what Odoo sent; it was booked at %(amount)s, the amount sent. "
                        "Compare with myPOS's dashboard.",
                        reference=self.reference,
                        amount=format_amount(self.env, row['amount'], self.currency_id),
                    )
                )
            return
        if sent == ipc.const.PREAUTH_CANCELLATION_METHOD:
            message = _(
                "myPOS: myPOS reports this authorisation as captured although Odoo asked to "
                "release it: the amount captured is not known. Check it in myPOS's dashboard "
                "and record the payment in Odoo."
            )
        else:
            message = _(
                "myPOS: myPOS reports this authorisation as captured, but Odoo sent no capture of "
                "it: the amount captured is not known. Check it in myPOS's dashboard and record "
                "the payment in Odoo."
            )
        if self.state_message != message:
            self._mypos_tell_person(message)
        self.mypos_next_check = False

    def _mypos_after_preauth_check(self, outcome, max_checks):
        """Schedule the next check of an authorisation still held, and remind the salesperson a
        day before it expires; stop, telling a person, when myPOS gives no usable status for
        `max_checks` checks in a row or a day after the expiry."""
        now = fields.Datetime.now()
        self.mypos_last_check = now
        if not self.mypos_next_check:  # Stopped: a person was told (captured outside Odoo).
            return
        if outcome is CheckOutcome.APPLIED:
            self.mypos_check_count = 0
        else:
            self.mypos_check_count += 1
            expiry = self.mypos_preauth_expiry
            past_expiry = expiry and now.date() > expiry + timedelta(days=1)
            if self.mypos_check_count >= max_checks or past_expiry:
                self._mypos_give_up(
                    max_checks,
                    _(
                        "myPOS: myPOS gave no usable status of the authorisation %(reference)s "
                        "after %(count)s checks; automatic checks stopped. Look it up in myPOS's "
                        "dashboard before capturing or releasing it.",
                        reference=self.reference,
                        count=self.mypos_check_count,
                    ),
                )
                return
        if self.mypos_preauth_call:
            self._mypos_schedule_check()
            return
        next_check = now + const.PREAUTH_CHECK_INTERVAL
        expiry = self.mypos_preauth_expiry
        if expiry:
            warn_at = datetime.combine(expiry, time.min) - const.PREAUTH_WARN_BEFORE
            if now >= warn_at and not self.mypos_preauth_warned:
                self._mypos_warn_expiry()
            elif now < warn_at:
                next_check = min(next_check, warn_at)
        self.mypos_next_check = max(next_check, now + timedelta(minutes=1))

    def _mypos_warn_expiry(self):
        """Remind the salesperson (else the administrator) that the authorisation expires."""
        self.mypos_preauth_warned = True
        message = _(
            "myPOS: The authorisation %(reference)s of %(amount)s expires on %(date)s: capture it "
            "before, or myPOS releases the hold on the customer's card.",
            reference=self.reference,
            amount=format_amount(self.env, self.amount, self.currency_id),
            date=format_date(self.env, self.mypos_preauth_expiry),
        )
        self.env['payment.transaction']._mypos_schedule_todo(
            self._mypos_documents() or self.partner_id,
            message,
            summary=_("myPOS authorisation expires"),
        )
