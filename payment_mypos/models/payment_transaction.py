# Part of payment_mypos. License LGPL-3.

import logging

from werkzeug import urls

from odoo import _, api, fields, models, tools
from odoo.exceptions import UserError, ValidationError

from odoo.addons.payment import utils as payment_utils
from odoo.addons.payment.const import CURRENCY_MINOR_UNITS

from .. import compat, const, ipc, utils
from ..controllers.main import MyPOSController

_logger = logging.getLogger(__name__)


class PaymentTransaction(models.Model):
    _inherit = 'payment.transaction'

    mypos_order_id = fields.Char(
        string="myPOS Order ID",
        help="The OrderID sent to myPOS for this payment attempt.",
        readonly=True,
        copy=False,
        index='btree_not_null',
    )

    mypos_live = fields.Boolean(
        string="myPOS Live",
        help="Whether the payment was sent to myPOS's live endpoint: its messages are then never "
        "verified with the public sandbox certificate.",
        readonly=True,
        copy=False,
    )
    mypos_card_token_request = fields.Selection(
        string="myPOS Card Saving",
        selection=[
            ('0', "Not asked"),
            ('1', "Save the card only"),
            ('2', "Pay and save the card"),
        ],
        help="What the hosted payment asked myPOS about the card (CardTokenRequest): a card token "
        "is accepted only from a payment that asked for one.",
        readonly=True,
        copy=False,
    )
    mypos_card_brand = fields.Char(
        string="myPOS Card Brand",
        help="The code of the payment method of the card brand myPOS reported (CardType); the "
        "transaction shows it once post-processed.",
        readonly=True,
        copy=False,
    )
    mypos_is_reversal = fields.Boolean(
        string="myPOS Reversal",
        help="A refund recorded because myPOS reversed the payment after Odoo had confirmed it.",
        readonly=True,
        copy=False,
    )

    mypos_log_ids = fields.One2many(
        string="myPOS Log",
        comodel_name='payment.mypos.log',
        inverse_name='transaction_id',
        readonly=True,
    )
    mypos_log_count = fields.Integer(string="myPOS Messages", compute='_compute_mypos_log_count')
    mypos_next_check = fields.Datetime(
        string="Next myPOS Status Check",
        help="When the scheduled action will next ask myPOS about this transaction. Empty once "
        "the transaction is final or the checks gave up.",
        readonly=True,
        copy=False,
        index='btree_not_null',
    )
    mypos_check_count = fields.Integer(
        string="myPOS Status Checks",
        help="Scheduled status checks made so far.",
        readonly=True,
        copy=False,
    )
    mypos_last_check = fields.Datetime(string="Last myPOS Status Check", readonly=True, copy=False)
    mypos_last_refund_request = fields.Datetime(
        string="Last Refund Sent to myPOS",
        readonly=True,
        copy=False,
    )

    # One transaction per OrderID: the notifications' lookup relies on it. The same constraint,
    # payment_transaction_mypos_order_id_uniq, in each series' way of declaring it.
    if compat.ODOO_19:
        _mypos_order_id_uniq = models.Constraint(
            'unique(mypos_order_id)', "The myPOS Order ID must be unique."
        )
    else:
        _sql_constraints = [
            ('mypos_order_id_uniq', 'unique(mypos_order_id)', "The myPOS Order ID must be unique.")
        ]

    def init(self):
        """Override of `base` to index the open transactions by their next status check: the
        status check's search stays as fast with millions of finished transactions."""
        res = super().init()
        tools.create_index(
            self.env.cr,
            'payment_transaction_mypos_due_index',
            self._table,
            ['mypos_next_check NULLS FIRST', 'id'],
            where="state IN ('draft', 'pending')",
        )
        return res

    # === COMPUTE METHODS ===#

    @api.depends('mypos_log_ids')
    def _compute_mypos_log_count(self):
        for tx in self:
            tx.mypos_log_count = len(tx.mypos_log_ids)

    # === BUSINESS METHODS - PAYMENT FLOW ===#

    def _mypos_get_order_id(self):
        """Return the myPOS OrderID of the transaction, assigning it on first use.

        Note: self.ensure_one()
        """
        self.ensure_one()
        if not self.mypos_order_id:
            # The OrderID of a call sent at once (a refund, a saved card's charge) must come out
            # the same if Odoo replays the request that sends it (serialization failure): its
            # reference and its source (the payment, the token) are replayed identically, its own
            # id is not. myPOS then refuses the replay as a duplicate OrderID instead of moving
            # the money twice. See `_mypos_send_money_call`.
            sent_at_once = self.operation == 'refund' or self.operation in const.TOKEN_OPERATIONS
            if self.operation == 'refund':
                serial = self.source_transaction_id.id
            else:
                serial = self.token_id.id if sent_at_once else self.id
            self.write(
                {
                    'mypos_order_id': ipc.make_order_id(
                        self.reference, utils.instance_tag(self.env), serial
                    ),
                    'mypos_live': self.provider_id.state == 'enabled',
                }
            )
            if sent_at_once:  # A clash must surface before the call is sent.
                self.flush_recordset(['mypos_order_id'])
        return self.mypos_order_id

    def _mypos_decimals(self):
        return CURRENCY_MINOR_UNITS.get(self.currency_id.name, self.currency_id.decimal_places)

    def _mypos_get_cart_lines(self):
        """Return (name, quantity, total in minor units) for each line of the paid document.

        Only when the transaction pays exactly one sales order or one invoice in its currency;
        otherwise an empty list, and the cart becomes a single row.
        """
        documents = []
        if 'sale_order_ids' in self._fields and self.sale_order_ids:
            documents.append(
                [
                    (
                        line.product_id.display_name or line.name,
                        line.product_uom_qty,
                        line.price_total,
                    )
                    for line in self.sale_order_ids.order_line
                    if not line.display_type
                ]
                if len(self.sale_order_ids) == 1
                and self.sale_order_ids.currency_id == self.currency_id
                else None
            )
        if 'invoice_ids' in self._fields and self.invoice_ids:
            documents.append(
                [
                    (line.product_id.display_name or line.name, line.quantity, line.price_total)
                    for line in self.invoice_ids.invoice_line_ids
                    if line.display_type == 'product'
                ]
                if len(self.invoice_ids) == 1 and self.invoice_ids.currency_id == self.currency_id
                else None
            )
        if len(documents) != 1 or documents[0] is None:
            return []
        return [
            (name, quantity, payment_utils.to_minor_currency_units(total, self.currency_id))
            for name, quantity, total in documents[0]
        ]

    def _get_specific_rendering_values(self, processing_values):
        """Override of `payment` to return the signed myPOS purchase form.

        Note: self.ensure_one() from `_get_processing_values`

        :param dict processing_values: The generic processing values of the transaction.
        :return: `api_url` and `fields`, the (name, value) pairs to post in order.
        :rtype: dict
        """
        res = super()._get_specific_rendering_values(processing_values)
        if self.provider_code != 'mypos':
            return res

        provider = self.provider_id
        base_url = provider.get_base_url()
        decimals = self._mypos_decimals()
        amount_minor = payment_utils.to_minor_currency_units(self.amount, self.currency_id)
        order_id = self._mypos_get_order_id()
        if self._mypos_uses_preauth():
            try:
                preauth = self._mypos_preauth_form(order_id, amount_minor)
            except ipc.IPCError as error:
                raise self._mypos_cannot_start(error) from None
            _logger.info(
                "Redirecting %s (myPOS OrderID %s) to myPOS to authorise %s %s",
                self.reference,
                order_id,
                dict(preauth)['Amount'],
                self.currency_id.name,
            )
            return {'api_url': provider._mypos_get_api_url(), 'fields': preauth}
        self.mypos_card_token_request = self._mypos_card_token_request()
        self.mypos_payment_methods = self._mypos_payment_method_list()
        if self.mypos_card_token_request == ipc.const.CARD_TOKEN_NONE:
            self.tokenize = False  # Not the customer's session: no card is saved onto them.
        # The customer's details go to myPOS's page only in their own session (or an
        # employee's); a holder of their link types their own there (PaymentParametersRequired=2).
        customer = (
            ipc.customer_fields(
                email=self.partner_email,
                name=self.partner_name,
                phone=self.partner_phone,
                country_code=self.partner_country_id.code,
                city=self.partner_city,
                zip_code=self.partner_zip,
                address=self.partner_address,
            )
            if self._mypos_is_customer_session()
            else []
        )
        try:
            purchase = ipc.build_purchase(
                provider._mypos_get_credentials(),
                source=const.SOURCE,
                order_id=order_id,
                amount_minor=amount_minor,
                decimals=decimals,
                currency=self.currency_id.name,
                url_ok=urls.url_join(base_url, MyPOSController._return_url),
                url_cancel=urls.url_join(base_url, MyPOSController._cancel_url),
                url_notify=urls.url_join(base_url, MyPOSController._webhook_url),
                language=ipc.checkout_language(self.partner_lang),
                customer=customer,
                cart=ipc.build_cart(
                    self._mypos_get_cart_lines(),
                    amount_minor,
                    decimals,
                    self.currency_id.name,
                    fallback_name=self.reference,
                ),
                card_token_request=self.mypos_card_token_request,
                payment_method=self.mypos_payment_methods,
            )
        except ipc.IPCError as error:
            raise self._mypos_cannot_start(error) from None
        _logger.info(
            "Redirecting %s (myPOS OrderID %s) to myPOS for %s %s (CardTokenRequest %s, "
            "PaymentMethod %s)",
            self.reference,
            order_id,
            dict(purchase).get('Amount', '-'),
            self.currency_id.name,
            self.mypos_card_token_request,
            self.mypos_payment_methods,
        )
        return {'api_url': provider._mypos_get_api_url(), 'fields': purchase}

    def _mypos_cannot_start(self, error):
        """Return the error that tells why the hosted payment of this transaction cannot start."""
        _logger.warning("Cannot build the myPOS form of %s: %s", self.reference, error)
        return ValidationError(
            _("myPOS: The payment cannot be started: %s", utils.explain_error(self.env, error))
        )

    # === BUSINESS METHODS - NOTIFICATIONS ===#

    @api.model
    def _get_tx_from_notification_data(self, provider_code, notification_data):
        """Override of `payment` (18.0) to find the transaction by its myPOS OrderID; 19.0 has no
        such hook: every message is looked up with `_mypos_find_tx` before it is processed."""
        tx = super()._get_tx_from_notification_data(provider_code, notification_data)
        if provider_code != 'mypos' or len(tx) == 1:
            return tx
        return self._mypos_find_tx(notification_data)

    @api.model
    def _mypos_find_tx(self, form):
        """Find the transaction a myPOS form is about, by its myPOS OrderID.

        The OrderID must be the only one that any cut of the message's signed values names
        (docs/mypos-protocol.md §3.3a): a message that could be read as being about another
        transaction is refused.

        :param ipc.SignedForm form: The form read from myPOS's message.
        :return: The transaction.
        :rtype: recordset of `payment.transaction`
        :raise ValidationError: If no transaction, or more than one reading, matches.
        """
        order_id = form.order_id
        readings = form.order_id_readings or (order_id,)
        # Search and read in one query: the fields a read of the transaction would prefetch.
        prefetched = [
            name
            for name, field in self._fields.items()
            if field.prefetch is True and compat.can_read(self, field)
        ]
        tx = self.search_fetch(
            [('mypos_order_id', 'in', list(readings)), ('provider_code', '=', 'mypos')],
            prefetched,
        )
        if not tx:
            raise ValidationError(_("myPOS: No transaction found matching OrderID %s.", order_id))
        if len(tx) > 1 or tx.mypos_order_id != order_id:
            raise ValidationError(
                _(
                    "myPOS: The message can also be read as being about another transaction than "
                    "OrderID %s; it is refused.",
                    order_id,
                )
            )
        return tx

    def _mypos_verify(self, form):
        """Verify a form about this transaction with its provider's myPOS certificate.

        A payment opened under live credentials is never verified with myPOS's public sandbox
        certificate, whatever the provider was switched to since.

        :param ipc.SignedForm form: The form read from myPOS's message.
        :rtype: ipc.Message
        :raise ipc.IPCError: If the signature does not verify, or only the sandbox could verify it.
        """
        self.ensure_one()
        certificate = self.provider_id._mypos_get_credentials().certificate
        if self.mypos_live and self.provider_id._mypos_is_sandbox_certificate(certificate):
            raise ipc.InvalidSignature(
                "the transaction was opened in live mode: myPOS's public sandbox certificate "
                "cannot verify its messages (configure the store's myPOS certificate)",
                code='live_sandbox_certificate',
            )
        return form.verify(certificate)

    def _mypos_check_notification_data(self, message):
        """Check that a verified message is about this transaction: store, amount, currency.

        :param ipc.Message message: The verified message.
        :raise ValidationError: If the SID, the amount or the currency differ.
        """
        credentials = self.provider_id._mypos_get_credentials()
        # The answers to our calls carry no SID (see the refund page of myPOS's documentation,
        # https://developers.mypos.com/apis/checkout-api/refund); every form does.
        if (message.sid or not message.status) and message.sid != credentials.sid:
            raise ValidationError(
                _(
                    "myPOS: The message is for store %(sid)s, not this provider's store.",
                    sid=message.sid,
                )
            )
        if message.currency != self.currency_id.name:
            raise ValidationError(
                _(
                    "myPOS: The currency %(received)s does not match the transaction's "
                    "%(expected)s.",
                    received=message.currency,
                    expected=self.currency_id.name,
                )
            )
        try:
            amount = ipc.parse_amount(message.amount, self._mypos_decimals())
        except ipc.IPCError as error:
            raise ValidationError(_("myPOS: %s", utils.explain_error(self.env, error))) from None
        # myPOS states every amount positive; a refund transaction carries it negative.
        signed_amount = -self.amount if self.operation == 'refund' else self.amount
        expected = payment_utils.to_minor_currency_units(signed_amount, self.currency_id)
        if amount != expected:
            raise ValidationError(
                _(
                    "myPOS: The amount %(received)s does not match the transaction's %(expected)s.",
                    received=message.amount,
                    expected=ipc.format_amount(expected, self._mypos_decimals()),
                )
            )

    def _process_notification_data(self, notification_data):
        """Override of `payment` (18.0) to apply a verified myPOS message to the transaction."""
        res = super()._process_notification_data(notification_data)
        if self.provider_code == 'mypos':
            self._mypos_apply_message(notification_data)
        return res

    def _extract_amount_data(self, payment_data):
        """Override of `payment` (19.0) to opt out of its amount check for myPOS messages: ours
        (`_mypos_check_notification_data`) refuses a mismatched message, so that myPOS reverses
        the payment, where 19.0's would put the transaction in error and answer OK."""
        if self.provider_code != 'mypos':
            return super()._extract_amount_data(payment_data)
        return None

    def _apply_updates(self, payment_data):
        """Override of `payment` (19.0) to apply a verified myPOS message to the transaction."""
        if self.provider_code != 'mypos':
            return super()._apply_updates(payment_data)
        return self._mypos_apply_message(payment_data)

    def _mypos_apply_message(self, message):
        """Apply a verified myPOS message to the transaction.

        `IPCPurchaseNotify` makes it done; `IPCPurchaseRollback` cancels it, or books the reversal
        when it was already done; `IPCPurchaseCancel` cancels it while draft; `IPCPurchaseOK` (a
        browser return) only marks it pending. The messages of a pre-authorisation and the answers
        to its capture or release are applied in models/payment_transaction_preauth.py.

        Note: self.ensure_one()

        :param ipc.Message message: The verified message.
        :raise ValidationError: If the message does not match the transaction, or cannot be
                                applied without losing money state.
        """
        self._mypos_check_notification_data(message)
        self._mypos_check_message_kind(message)
        preauth_calls = (
            ipc.const.PREAUTH_COMPLETION_METHOD,
            ipc.const.PREAUTH_CANCELLATION_METHOD,
        )
        if self.operation == 'refund' or message.method == ipc.const.REFUND_METHOD:
            self._mypos_apply_refund(message)
        elif message.method in preauth_calls:
            self._mypos_apply_preauth_answer(message)
        elif message.method in ipc.const.PREAUTH_FORM_METHODS:
            self._mypos_apply_preauth_message(message)
        elif message.method == ipc.const.NOTIFY_METHODS['done'] or (
            message.method == ipc.const.TOKEN_PURCHASE_METHOD
            and self.operation in const.TOKEN_OPERATIONS
        ):
            self._mypos_apply_payment(message)
        elif message.method == ipc.const.NOTIFY_METHODS['cancel']:
            self._mypos_apply_rollback()
        elif message.method == ipc.const.RETURN_METHODS['cancel']:
            if self.state == 'draft':
                self._set_canceled(state_message=_("The payment was cancelled on myPOS's page."))
        elif message.method == ipc.const.RETURN_METHODS['ok']:
            if self.state == 'draft':
                self._set_pending()
        else:
            raise ValidationError(_("myPOS: Received an unsupported message %s.", message.method))

    def _mypos_apply_payment(self, message):
        """Mark the transaction done with its myPOS reference; idempotent."""
        reference = message.trnref
        if self.state == 'done':
            if self.provider_reference != reference:
                raise ValidationError(
                    _(
                        "myPOS: The transaction is already paid with myPOS reference %(paid)s; "
                        "refusing a second payment %(new)s so that myPOS reverses it.",
                        paid=self.provider_reference,
                        new=reference,
                    )
                )
            return  # A repeated notification.
        if self.state == 'cancel':
            raise ValidationError(
                _(
                    "myPOS: The transaction is cancelled in Odoo; refusing the payment so that "
                    "myPOS reverses it."
                )
            )
        method_used = (
            self._mypos_check_payment_method(message)
            if message.method == ipc.const.NOTIFY_METHODS['done']
            else False
        )
        card = self._mypos_read_card(message)
        self.provider_reference = reference
        self.mypos_payment_method = method_used
        # The card brand only names the payment method and moves no money: kept with the
        # state, in the same row update, and shown when the transaction is post-processed.
        self.mypos_card_brand = const.CARD_TYPE_MAPPING.get(message.extra('CardType'), False)
        if self.operation == 'validation' and card is None:
            self._set_error(_("myPOS: myPOS saved no card (its notification has no card token)."))
            return
        self._set_done()
        self._mypos_save_card(card)

    def _mypos_show_card_brand(self):
        """Show the card brand, or the method other than a card, that myPOS reported as the
        transaction's payment method, when Odoo has an active payment method of that code; looked
        up after the webhook has answered, so that the webhook spends no query on it."""
        for tx in self:
            method = tx.mypos_payment_method
            code = tx.mypos_card_brand or (method if method and method != 'card' else False)
            if not code or tx.payment_method_id.code == code:
                continue
            method_id = self.env['payment.method']._mypos_get_id_from_code(code)
            if method_id:
                tx.payment_method_id = method_id

    # === BUSINESS METHODS - THE ONE MONEY PATH ===#

    def _mypos_send_money_call(self, method, params):
        """Send a call that moves money (`IPCRefund`, `IPCIAPurchase`) and apply myPOS's answer.

        The call is recorded (committed) before it is sent, and held back while another one of
        the same documents is unsettled, so that a rollback cannot hide it nor a retry repeat it.
        Done only on a signed status-0 answer that matches the transaction; otherwise classified
        by `_mypos_apply_call_failure`.

        Note: self.ensure_one()

        :param str method: The IPC method.
        :param list params: The call's own (name, value) pairs, in posting order.
        :raise UserError: If another call of the same documents holds them.
        """
        self.ensure_one()
        holding = self.env['payment.mypos.outbox']._mypos_reserve(self, method)
        if holding:
            order_id, reference = holding[0][:2]
            raise UserError(
                self._mypos_call_message(method, 'held', order_id=order_id, reference=reference)
            )
        try:
            answer = self.provider_id._mypos_make_request(method, params, tx=self)
        except ipc.RemoteError as error:
            self._mypos_apply_call_failure(method, error)
            return
        try:
            with self.env.cr.savepoint():
                compat.process_message(self, answer)
        except ValidationError as error:
            # A signed success that does not match the call: money may have moved.
            _logger.warning(
                "Unexpected myPOS answer to %s of %s: %s", method, self.reference, error
            )
            self._set_pending(
                state_message=self._mypos_call_message(method, 'mismatch', error=error.args[0])
            )
            self._mypos_schedule_check()

    def _mypos_apply_call_failure(self, method, error):
        """Put the transaction in error when the money surely did not move, else leave it pending
        for the status check; never send the call again.

        :param str method: The IPC method that failed.
        :param ipc.RemoteError error: Why the call gave no usable answer.
        """
        explained = utils.explain_error(self.env, error)
        if self._mypos_is_duplicate(error):
            # Our own, replay-stable OrderID was already received (a replayed request): ask
            # myPOS how it ended now; the scheduled check takes over if it cannot tell yet.
            self._set_pending(
                state_message=self._mypos_call_message(method, 'duplicate', error=explained)
            )
            self._mypos_schedule_check()
            self._mypos_check_status()
            if self.state not in ('draft', 'pending'):  # Settled at once: no check left to make.
                self.mypos_next_check = False
        elif error.kind is ipc.Failure.STATUS:  # A signed refusal.
            self._set_error(self._mypos_call_message(method, 'refused', error=explained))
        elif not error.kind.may_have_moved_money:  # Nothing was sent.
            self._set_error(self._mypos_call_message(method, 'not_sent', error=explained))
        else:  # Timeout, HTTP error, garbage, unsigned or wrongly signed: money may have moved.
            self._set_pending(
                state_message=self._mypos_call_message(method, 'unclear', error=explained)
            )
            self._mypos_schedule_check()

    @staticmethod
    def _mypos_is_duplicate(error):
        """Whether myPOS refused a call as a repeat of an OrderID it already received."""
        return (
            error.kind is ipc.Failure.STATUS
            and error.status_code is ipc.Status.E_DUPLICATE_TRANSMISSION
        )

    def _mypos_call_message(self, method, case, **params):
        """Return what a person reads about a money call (`const.MONEY_CALL_MESSAGES`), in the
        language of the current user; a hook for other wording per method and case."""
        return utils.translate(self.env, const.MONEY_CALL_MESSAGES[method][case], params)

    # === ACTION METHODS ===#

    def action_mypos_view_log(self):
        """Open the myPOS log of the transaction."""
        self.ensure_one()
        name = _("myPOS Log")  # Apart: 19.0's term extractor also took the domain's field name.
        return {
            'type': 'ir.actions.act_window',
            'name': name,
            'res_model': 'payment.mypos.log',
            'view_mode': 'list,form',
            'domain': [('transaction_id', '=', self.id)],
            'context': {'create': False},
        }
