# Part of payment_mypos. License LGPL-3.
"""Saved cards: the card myPOS stores at checkout (`CardTokenRequest`, API §4.2), the token Odoo
keeps of it, and its charges server to server (`IPCIAPurchase`, API §4.11): never twice, settled
only by what myPOS signed, pending and checked whenever the money may have moved unseen."""

import logging

from odoo.exceptions import UserError, ValidationError
from odoo.osv import expression

from odoo.addons.payment import utils as payment_utils

from . import compat, const, ipc, status_check, utils

_logger = logging.getLogger(__name__)

TOKEN_OPERATIONS = const.TOKEN_OPERATIONS


def card_token_request(tx):
    """Return the `CardTokenRequest` of the hosted purchase of `tx` (API §4.2): store the card
    only to save a payment method, pay and store it when the shopper asked to save it in the
    customer's own session (never onto a customer whose link someone else holds)."""
    if tx.operation == 'validation':
        return ipc.const.CARD_TOKEN_STORE
    if tx.tokenize and not tx.partner_id.is_public and tx._mypos_is_customer_session():
        return ipc.const.CARD_TOKEN_PAY_AND_STORE
    return ipc.const.CARD_TOKEN_NONE


def read_card(tx, message):
    """Return the saved card a verified payment message of `tx` carries, if `tx` asked for one.

    A token nobody asked for means the purchase form was re-labelled (API §3.3a), possibly into
    "store the card only", which moves no money: the message is refused.

    :rtype: ipc.Card or None
    :raise ValidationError: If the message carries a token `tx` did not ask for.
    """
    if tx.operation in TOKEN_OPERATIONS:
        return None  # A charge of a card already saved: nothing to save.
    requested = tx.mypos_card_token_request or ipc.const.CARD_TOKEN_NONE
    if requested == ipc.const.CARD_TOKEN_NONE:
        if message.extra('CardToken'):
            raise ValidationError(
                tx.env._(
                    "myPOS: The payment notification carries a card token that Odoo never asked "
                    "for; refusing it so that myPOS reverses it."
                )
            )
        return None
    try:
        return ipc.read_card(message)
    except ipc.IPCError as error:
        _logger.warning("The card of %s cannot be saved: %s", tx.reference, error)
        return None


def save_card(tx, card):
    """Keep the card myPOS saved for `tx` as the customer's token, once.

    The same card saved again (myPOS gives a card the same token) is the token already kept;
    a repeated notification finds `tx.token_id` set and adds nothing. Never for the public
    partner (a guest has no payment methods to manage).

    :param ipc.Card card: The card, from :func:`read_card`; None when myPOS returned none.
    :return: The token, if one was kept.
    :rtype: recordset of `payment.token`
    """
    if tx.token_id or not tx.tokenize:
        return tx.token_id
    tx.tokenize = False  # Whatever happens below, no later message of `tx` saves a card.
    if card is None or tx.partner_id.is_public:
        if card is not None:
            _logger.warning("Not saving the card of %s: its partner is public", tx.reference)
        return tx.token_id
    Token = tx.env['payment.token'].sudo()
    token = Token.search(
        [
            ('provider_id', '=', tx.provider_id.id),
            ('partner_id', '=', tx.partner_id.id),
            ('provider_ref', '=', card.token),
        ],
        limit=1,
    )
    details = f'{card.last4} ({card.expiry})'
    if token:
        token.payment_details = details
    else:
        token = Token.create(
            {
                'provider_id': tx.provider_id.id,
                'payment_method_id': tx.payment_method_id.id,
                'partner_id': tx.partner_id.id,
                'provider_ref': card.token,
                'payment_details': details,
                'mypos_sid': tx.provider_id.sudo()._mypos_get_credentials().sid,
            }
        )
        _logger.info(
            "Saved the myPOS card of %s as token %s of partner %s",
            tx.reference,
            token.id,
            tx.partner_id.id,
        )
    tx.token_id = token
    return token


def check_token(tx):
    """Refuse to charge a token that is not a live card of this provider's store.

    :raise UserError: If the token is archived, of another provider, or saved on another store.
    """
    token = tx.token_id.sudo()
    provider = tx.provider_id.sudo()
    if not token.active or token.provider_id != provider:
        raise UserError(
            tx.env._("myPOS: The saved card %s cannot be used any more.", token.display_name)
        )
    if not token.mypos_sid or token.mypos_sid != provider._mypos_get_credentials().sid:
        raise UserError(
            tx.env._(
                "myPOS: The card %s was saved on another myPOS store than the provider's "
                "current one: the customer must pay once on myPOS's page to save it again.",
                token.display_name,
            )
        )


def check_owner_and_amount(tx):
    """Refuse a shopper's one-click charge of a card that is not theirs, or of more than owed.

    Whoever holds a customer's invoice, order or payment link reaches Odoo's payment form for
    that customer: only the partner who saved the card (or an employee, who may charge it from
    the back office anyway) may charge it, never for more than the linked documents still owe.
    A contact of the same company is another partner: their cards are not shared.

    :raise UserError: If the current user may not charge the card, or the amount is too high.
    """
    if tx.operation != 'online_token':
        return  # A back-office charge: made by an accountant, for what they registered.
    user = tx.env.user
    if not user._is_internal() and user.partner_id != tx.token_id.sudo().partner_id:
        raise UserError(
            tx.env._(
                "myPOS: This saved card can only be used by the customer who saved it. Pay with "
                "another card on myPOS's page."
            )
        )
    owed = amount_owed(tx)
    if owed is not None and tx.currency_id.compare_amounts(tx.amount, owed) > 0:
        raise UserError(
            tx.env._(
                "myPOS: %(amount)s is more than the %(owed)s still owed on this document; the "
                "saved card was not charged.",
                amount=tx.currency_id.format(tx.amount),
                owed=tx.currency_id.format(owed),
            )
        )


def amount_owed(tx):
    """Return what the invoices and orders `tx` pays still owe, in its currency (None: none)."""
    owed = None
    today = tx.env.cr.now().date()
    for name in ('invoice_ids', 'sale_order_ids'):
        if name not in tx._fields:
            continue
        for document in tx[name].sudo():
            left = (
                document.amount_residual
                if name == 'invoice_ids'
                else document.amount_total - document.amount_paid
            )
            owed = (owed or 0.0) + document.currency_id._convert(
                left, tx.currency_id, document.company_id, today
            )
    return owed


def earlier_charges(tx):
    """Return the earlier myPOS charges that may still settle the documents `tx` pays.

    Those of the same invoices or orders, with any saved card (with none: the same card and
    amount), that were sent (a draft with an OrderID), wait for myPOS, or are done but not
    post-processed yet (the invoice does not show them yet). A draft never sent holds nothing.
    """
    linked = [
        [(name, 'in', tx[name].ids)]
        for name in ('invoice_ids', 'sale_order_ids')
        if name in tx._fields and tx[name]
    ]
    documents = (
        expression.OR(linked)
        if linked
        else [
            ('token_id', '=', tx.token_id.id),
            ('amount', '=', tx.amount),
            ('currency_id', '=', tx.currency_id.id),
        ]
    )
    return tx.sudo().search(
        expression.AND(
            [
                [
                    ('id', '!=', tx.id),
                    ('provider_code', '=', 'mypos'),
                    ('operation', 'in', TOKEN_OPERATIONS),
                    '|',
                    '|',
                    '&',
                    ('state', '=', 'draft'),
                    ('mypos_order_id', '!=', False),
                    ('state', '=', 'pending'),
                    '&',
                    ('state', '=', 'done'),
                    ('is_post_processed', '=', False),
                ],
                documents,
            ]
        )
    )


def settle_earlier_charges(tx):
    """Settle the earlier charges of the same documents (their status is asked first).

    :return: The earlier charge that went through, if any.
    :rtype: recordset of `payment.transaction`
    :raise UserError: If one of them is still waiting for myPOS.
    """
    earlier = earlier_charges(tx)
    for other in earlier.filtered(lambda t: t.state in ('draft', 'pending')):
        status_check.check_status(other)
    for other in earlier.filtered(lambda t: t.state in ('error', 'cancel')):
        settle_payment(other)  # Its accounting payment cancelled, as the status check would.
        other.mypos_next_check = False
    paid = earlier.filtered(lambda t: t.state == 'done')
    waiting = earlier.filtered(lambda t: t.state in ('draft', 'pending'))
    if not paid and waiting:
        if waiting[0].mypos_check_count and not waiting[0].mypos_next_check:  # Checks stopped.
            raise UserError(
                tx.env._(
                    "myPOS: The payment %s of the same document may have been charged and myPOS "
                    "cannot tell; its automatic checks stopped. Look it up in myPOS's dashboard "
                    "before charging again.",
                    waiting[0].reference,
                )
            )
        raise UserError(
            tx.env._(
                "myPOS: The payment %s of the same document is still waiting for myPOS's answer. "
                "It is checked automatically; pay again only once it is settled.",
                waiting[0].reference,
            )
        )
    return paid[:1]


def refuse_as_paid(tx, paid):
    """Refuse `tx` because an earlier charge of the same documents went through; have that one
    shown on its documents now (post-processed), as the status check would."""
    tx._set_error(
        tx.env._(
            "myPOS: Not charged: the earlier payment %(reference)s of %(amount)s for the same "
            "document went through.",
            reference=paid.reference,
            amount=paid.currency_id.format(paid.amount),
        )
    )
    _logger.warning("Refused %s: %s was paid already", tx.reference, paid.reference)
    try:
        with tx.env.cr.savepoint():
            paid._post_process()  # Its accounting payment posted (see `settle_payment`).
    except Exception:  # noqa: BLE001 - the cron posts it later; the refusal must stand.
        _logger.exception("Post-processing %s failed; the cron will retry it", paid.reference)
        tx.env.ref('payment.cron_post_process_payment_tx')._trigger()
    paid.mypos_next_check = False


def charge(tx):
    """Charge the saved card of `tx` with `IPCIAPurchase` and apply myPOS's answer.

    At most once per documents: an earlier charge of the same invoices or orders is settled
    first and, if it went through, `tx` is refused; the call is recorded (committed) before it
    is sent, and held back while another one of the same documents is unsettled. Done only on
    a signed status-0 answer echoing the amount and the currency; error when myPOS refused it
    with a signed status or was not reached at all; pending, settled by the status check,
    whenever myPOS may have charged the card without a usable answer. The OrderID is the same
    if Odoo replays the request (see `_mypos_get_order_id`), and myPOS refuses a repeated one.

    Note: tx.ensure_one()
    """
    tx.ensure_one()
    check_token(tx)
    check_owner_and_amount(tx)
    currency = tx.currency_id
    decimals = tx._mypos_decimals()
    amount_minor = payment_utils.to_minor_currency_units(tx.amount, currency)
    order_id = tx._mypos_get_order_id()
    try:
        params = ipc.token_purchase_params(
            order_id=order_id,
            amount_minor=amount_minor,
            decimals=decimals,
            currency=currency.name,
            card_token=tx.token_id.sudo().provider_ref,
            cart=ipc.build_cart(
                tx._mypos_get_cart_lines(),
                amount_minor,
                decimals,
                currency.name,
                fallback_name=tx.reference,
            ),
        )
    except ipc.IPCError as error:  # Nothing was sent.
        tx._set_error(
            tx.env._("myPOS: The payment cannot be sent: %s", utils.explain_error(tx.env, error))
        )
        return
    paid = settle_earlier_charges(tx)
    if paid:
        refuse_as_paid(tx, paid)
        return
    method = ipc.const.TOKEN_PURCHASE_METHOD
    holding = tx.env['payment.mypos.outbox']._mypos_reserve(tx, method)
    if holding:
        raise UserError(
            tx.env._(
                "myPOS: Another payment of the same document (%s) is being sent to myPOS or "
                "waits for its answer. It is checked automatically; pay again only once it is "
                "settled.",
                holding[0][1],
            )
        )
    try:
        answer = tx.provider_id._mypos_make_request(method, params, tx=tx)
    except ipc.RemoteError as error:
        apply_charge_failure(tx, error)
        return
    try:
        with tx.env.cr.savepoint():
            compat.process_message(tx, answer)
    except ValidationError as error:
        # A signed success that does not match the charge: money may have moved.
        _logger.warning("Unexpected myPOS answer to the charge of %s: %s", tx.reference, error)
        tx._set_pending(
            state_message=tx.env._(
                "myPOS accepted the payment but its answer does not match it (%s). It will be "
                "checked with myPOS; compare with myPOS's dashboard.",
                error.args[0],
            )
        )
        tx._mypos_schedule_check()


def apply_charge_failure(tx, error):
    """Put the charge in error when the card surely was not charged, else leave it pending.

    :param ipc.RemoteError error: Why the call gave no usable answer.
    """
    message = utils.explain_error(tx.env, error)
    if (
        error.kind is ipc.Failure.STATUS
        and error.status_code is ipc.Status.E_DUPLICATE_TRANSMISSION
    ):
        # Our own, replay-stable OrderID was already charged (a replayed request): ask myPOS how
        # it ended now; the scheduled check takes over if it cannot tell yet.
        tx._set_pending(
            state_message=tx.env._(
                "myPOS: myPOS already received this payment (%s). Its result is fetched from "
                "myPOS.",
                message,
            )
        )
        tx._mypos_schedule_check()
        status_check.check_status(tx)
        if tx.state not in ('draft', 'pending'):  # Settled at once: no check left to make.
            tx.mypos_next_check = False
    elif error.kind is ipc.Failure.STATUS:
        tx._set_error(tx.env._("myPOS: The saved card was declined: %s", message))
    elif not error.kind.may_have_moved_money:
        tx._set_error(
            tx.env._("myPOS: myPOS cannot be reached; the card was not charged (%s)", message)
        )
    else:
        tx._set_pending(
            state_message=tx.env._(
                "myPOS: No usable answer from myPOS (%s). The card may have been charged: the "
                "payment will be checked with myPOS, not sent again.",
                message,
            )
        )
        tx._mypos_schedule_check()


def settle_payment(tx):
    """Post and reconcile (or cancel) the accounting payment of a back-office charge that
    settled late, after it had been left pending.

    `account_payment` cancels (18.0) or leaves unposted (19.0) the payment of a charge that was
    not done at once; when the status check later finds the card charged, the payment is posted
    and reconciled with the invoices, when it finds the charge failed, it is cancelled. A charge
    done at once is left to `account_payment`, which is posting its payment at that moment.
    """
    payment = tx.payment_id if 'payment_id' in tx._fields else None
    late = tx.mypos_next_check or tx.mypos_check_count  # It waited for a status check.
    if not payment or not late or tx.operation not in TOKEN_OPERATIONS:
        return
    if tx.state == 'done':
        if payment.state in ('canceled', 'cancel'):
            payment.action_draft()
        if payment.state == 'draft' or payment.move_id.state == 'draft':
            payment.action_post()
        # Reconciled with the invoices as `account_payment` does for the payments it creates.
        invoices = tx.invoice_ids.filtered(lambda invoice: invoice.state == 'posted')
        lines = (payment.move_id.line_ids + invoices.line_ids).filtered(
            lambda line: line.account_id == payment.destination_account_id and not line.reconciled
        )
        if invoices and lines.filtered(lambda line: line.move_id == payment.move_id):
            lines.reconcile()
            _logger.info("Posted the payment of %s, charged after a delay", tx.reference)
    elif tx.state in ('error', 'cancel') and payment.state not in ('canceled', 'cancel'):
        payment.action_cancel()
