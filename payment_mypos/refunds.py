# Part of payment_mypos. License LGPL-3.
"""Refunds with myPOS's `IPCRefund` (API §4.5): never sent twice, settled only by what myPOS
signed, pending and checked whenever the money may have moved without a usable answer."""

import logging

from odoo import fields
from odoo.exceptions import UserError, ValidationError

from odoo.addons.payment import utils as payment_utils

from . import compat, ipc, utils

_logger = logging.getLogger(__name__)

# Key space of the advisory lock taken while a refund is being sent (pg_try_advisory_xact_lock).
REFUND_LOCK_SPACE = 0x6D79706F  # 'mypo'


def guard_refund(tx, amount):
    """Before a refund of the payment `tx` is created: refused while another is being sent, or
    when it cannot be made (see :func:`lock_for_refund` and :func:`check_refund_allowed`).

    :param float amount: The amount to refund, positive; the full amount when not given.
    """
    tx.ensure_one()
    lock_for_refund(tx)
    check_refund_allowed(tx, amount or tx.amount)


def lock_for_refund(tx):
    """Make sure no other database transaction sends a refund of this payment meanwhile.

    The advisory lock refuses at once a concurrent request (a double click, a second tab);
    writing on the payment's row makes a request that started before this one committed fail
    with a serialization error, so that Odoo replays it and it sees this refund.

    :raise UserError: If another request is sending a refund of this payment right now.
    """
    tx.env.cr.execute('SELECT pg_try_advisory_xact_lock(%s, %s)', [REFUND_LOCK_SPACE, tx.id])
    if not tx.env.cr.fetchone()[0]:
        raise UserError(
            tx.env._(
                "myPOS: A refund of %s is being sent to myPOS right now. Wait for it to "
                "finish, then check the refunds of this payment.",
                tx.reference,
            )
        )
    tx.mypos_last_refund_request = fields.Datetime.now()
    tx.flush_recordset(['mypos_last_refund_request'])


def check_refund_allowed(tx, amount):
    """Refuse a refund that myPOS cannot make or that might duplicate another one.

    :param float amount: The amount to refund, positive.
    :raise UserError: If the payment has no myPOS reference, another refund still waits for
                      myPOS's answer, or the amount exceeds what is left to refund.
    """
    if tx.operation == 'refund' or not tx.provider_reference:
        raise UserError(
            tx.env._(
                "myPOS: %s cannot be refunded: it has no myPOS transaction reference (IPC_Trnref).",
                tx.reference,
            )
        )
    refunds = tx.child_transaction_ids.filtered(lambda tx: tx.operation == 'refund')
    # Only a refund whose automatic checks gave up (checked, nothing scheduled) lets a new
    # refund through; it still counts in the amount refunded below.
    waiting = refunds.filtered(
        lambda tx: (
            tx.state in ('draft', 'pending', 'authorized')
            and not (tx.mypos_check_count and not tx.mypos_next_check)
        )
    )
    if waiting:
        raise UserError(
            tx.env._(
                "myPOS: The refund %s of this payment is still waiting for myPOS's "
                "confirmation. Use \"Check status with myPOS\" on it before refunding again.",
                waiting[0].reference,
            )
        )
    # Refunds still unconfirmed count as made: a refund must never exceed the payment.
    refunded = -sum(
        refunds.filtered(lambda tx: tx.state != 'error' and tx.state != 'cancel').mapped('amount')
    )
    left = tx.currency_id.round(tx.amount - refunded)
    if (
        tx.currency_id.compare_amounts(amount, 0) <= 0
        or tx.currency_id.compare_amounts(amount, left) > 0
    ):
        raise UserError(
            tx.env._(
                "myPOS: The refund of %(amount)s exceeds what is left to refund on "
                "%(reference)s (%(left)s).",
                amount=amount,
                reference=tx.reference,
                left=left,
            )
        )


def send_refund(tx):
    """Send this refund transaction to myPOS and apply the answer; the call is recorded
    (committed) before it is sent, so that a rollback of the request cannot hide it.

    Done only on a signed status-0 answer echoing the amount and the currency; error when
    myPOS refused it (signed status) or was not reached at all; pending, to be settled by the
    status check, whenever myPOS may have made the refund without a usable answer.

    Note: tx.ensure_one()
    """
    tx.ensure_one()
    source = tx.source_transaction_id
    amount_minor = payment_utils.to_minor_currency_units(-tx.amount, tx.currency_id)
    params = [
        ('IPC_Trnref', source.provider_reference),
        ('OrderID', tx._mypos_get_order_id()),
        ('Amount', ipc.format_amount(amount_minor, tx._mypos_decimals())),
        ('Currency', tx.currency_id.name),
    ]
    holding = tx.env['payment.mypos.outbox']._mypos_reserve(tx, ipc.const.REFUND_METHOD)
    if holding:
        raise UserError(
            tx.env._(
                "myPOS: Another refund of this payment (OrderID %s) was sent to myPOS and is not "
                "settled yet. It is checked automatically; refund again only once it is settled.",
                holding[0][0],
            )
        )
    try:
        answer = tx.provider_id._mypos_make_request(ipc.const.REFUND_METHOD, params, tx=tx)
    except ipc.RemoteError as error:
        apply_refund_failure(tx, error)
        return
    try:
        with tx.env.cr.savepoint():
            compat.process_message(tx, answer)
    except ValidationError as error:
        # Signed success that does not match the request: money may have moved.
        _logger.warning("Unexpected myPOS refund answer for %s: %s", tx.reference, error)
        tx._set_pending(
            state_message=tx.env._(
                "myPOS accepted the refund but its answer does not match it (%s). It will be "
                "checked with myPOS; compare with myPOS's dashboard.",
                error.args[0],
            )
        )
        tx._mypos_schedule_check()


def apply_refund_failure(tx, error):
    """Put the refund in error when it surely was not made, else leave it pending.

    :param ipc.RemoteError error: Why the call gave no usable answer.
    """
    message = utils.explain_error(tx.env, error)
    if (
        error.kind is ipc.Failure.STATUS
        and error.status_code is ipc.Status.E_DUPLICATE_TRANSMISSION
    ):
        # E_DUPLICATE_TRANSMISSION on our own, replay-stable OrderID: this very refund was
        # already sent (a replayed request). Only the status check can tell how it ended.
        tx._set_pending(
            state_message=tx.env._(
                "myPOS: myPOS already received this refund (%s). Its result will be fetched "
                "from myPOS.",
                message,
            )
        )
        tx._mypos_schedule_check()
    elif not error.kind.may_have_moved_money:  # A signed refusal, or nothing was sent.
        tx._set_error(tx.env._("myPOS: The refund was refused: %s", message))
    else:
        # Timeout, HTTP error, garbage, unsigned or wrongly signed answer: myPOS may have made
        # the refund. Never send it again; the status check settles it.
        tx._set_pending(
            state_message=tx.env._(
                "myPOS: No usable answer from myPOS (%s). The refund may have been made: it "
                "will be checked with myPOS, not sent again.",
                message,
            )
        )
        tx._mypos_schedule_check()
