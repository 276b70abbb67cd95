# Part of payment_mypos. License LGPL-3.

import logging

from odoo import _, fields, models
from odoo.exceptions import UserError, ValidationError

from odoo.addons.payment import utils as payment_utils

from .. import compat, const, ipc

_logger = logging.getLogger(__name__)


# A further class of the same model, as models/ splits one that grows too long (README, Layout).
class PaymentTransaction(models.Model):
    """Refunds with myPOS's `IPCRefund`, never sent twice, and the reversals myPOS makes of a
    payment Odoo had confirmed. https://developers.mypos.com/apis/checkout-api/refund"""

    _inherit = 'payment.transaction'  # pylint: disable=consider-merging-classes-inherited

    # === BUSINESS METHODS - REFUNDS ===#

    def _refund(self, amount_to_refund=None):
        """Override of `payment` (19.0) to guard the refund of a payment before it is created:
        see `_send_refund_request`."""
        if self.provider_code == 'mypos':
            self._mypos_guard_refund(amount_to_refund)
        return super()._refund(amount_to_refund=amount_to_refund)

    def _send_refund_request(self, amount_to_refund=None):
        """Override of `payment` to refund the payment with myPOS's `IPCRefund`.

        Sending a refund is guarded against doing it twice: a concurrent request for the same
        payment is refused while this one runs (advisory lock), a new refund is refused while
        another one of the payment still waits for myPOS, and the refund's OrderID is the same if
        Odoo replays the request after a serialization failure (myPOS refuses a reused OrderID).
        On 18.0 this runs on the payment and creates the refund; on 19.0, on the refund that
        `_refund` created after its guards.

        Note: self.ensure_one()

        :param float amount_to_refund: 18.0: the amount to refund; the full amount when not given.
        :return: 18.0: the refund transaction; 19.0: None.
        :rtype: recordset of `payment.transaction`
        :raise UserError: If the refund cannot be sent now (in progress, too large...).
        """
        if compat.ODOO_19:
            if self.provider_code != 'mypos':
                return super()._send_refund_request()
            self._mypos_send_refund()
            return None
        if self.provider_code != 'mypos':
            return super()._send_refund_request(amount_to_refund=amount_to_refund)
        self._mypos_guard_refund(amount_to_refund)
        refund_tx = super()._send_refund_request(amount_to_refund=amount_to_refund)
        refund_tx._mypos_send_refund()
        return refund_tx

    def _mypos_guard_refund(self, amount):
        """Before a refund of this payment is created: refused while another is being sent, or
        when it cannot be made (see `_mypos_lock_for_refund`, `_mypos_check_refund_allowed`).

        :param float amount: The amount to refund, positive; the full amount when not given.
        """
        self.ensure_one()
        self._mypos_lock_for_refund()
        self._mypos_check_refund_allowed(amount or self.amount)

    def _mypos_lock_for_refund(self):
        """Make sure no other database transaction sends a refund of this payment meanwhile.

        The advisory lock refuses at once a concurrent request (a double click, a second tab);
        writing on the payment's row makes a request that started before this one committed fail
        with a serialization error, so that Odoo replays it and it sees this refund.

        :raise UserError: If another request is sending a refund of this payment right now.
        """
        self.env.cr.execute(
            'SELECT pg_try_advisory_xact_lock(%s, %s)', [const.REFUND_LOCK_SPACE, self.id]
        )
        if not self.env.cr.fetchone()[0]:
            raise UserError(
                _(
                    "myPOS: A refund of %s is being sent to myPOS right now. Wait for it to "
                    "finish, then check the refunds of this payment.",
                    self.reference,
                )
            )
        self.mypos_last_refund_request = fields.Datetime.now()
        self.flush_recordset(['mypos_last_refund_request'])

    def _mypos_check_refund_allowed(self, amount):
        """Refuse a refund that myPOS cannot make or that might duplicate another one.

        :param float amount: The amount to refund, positive.
        :raise UserError: If the payment has no myPOS reference, another refund still waits for
                          myPOS's answer, or the amount exceeds what is left to refund.
        """
        if self.operation == 'refund' or not self.provider_reference:
            raise UserError(
                _(
                    "myPOS: %s cannot be refunded: it has no myPOS transaction reference "
                    "(IPC_Trnref).",
                    self.reference,
                )
            )
        refunds = self.child_transaction_ids.filtered(lambda tx: tx.operation == 'refund')
        # Only a refund whose automatic checks gave up lets a new refund through; it still counts
        # in the amount refunded below.
        waiting = refunds.filtered(
            lambda tx: (
                tx.state in ('draft', 'pending', 'authorized') and not tx._mypos_checks_gave_up()
            )
        )
        if waiting:
            raise UserError(
                _(
                    "myPOS: The refund %s of this payment is still waiting for myPOS's "
                    "confirmation. Use \"Check status with myPOS\" on it before refunding again.",
                    waiting[0].reference,
                )
            )
        # Refunds still unconfirmed count as made: a refund must never exceed the payment.
        refunded = -sum(
            refunds.filtered(lambda tx: tx.state not in ('error', 'cancel')).mapped('amount')
        )
        currency = self.currency_id
        left = currency.round(self.amount - refunded)
        if currency.compare_amounts(amount, 0) <= 0 or currency.compare_amounts(amount, left) > 0:
            raise UserError(
                _(
                    "myPOS: The refund of %(amount)s exceeds what is left to refund on "
                    "%(reference)s (%(left)s).",
                    amount=amount,
                    reference=self.reference,
                    left=left,
                )
            )

    def _mypos_send_refund(self):
        """Send this refund transaction to myPOS and apply the answer, on the one money path
        (`_mypos_send_money_call`).

        Note: self.ensure_one()
        """
        self.ensure_one()
        amount_minor = payment_utils.to_minor_currency_units(-self.amount, self.currency_id)
        params = [
            ('IPC_Trnref', self.source_transaction_id.provider_reference),
            ('OrderID', self._mypos_get_order_id()),
            ('Amount', ipc.format_amount(amount_minor, self._mypos_decimals())),
            ('Currency', self.currency_id.name),
        ]
        self._mypos_send_money_call(ipc.const.REFUND_METHOD, params)

    def _mypos_apply_refund(self, message):
        """Mark a refund done from myPOS's signed answer (or its status); idempotent."""
        if self.operation != 'refund' or message.method != ipc.const.REFUND_METHOD:
            raise ValidationError(
                _(
                    "myPOS: %(method)s cannot be applied to %(reference)s.",
                    method=message.method,
                    reference=self.reference,
                )
            )
        if self.state == 'done':
            return
        self.provider_reference = message.trnref or self.mypos_order_id
        self.mypos_next_check = False
        self._set_done()
        if self.state == 'done':
            # No browser polls a refund: have the outbound payment created now.
            self.env.ref('payment.cron_post_process_payment_tx')._trigger()

    # === BUSINESS METHODS - REVERSALS ===#

    def _mypos_apply_rollback(self):
        """Cancel the transaction, or book the reversal of a payment Odoo already confirmed."""
        if self.state == 'done':
            self._mypos_book_reversal()
        elif self.state in ('draft', 'pending', 'authorized'):
            self._set_canceled(state_message=_("myPOS reversed the payment."))

    def _mypos_book_reversal(self):
        """Book a reversal by myPOS of a payment Odoo had already confirmed; once only.

        myPOS reverses a payment when our `OK` did not reach it
        (https://developers.mypos.com/apis/checkout-api/purchase-notify): the money went back to
        the shopper, so a done refund of the full amount is recorded (its outbound payment is
        posted like any refund's) and the accountant gets an activity on the paid documents.
        """
        if self.currency_id.is_zero(self.amount):  # Saving a card moved no money.
            _logger.warning(
                "myPOS reversed %s, which moved no money: nothing booked", self.reference
            )
            return
        refunds = self.child_transaction_ids.filtered(
            lambda child: child.operation == 'refund' and child.state not in ('cancel', 'error')
        )
        if refunds.filtered('mypos_is_reversal'):
            return  # A replayed rollback.
        if refunds:  # Refunded in part already: what went back where is for a person to settle.
            message = _(
                "myPOS reports this payment as reversed (IPCPurchaseRollback) although Odoo had "
                "confirmed it and refunds of it exist: nothing was booked automatically. Check "
                "the payment in myPOS's dashboard and settle it in Odoo."
            )
            if self.state_message != message:  # Once, whatever the replays.
                self.state_message = message
                self._log_message_on_linked_documents(message)
                self._mypos_schedule_reversal_todos(message)
            return
        message = _(
            "myPOS reversed this payment (IPCPurchaseRollback) after Odoo had confirmed it: the "
            "money went back to the customer. A refund of %(amount)s %(currency)s was recorded; "
            "check the order and the invoice.",
            amount=self.amount,
            currency=self.currency_id.name,
        )
        # Writing the row first makes a concurrent replay wait, then retry and see the reversal.
        self.state_message = message
        self.flush_recordset(['state_message'])
        reversal = self._create_child_transaction(self.amount, is_refund=True)
        reversal.write({'mypos_is_reversal': True, 'provider_reference': self.provider_reference})
        reversal._set_done(state_message=message)
        _logger.warning("myPOS reversed %s after it was done; booked %s", self.reference, reversal)
        self._log_message_on_linked_documents(message)
        self._mypos_schedule_reversal_todos(message)
        self.env.ref('payment.cron_post_process_payment_tx')._trigger()

    def _mypos_schedule_reversal_todos(self, note):
        """Leave a to-do for whoever is responsible for each paid invoice, or else order."""
        documents = self.invoice_ids if 'invoice_ids' in self._fields else []
        if not documents and 'sale_order_ids' in self._fields:
            documents = self.sale_order_ids
        if documents:
            self._mypos_schedule_todo(
                documents, note, summary=_("myPOS reversed the payment %s", self.reference)
            )
