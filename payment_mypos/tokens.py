# Part of payment_mypos. License LGPL-3.
"""Saved cards: the card myPOS stores at checkout (`CardTokenRequest`, API §4.2), the token Odoo
keeps of it, and its charges server to server (`IPCIAPurchase`, API §4.11): never twice, settled
only by what myPOS signed, pending and checked whenever the money may have moved unseen."""

import logging

from odoo.exceptions import UserError, ValidationError

from odoo.addons.payment import utils as payment_utils

from . import compat, ipc, status_check, utils

_logger = logging.getLogger(__name__)

# The operations that charge a saved card (the shopper's one click; the back office's payment).
TOKEN_OPERATIONS = ('online_token', 'offline')


def card_token_request(tx):
    """Return the `CardTokenRequest` of the hosted purchase of `tx` (API §4.2): store the card
    only to save a payment method, pay and store it when the shopper asked to save it."""
    if tx.operation == 'validation':
        return ipc.const.CARD_TOKEN_STORE
    if tx.tokenize and not tx.partner_id.is_public:
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


def check_nothing_pending(tx):
    """Refuse a new charge while an earlier charge of the same card for the same documents may
    have gone through: its status is asked first; only a settled one lets a new charge pass.

    :raise UserError: If such a charge is still waiting for myPOS.
    """
    domain = [
        ('id', '!=', tx.id),
        ('provider_code', '=', 'mypos'),
        ('operation', 'in', TOKEN_OPERATIONS),
        ('token_id', '=', tx.token_id.id),
        ('state', 'in', ('draft', 'pending')),
    ]
    linked = [
        (name, tx[name].ids)
        for name in ('invoice_ids', 'sale_order_ids')
        if name in tx._fields and tx[name]
    ]
    domain += [(name, 'in', ids) for name, ids in linked] or [('amount', '=', tx.amount)]
    for earlier in tx.search(domain):
        status_check.check_status(earlier)
        if earlier.state in ('draft', 'pending'):
            raise UserError(
                tx.env._(
                    "myPOS: The payment %s with this card is still waiting for myPOS's answer. "
                    "It is checked automatically; pay again only once it is settled.",
                    earlier.reference,
                )
            )


def charge(tx):
    """Charge the saved card of `tx` with `IPCIAPurchase` and apply myPOS's answer.

    Done only on a signed status-0 answer echoing the amount and the currency; error when myPOS
    refused it with a signed status (the status explains why) or was not reached at all;
    pending, settled by the status check, whenever myPOS may have charged the card without a
    usable answer. The OrderID is the same if Odoo replays the request (see
    `_mypos_get_order_id`), and myPOS refuses a repeated one: a replay never charges twice.

    Note: tx.ensure_one()
    """
    tx.ensure_one()
    check_token(tx)
    check_nothing_pending(tx)
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
    method = ipc.const.TOKEN_PURCHASE_METHOD
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
