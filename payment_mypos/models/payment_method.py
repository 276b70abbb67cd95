# Part of payment_mypos. License LGPL-3.

from odoo import _, api, models
from odoo.exceptions import ValidationError


class PaymentMethod(models.Model):
    _inherit = 'payment.method'

    @api.model
    def _mypos_get_id_from_code(self, code):
        """Return the id of the active payment method with this code, or 0: the card brand a
        myPOS notification names (`CardType`), which the transaction shows once post-processed.

        :param str code: The code of the payment method (`visa`, `mastercard`...).
        :rtype: int
        """
        return self.sudo()._get_from_code(code).id or 0

    @api.constrains('active')
    def _check_mypos_capture_cards_only(self):
        """Refuse to enable a method other than cards on a myPOS provider that captures manually
        (see `payment.provider._check_mypos_capture_cards_only`)."""
        for method in self.filtered('active'):
            if (method.primary_payment_method_id or method).code == 'card':
                continue
            capturing = method.sudo().provider_ids.filtered(
                lambda p: p.code == 'mypos' and p.capture_manually
            )
            if capturing:
                raise ValidationError(
                    _(
                        "myPOS: %(provider)s captures amounts manually, which myPOS offers for "
                        "cards only: %(method)s cannot be enabled.",
                        provider=capturing[0].name,
                        method=method.name,
                    )
                )
