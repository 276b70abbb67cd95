# Part of payment_mypos. License LGPL-3.
"""A payment myPOS reversed after Odoo had confirmed it (`IPCPurchaseRollback` on a done
transaction): what is booked, and who is told."""

import logging

_logger = logging.getLogger(__name__)


def book_reversal(tx):
    """Book a reversal by myPOS of a payment Odoo had already confirmed; once only.

    myPOS reverses a payment when our `OK` did not reach it (API §4.4): the money went back to
    the shopper, so a done refund of the full amount is recorded (its outbound payment is
    posted like any refund's) and the accountant gets an activity on the paid documents.
    """
    if tx.currency_id.is_zero(tx.amount):  # Saving a card moved no money: nothing to refund.
        _logger.warning("myPOS reversed %s, which moved no money: nothing booked", tx.reference)
        return
    refunds = tx.child_transaction_ids.filtered(
        lambda child: child.operation == 'refund' and child.state not in ('cancel', 'error')
    )
    if refunds.filtered('mypos_is_reversal'):
        return  # A replayed rollback.
    if refunds:  # Refunded in part already: what went back where is for a person to settle.
        message = tx.env._(
            "myPOS reports this payment as reversed (IPCPurchaseRollback) although Odoo had "
            "confirmed it and refunds of it exist: nothing was booked automatically. Check "
            "the payment in myPOS's dashboard and settle it in Odoo."
        )
        if tx.state_message != message:  # Once, whatever the replays.
            tx.state_message = message
            tx._log_message_on_linked_documents(message)
            schedule_reversal_activities(tx, message)
        return
    message = tx.env._(
        "myPOS reversed this payment (IPCPurchaseRollback) after Odoo had confirmed it: the "
        "money went back to the customer. A refund of %(amount)s %(currency)s was recorded; "
        "check the order and the invoice.",
        amount=tx.amount,
        currency=tx.currency_id.name,
    )
    # Writing the row first makes a concurrent replay wait, then retry and see the reversal.
    tx.state_message = message
    tx.flush_recordset(['state_message'])
    reversal = tx._create_child_transaction(tx.amount, is_refund=True)
    reversal.write({'mypos_is_reversal': True, 'provider_reference': tx.provider_reference})
    reversal._set_done(state_message=message)
    _logger.warning("myPOS reversed %s after it was done; booked %s", tx.reference, reversal)
    tx._log_message_on_linked_documents(message)
    schedule_reversal_activities(tx, message)
    tx.env.ref('payment.cron_post_process_payment_tx')._trigger()


def schedule_reversal_activities(tx, note):
    """Leave a to-do for whoever is responsible for each paid invoice, or else order."""
    documents = tx.invoice_ids if 'invoice_ids' in tx._fields else []
    if not documents and 'sale_order_ids' in tx._fields:
        documents = tx.sale_order_ids
    if documents:
        tx.env['payment.transaction']._mypos_schedule_todo(
            documents, note, summary=tx.env._("myPOS reversed the payment %s", tx.reference)
        )
