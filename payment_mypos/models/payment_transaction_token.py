# Part of payment_mypos. License LGPL-3.

import logging

from odoo import _, models
from odoo.exceptions import UserError, ValidationError
from odoo.osv import expression

from odoo.addons.payment import utils as payment_utils

from .. import const, ipc, utils

_logger = logging.getLogger(__name__)


# A further class of the same model, as models/ splits one that grows too long (README, Layout).
class PaymentTransaction(models.Model):
    """Saved cards: the card myPOS stores at checkout (`CardTokenRequest`), the token Odoo keeps
    of it, and its charges server to server (`IPCIAPurchase`), never twice.
    https://developers.mypos.com/apis/checkout-api/purchase"""

    _inherit = 'payment.transaction'  # pylint: disable=consider-merging-classes-inherited

    # === BUSINESS METHODS - SAVING A CARD ===#

    def _mypos_card_token_request(self):
        """Return the `CardTokenRequest` of the hosted purchase: store the card only to save a
        payment method, pay and store it when the shopper asked to save it in the customer's own
        session (never onto a customer whose link someone else holds)."""
        if self.operation == 'validation':
            return ipc.const.CARD_TOKEN_STORE
        if self.tokenize and not self.partner_id.is_public and self._mypos_is_customer_session():
            return ipc.const.CARD_TOKEN_PAY_AND_STORE
        return ipc.const.CARD_TOKEN_NONE

    def _mypos_read_card(self, message):
        """Return the saved card a verified payment message carries, if this transaction asked
        for one.

        A token nobody asked for means the purchase form was re-labelled (docs/mypos-protocol.md,
        what the signature does not cover), possibly into "store the card only", which moves no
        money: the message is refused.

        :rtype: ipc.Card or None
        :raise ValidationError: If the message carries a token the transaction did not ask for.
        """
        if self.operation in const.TOKEN_OPERATIONS:
            return None  # A charge of a card already saved: nothing to save.
        requested = self.mypos_card_token_request or ipc.const.CARD_TOKEN_NONE
        if requested == ipc.const.CARD_TOKEN_NONE:
            if message.extra('CardToken'):
                raise ValidationError(
                    _(
                        "myPOS: The payment notification carries a card token that Odoo never "
                        "asked for; refusing it so that myPOS reverses it."
                    )
                )
            return None
        try:
            return ipc.read_card(message)
        except ipc.IPCError as error:
            _logger.warning("The card of %s cannot be saved: %s", self.reference, error)
            return None

    def _mypos_save_card(self, card):
        """Keep the card myPOS saved for this transaction as the customer's token, once.

        The same card saved again (myPOS gives a card the same token) is the token already kept;
        a repeated notification finds `token_id` set and adds nothing. Never for the public
        partner (a guest has no payment methods to manage).

        :param ipc.Card card: The card, from `_mypos_read_card`; None when myPOS returned none.
        :return: The token, if one was kept.
        :rtype: recordset of `payment.token`
        """
        if self.token_id or not self.tokenize:
            return self.token_id
        self.tokenize = False  # Whatever happens below, no later message of it saves a card.
        if card is None or self.partner_id.is_public:
            if card is not None:
                _logger.warning("Not saving the card of %s: its partner is public", self.reference)
            return self.token_id
        self._mypos_show_card_brand()  # The token shows the card's brand, as the payment will.
        Token = self.env['payment.token'].sudo()
        token = Token.search(
            [
                ('provider_id', '=', self.provider_id.id),
                ('partner_id', '=', self.partner_id.id),
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
                    'provider_id': self.provider_id.id,
                    'payment_method_id': self.payment_method_id.id,
                    'partner_id': self.partner_id.id,
                    'provider_ref': card.token,
                    'payment_details': details,
                    'mypos_sid': self.provider_id.sudo()._mypos_get_credentials().sid,
                }
            )
            _logger.info(
                "Saved the myPOS card of %s as token %s of partner %s",
                self.reference,
                token.id,
                self.partner_id.id,
            )
        self.token_id = token
        return token

    # === BUSINESS METHODS - CHARGING A SAVED CARD ===#

    def _send_payment_request(self):
        """Override of `payment` to charge the saved card with myPOS's `IPCIAPurchase`; see
        `_mypos_charge`.

        Note: self.ensure_one()
        """
        res = super()._send_payment_request()
        if self.provider_code == 'mypos':
            self._mypos_charge()
        return res

    def _mypos_charge(self):
        """Charge the saved card with `IPCIAPurchase` and apply myPOS's answer.

        At most once per documents: an earlier charge of the same invoices or orders is settled
        first and, if it went through, this one is refused; then the one money path
        (`_mypos_send_money_call`) records the call before sending it. The OrderID is the same if
        Odoo replays the request (see `_mypos_get_order_id`), and myPOS refuses a repeated one.

        Note: self.ensure_one()
        """
        self.ensure_one()
        self._mypos_check_token()
        self._mypos_check_owner_and_amount()
        currency = self.currency_id
        decimals = self._mypos_decimals()
        amount_minor = payment_utils.to_minor_currency_units(self.amount, currency)
        try:
            params = ipc.token_purchase_params(
                order_id=self._mypos_get_order_id(),
                amount_minor=amount_minor,
                decimals=decimals,
                currency=currency.name,
                card_token=self.token_id.sudo().provider_ref,
                cart=ipc.build_cart(
                    self._mypos_get_cart_lines(),
                    amount_minor,
                    decimals,
                    currency.name,
                    fallback_name=self.reference,
                ),
            )
        except ipc.IPCError as error:  # Nothing was sent.
            self._set_error(
                _("myPOS: The payment cannot be sent: %s", utils.explain_error(self.env, error))
            )
            return
        paid = self._mypos_settle_earlier_charges()
        if paid:
            self._mypos_refuse_as_paid(paid)
            return
        self._mypos_send_money_call(ipc.const.TOKEN_PURCHASE_METHOD, params)

    def _mypos_check_token(self):
        """Refuse to charge a token that is not a live card of this provider's store.

        :raise UserError: If the token is archived, of another provider, or saved on another store,
                          or if the provider captures manually.
        """
        token = self.token_id.sudo()
        provider = self.provider_id.sudo()
        if not token.active or token.provider_id != provider:
            raise UserError(
                _("myPOS: The saved card %s cannot be used any more.", token.display_name)
            )
        if provider.capture_manually:  # A charge is never an authorisation to capture later.
            raise UserError(
                _(
                    "myPOS: The provider captures amounts manually, and a saved card cannot be "
                    "pre-authorised: pay on myPOS's page instead of with %s.",
                    token.display_name,
                )
            )
        if not token.mypos_sid or token.mypos_sid != provider._mypos_get_credentials().sid:
            raise UserError(
                _(
                    "myPOS: The card %s was saved on another myPOS store than the provider's "
                    "current one: the customer must pay once on myPOS's page to save it again.",
                    token.display_name,
                )
            )

    def _mypos_check_owner_and_amount(self):
        """Refuse a shopper's one-click charge of a card that is not theirs, or of more than owed.

        Whoever holds a customer's invoice, order or payment link reaches Odoo's payment form for
        that customer: only the partner who saved the card (or an employee, who may charge it from
        the back office anyway) may charge it, never for more than the linked documents still
        owe. A contact of the same company is another partner: their cards are not shared.

        :raise UserError: If the current user may not charge the card, or the amount is too high.
        """
        if self.operation != 'online_token':
            return  # A back-office charge: made by an accountant, for what they registered.
        user = self.env.user
        if not user._is_internal() and user.partner_id != self.token_id.sudo().partner_id:
            raise UserError(
                _(
                    "myPOS: This saved card can only be used by the customer who saved it. Pay "
                    "with another card on myPOS's page."
                )
            )
        owed = self._mypos_amount_owed()
        if owed is not None and self.currency_id.compare_amounts(self.amount, owed) > 0:
            raise UserError(
                _(
                    "myPOS: %(amount)s is more than the %(owed)s still owed on this document; the "
                    "saved card was not charged.",
                    amount=self.currency_id.format(self.amount),
                    owed=self.currency_id.format(owed),
                )
            )

    def _mypos_amount_owed(self):
        """Return what the invoices and orders this transaction pays still owe, in its currency
        (None: it pays none)."""
        owed = None
        today = self.env.cr.now().date()
        for name in ('invoice_ids', 'sale_order_ids'):
            if name not in self._fields:
                continue
            for document in self[name].sudo():
                left = (
                    document.amount_residual
                    if name == 'invoice_ids'
                    else document.amount_total - document.amount_paid
                )
                owed = (owed or 0.0) + document.currency_id._convert(
                    left, self.currency_id, document.company_id, today
                )
        return owed

    def _mypos_earlier_charges(self):
        """Return the earlier myPOS charges that may still settle the documents this one pays.

        Those of the same invoices or orders, with any saved card (with none: the same card and
        amount), that were sent (a draft with an OrderID), wait for myPOS, or are done but not
        post-processed yet (the invoice does not show them yet). A draft never sent holds nothing.
        """
        linked = [
            [(name, 'in', self[name].ids)]
            for name in ('invoice_ids', 'sale_order_ids')
            if name in self._fields and self[name]
        ]
        documents = (
            expression.OR(linked)
            if linked
            else [
                ('token_id', '=', self.token_id.id),
                ('amount', '=', self.amount),
                ('currency_id', '=', self.currency_id.id),
            ]
        )
        unsettled = [
            '|',
            '|',
            '&',
            ('state', '=', 'draft'),
            ('mypos_order_id', '!=', False),
            ('state', '=', 'pending'),
            '&',
            ('state', '=', 'done'),
            ('is_post_processed', '=', False),
        ]
        mine = [
            ('id', '!=', self.id),
            ('provider_code', '=', 'mypos'),
            ('operation', 'in', const.TOKEN_OPERATIONS),
        ]
        return self.sudo().search(expression.AND([mine, unsettled, documents]))

    def _mypos_settle_earlier_charges(self):
        """Settle the earlier charges of the same documents (their status is asked first).

        :return: The earlier charge that went through, if any.
        :rtype: recordset of `payment.transaction`
        :raise UserError: If one of them is still waiting for myPOS.
        """
        earlier = self._mypos_earlier_charges()
        for other in earlier.filtered(lambda t: t.state in ('draft', 'pending')):
            other._mypos_check_status()
        for other in earlier.filtered(lambda t: t.state in ('error', 'cancel')):
            other._mypos_settle_payment()  # Its payment cancelled, as the status check would.
            other.mypos_next_check = False
        paid = earlier.filtered(lambda t: t.state == 'done')
        waiting = earlier.filtered(lambda t: t.state in ('draft', 'pending'))
        if not paid and waiting:
            if waiting[0]._mypos_checks_gave_up():
                raise UserError(
                    _(
                        "myPOS: The payment %s of the same document may have been charged and "
                        "myPOS cannot tell; its automatic checks stopped. Look it up in myPOS's "
                        "dashboard before charging again.",
                        waiting[0].reference,
                    )
                )
            raise UserError(
                _(
                    "myPOS: The payment %s of the same document is still waiting for myPOS's "
                    "answer. It is checked automatically; pay again only once it is settled.",
                    waiting[0].reference,
                )
            )
        return paid[:1]

    def _mypos_refuse_as_paid(self, paid):
        """Refuse this charge because an earlier charge of the same documents went through; have
        that one shown on its documents now (post-processed), as the status check would."""
        self._set_error(
            _(
                "myPOS: Not charged: the earlier payment %(reference)s of %(amount)s for the same "
                "document went through.",
                reference=paid.reference,
                amount=paid.currency_id.format(paid.amount),
            )
        )
        _logger.warning("Refused %s: %s was paid already", self.reference, paid.reference)
        try:
            with self.env.cr.savepoint():
                paid._post_process()  # Its accounting payment posted (`_mypos_settle_payment`).
        except Exception:  # noqa: BLE001 - the cron posts it later; the refusal must stand.
            _logger.exception("Post-processing %s failed; the cron will retry it", paid.reference)
            self.env.ref('payment.cron_post_process_payment_tx')._trigger()
        paid.mypos_next_check = False

    # === BUSINESS METHODS - THE ACCOUNTING PAYMENT OF A LATE CHARGE ===#

    def _post_process(self):
        """Override of `payment` to show the card brand myPOS reported (`_mypos_show_card_brand`)
        and to post the accounting payment of a back-office charge that myPOS confirmed only
        later (see `_mypos_settle_payment`)."""
        self.filtered(lambda t: t.provider_code == 'mypos')._mypos_show_card_brand()
        res = super()._post_process()
        self._mypos_settle_payments()
        return res

    def _mypos_settle_payments(self):
        """Post or cancel the accounting payments of back-office charges that settled late."""
        for tx in self.filtered(lambda t: t.provider_code == 'mypos'):
            tx._mypos_settle_payment()

    def _mypos_settle_payment(self):
        """Post and reconcile (or cancel) the accounting payment of a back-office charge that
        settled late, after it had been left pending.

        `account_payment` cancels (18.0) or leaves unposted (19.0) the payment of a charge that
        was not done at once; when the status check later finds the card charged, the payment is
        posted and reconciled with the invoices, when it finds the charge failed, it is
        cancelled. A charge done at once is left to `account_payment`, which is posting its
        payment at that moment.
        """
        payment = self.payment_id if 'payment_id' in self._fields else None
        if (
            not payment
            or not self._mypos_waited_for_check()
            or self.operation not in const.TOKEN_OPERATIONS
        ):
            return
        if self.state == 'done':
            if payment.state in ('canceled', 'cancel'):
                payment.action_draft()
            if payment.state == 'draft' or payment.move_id.state == 'draft':
                payment.action_post()
            # Reconciled with the invoices as `account_payment` does for the payments it creates.
            invoices = self.invoice_ids.filtered(lambda invoice: invoice.state == 'posted')
            lines = (payment.move_id.line_ids + invoices.line_ids).filtered(
                lambda line: (
                    line.account_id == payment.destination_account_id and not line.reconciled
                )
            )
            if invoices and lines.filtered(lambda line: line.move_id == payment.move_id):
                lines.reconcile()
                _logger.info("Posted the payment of %s, charged after a delay", self.reference)
        elif self.state in ('error', 'cancel') and payment.state not in ('canceled', 'cancel'):
            payment.action_cancel()
