# Part of payment_mypos. License LGPL-3.

from odoo import api, models


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
