# Part of payment_mypos. License LGPL-3.

import logging

from odoo import api, http, models

_logger = logging.getLogger(__name__)


# A further class of the same model, as models/ splits one that grows too long (README, Layout).
class PaymentTransaction(models.Model):
    """The people around a myPOS transaction: whether the session is its customer's, and the
    person told when myPOS cannot settle it."""

    _inherit = 'payment.transaction'  # pylint: disable=consider-merging-classes-inherited

    # === BUSINESS METHODS - WHOSE SESSION ===#

    def _mypos_is_customer_session(self):
        """Whether the current session is the transaction's customer's: their own login, an
        employee's, or the guest's checkout of the order this browser session holds.

        Whoever holds a customer's invoice, order or payment link reaches the payment form too:
        such a session saves no card onto the customer and is not sent their details.
        """
        user = self.env.user
        if user._is_internal() or (not user._is_public() and user.partner_id == self.partner_id):
            return True
        session = http.request and http.request.session
        order_id = session and session.get('sale_order_id')
        return bool(
            order_id and 'sale_order_ids' in self._fields and self.sale_order_ids.ids == [order_id]
        )

    # === BUSINESS METHODS - TELLING A PERSON ===#

    def _mypos_tell_person(self, message):
        """Tell a person that this transaction needs a look: its state message, and a to-do on
        its invoices and orders (else on its customer) for their responsible user."""
        self.ensure_one()
        self.state_message = message
        self.env['payment.transaction']._mypos_schedule_todo(
            self._mypos_documents() or self.partner_id, message
        )

    def _mypos_documents(self):
        """Return the invoices and sales orders the transaction pays, as a list of recordsets."""
        return [
            self[name].sudo()
            for name in ('invoice_ids', 'sale_order_ids')
            if name in self._fields and self[name]
        ]

    @api.model
    def _mypos_schedule_todo(self, records, message, summary=None):
        """Schedule a to-do about a myPOS payment on each record, for its responsible user (the
        salesperson, else the administrator).

        :param records: A recordset, or a list of recordsets, with activities.
        :param str summary: The to-do's title; "myPOS payment to check" in the user's language
                            by default.
        """
        for recordset in records if isinstance(records, list) else [records]:
            for record in recordset.sudo():
                user = record['invoice_user_id' if 'invoice_user_id' in record else 'user_id']
                if not user or not user.active or user.share:  # OdooBot, a portal user: no.
                    user = self.env.ref('base.user_admin')
                record.activity_schedule(
                    'mail.mail_activity_data_todo',
                    summary=summary
                    or self.with_context(lang=user.lang).env._("myPOS payment to check"),
                    note=message,
                    user_id=user.id,
                )
        _logger.warning("myPOS: a person was asked to check: %s", message)
