# Part of payment_mypos. License LGPL-3.

from odoo import _, fields, models
from odoo.exceptions import ValidationError

from .. import ipc, utils


# A further class of the same model, as models/ splits one that grows too long (README, Layout).
class PaymentTransaction(models.Model):
    """The payment methods of myPOS's page (`PaymentMethod`): the one the shopper chose on Odoo's
    form, or those the page may offer, and the one myPOS reports the shopper used.
    https://developers.mypos.com/apis/checkout-api/purchase"""

    _inherit = 'payment.transaction'  # pylint: disable=consider-merging-classes-inherited

    mypos_payment_methods = fields.Char(
        string="myPOS Methods Offered",
        help="The PaymentMethod the purchase sent to myPOS (1 card, 2 iDEAL, 4 Satispay, 5 TWINT, "
        "6 IRIS): a payment made with another method is refused.",
        readonly=True,
        copy=False,
    )
    mypos_payment_method = fields.Char(
        string="myPOS Method Used",
        help="The code of the payment method myPOS reported the shopper used (PaymentMethod); the "
        "transaction shows it once post-processed.",
        readonly=True,
        copy=False,
    )

    def _mypos_payment_method_list(self):
        """Return the `PaymentMethod` of the purchase: the method the shopper chose on Odoo's form
        (a card brand is a card), or, when the provider lets the shopper choose on myPOS's page,
        every method Odoo's form could offer them for this currency and country; a card only when
        a card is to be saved (`mypos_card_token_request` is set first).

        :rtype: str
        :raise ValidationError: If myPOS's page cannot open the chosen method.
        """
        self.ensure_one()
        values_by_code = {code: value for value, code in ipc.const.PAYMENT_METHODS.items()}
        saving_card = self.mypos_card_token_request not in (False, ipc.const.CARD_TOKEN_NONE)
        if self.provider_id.mypos_shopper_chooses and not saving_card:
            methods = (
                self.env['payment.method']
                .sudo()
                ._get_compatible_payment_methods(
                    [self.provider_id.id], self.partner_id.id, currency_id=self.currency_id.id
                )
            )
            values = sorted({values_by_code[m.code] for m in methods if m.code in values_by_code})
            if values:
                return ','.join(values)
        method = self.payment_method_id
        code = (method.primary_payment_method_id or method).code
        value = values_by_code.get(code)
        if not value:
            raise ValidationError(_("myPOS: %s cannot be paid on myPOS's page.", method.name))
        return value

    def _mypos_check_payment_method(self, message):
        """Return the code of the method a payment notification says the shopper used, after
        refusing one the purchase did not offer (so that myPOS reverses it).

        :param ipc.Message message: The verified `IPCPurchaseNotify`.
        :return: The payment method's code (`card`, `ideal`...), or False when not stated.
        :raise ValidationError: If the method is ill-formed or was not offered.
        """
        try:
            used = ipc.read_payment_method(message)
        except ipc.IPCError as error:
            raise ValidationError(_("myPOS: %s", utils.explain_error(self.env, error))) from None
        offered = self.mypos_payment_methods
        if used and offered and used not in offered.split(','):
            raise ValidationError(
                _(
                    "myPOS: The payment was made with PaymentMethod %(used)s, which the purchase "
                    "did not offer (%(offered)s); it is refused so that myPOS reverses it.",
                    used=used,
                    offered=offered,
                )
            )
        return ipc.const.PAYMENT_METHODS[used] if used else False
