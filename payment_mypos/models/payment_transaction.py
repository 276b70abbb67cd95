# Part of payment_mypos. License LGPL-3.

import hashlib
import logging

from werkzeug import urls

from odoo import _, api, fields, models
from odoo.exceptions import ValidationError

from odoo.addons.payment import utils as payment_utils
from odoo.addons.payment.const import CURRENCY_MINOR_UNITS
from odoo.addons.payment_mypos import const, ipc
from odoo.addons.payment_mypos.controllers.main import MyPOSController


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

    _sql_constraints = [(
        'mypos_order_id_uniq', 'unique(mypos_order_id)', "The myPOS Order ID must be unique.",
    )]

    #=== BUSINESS METHODS - PAYMENT FLOW ===#

    def _mypos_get_order_id(self):
        """Return the myPOS OrderID of the transaction, assigning it on first use.

        Note: self.ensure_one()
        """
        self.ensure_one()
        if not self.mypos_order_id:
            db_uuid = self.env['ir.config_parameter'].sudo().get_param('database.uuid', '')
            instance_tag = hashlib.sha256(db_uuid.encode()).hexdigest()[:8]
            self.mypos_order_id = ipc.make_order_id(self.reference, instance_tag, self.id)
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
            documents.append([
                (line.product_id.display_name or line.name, line.product_uom_qty, line.price_total)
                for line in self.sale_order_ids.order_line
                if not line.display_type
            ] if len(self.sale_order_ids) == 1
                and self.sale_order_ids.currency_id == self.currency_id else None)
        if 'invoice_ids' in self._fields and self.invoice_ids:
            documents.append([
                (line.product_id.display_name or line.name, line.quantity, line.price_total)
                for line in self.invoice_ids.invoice_line_ids
                if line.display_type == 'product'
            ] if len(self.invoice_ids) == 1
                and self.invoice_ids.currency_id == self.currency_id else None)
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
        try:
            purchase = ipc.build_purchase(
                provider._mypos_get_credentials(),
                order_id=order_id,
                amount_minor=amount_minor,
                decimals=decimals,
                currency=self.currency_id.name,
                url_ok=urls.url_join(base_url, MyPOSController._return_url),
                url_cancel=urls.url_join(base_url, MyPOSController._cancel_url),
                url_notify=urls.url_join(base_url, MyPOSController._webhook_url),
                language=ipc.checkout_language(self.partner_lang),
                customer=ipc.customer_fields(
                    email=self.partner_email,
                    name=self.partner_name,
                    phone=self.partner_phone,
                    country_code=self.partner_country_id.code,
                    city=self.partner_city,
                    zip_code=self.partner_zip,
                    address=self.partner_address,
                ),
                cart=ipc.build_cart(
                    self._mypos_get_cart_lines(), amount_minor, decimals, self.currency_id.name,
                    fallback_name=self.reference,
                ),
            )
        except ipc.IPCError as error:
            _logger.warning("Cannot build the myPOS purchase of %s: %s", self.reference, error)
            raise ValidationError("myPOS: " + _("The payment cannot be started: %s", error))
        _logger.info(
            "Redirecting %s (myPOS OrderID %s) to myPOS for %s %s",
            self.reference, order_id, dict(purchase)['Amount'], self.currency_id.name,
        )
        return {'api_url': provider._mypos_get_api_url(), 'fields': purchase}

    #=== BUSINESS METHODS - NOTIFICATIONS ===#

    @api.model
    def _get_tx_from_notification_data(self, provider_code, notification_data):
        """Override of `payment` to find the transaction by its myPOS OrderID.

        :param str provider_code: The code of the provider that handled the transaction.
        :param dict notification_data: The verified fields posted by myPOS.
        :return: The transaction.
        :rtype: recordset of `payment.transaction`
        :raise ValidationError: If no transaction matches the OrderID.
        """
        tx = super()._get_tx_from_notification_data(provider_code, notification_data)
        if provider_code != 'mypos' or len(tx) == 1:
            return tx

        order_id = notification_data.get('OrderID')
        if not order_id:
            raise ValidationError("myPOS: " + _("Received data with no OrderID."))
        tx = self.search([('mypos_order_id', '=', order_id), ('provider_code', '=', 'mypos')])
        if not tx:
            raise ValidationError(
                "myPOS: " + _("No transaction found matching OrderID %s.", order_id)
            )
        return tx

    def _mypos_check_notification_data(self, notification_data):
        """Check that a verified message is about this transaction: store, amount, currency.

        :raise ValidationError: If the SID, the amount or the currency differ.
        """
        credentials = self.provider_id._mypos_get_credentials()
        if notification_data.get('SID') != credentials.sid:
            raise ValidationError("myPOS: " + _(
                "The message is for store %(sid)s, not this provider's store.",
                sid=notification_data.get('SID'),
            ))
        currency = notification_data.get('Currency')
        if currency != self.currency_id.name:
            raise ValidationError("myPOS: " + _(
                "The currency %(received)s does not match the transaction's %(expected)s.",
                received=currency, expected=self.currency_id.name,
            ))
        try:
            amount = ipc.parse_amount(notification_data.get('Amount'), self._mypos_decimals())
        except ipc.IPCError as error:
            raise ValidationError("myPOS: " + str(error)) from None
        expected = payment_utils.to_minor_currency_units(self.amount, self.currency_id)
        if amount != expected:
            raise ValidationError("myPOS: " + _(
                "The amount %(received)s does not match the transaction's %(expected)s.",
                received=notification_data.get('Amount'),
                expected=ipc.format_amount(expected, self._mypos_decimals()),
            ))

    def _process_notification_data(self, notification_data):
        """Override of `payment` to apply a verified myPOS message to the transaction.

        `IPCPurchaseNotify` makes it done, `IPCPurchaseRollback` and `IPCPurchaseCancel` cancel
        it, `IPCPurchaseOK` (a browser return) only marks it pending.

        Note: self.ensure_one()

        :param dict notification_data: The verified fields posted by myPOS.
        :raise ValidationError: If the message does not match the transaction, or cannot be
                                applied without losing money state.
        """
        super()._process_notification_data(notification_data)
        if self.provider_code != 'mypos':
            return

        self._mypos_check_notification_data(notification_data)
        method = notification_data.get('IPCmethod')
        if method == const.NOTIFY_METHODS['done']:
            self._mypos_apply_payment(notification_data)
        elif method in (const.NOTIFY_METHODS['cancel'], const.RETURN_METHODS['cancel']):
            self._mypos_apply_cancellation(method)
        elif method == const.RETURN_METHODS['ok']:
            if self.state == 'draft':
                self._set_pending()
        else:
            raise ValidationError(
                "myPOS: " + _("Received an unsupported message %s.", method)
            )

    def _mypos_apply_payment(self, notification_data):
        """Mark the transaction done with its myPOS reference; idempotent."""
        reference = notification_data.get('IPC_Trnref')
        if not reference:
            raise ValidationError("myPOS: " + _("The payment notification has no IPC_Trnref."))
        if self.state == 'done':
            if self.provider_reference != reference:
                raise ValidationError("myPOS: " + _(
                    "The transaction is already paid with myPOS reference %(paid)s; refusing "
                    "a second payment %(new)s so that myPOS reverses it.",
                    paid=self.provider_reference, new=reference,
                ))
            return  # A repeated notification.
        if self.state == 'cancel':
            raise ValidationError("myPOS: " + _(
                "The transaction is cancelled in Odoo; refusing the payment so that myPOS "
                "reverses it."
            ))
        self.provider_reference = reference
        payment_method = self.env['payment.method']._get_from_code(
            const.CARD_TYPE_MAPPING.get(notification_data.get('CardType'), '')
        )
        self.payment_method_id = payment_method or self.payment_method_id
        self._set_done()

    def _mypos_apply_cancellation(self, method):
        """Cancel the transaction unless it is already final."""
        if self.state == 'done':
            # myPOS reversed a payment Odoo already confirmed (our OK did not reach it). The state
            # stays, as the accounting may already be posted; a person must look at it.
            _logger.warning(
                "myPOS sent %s for %s, which is already done; leaving it for a manual check",
                method, self.reference,
            )
            message = _(
                "myPOS reports this payment as reversed (%s) although Odoo had already confirmed "
                "it. Check the payment in myPOS and refund or cancel it in Odoo accordingly.",
                method,
            )
            self.state_message = message
            self._log_message_on_linked_documents(message)
            return
        if self.state in ('draft', 'pending', 'authorized'):
            if method == const.NOTIFY_METHODS['cancel']:
                message = _("myPOS reversed the payment.")
            else:
                message = _("The payment was cancelled on myPOS's page.")
            self._set_canceled(state_message=message)
