# Part of payment_mypos. License LGPL-3.

from odoo import api, models, tools


class PaymentMethod(models.Model):
    _inherit = 'payment.method'

    @api.model
    @tools.ormcache('code')
    def _mypos_get_id_from_code(self, code):
        """Return the id of the active payment method with this code, or 0; cached per process.

        Every myPOS payment notification names the card brand, which the transaction then shows;
        payment methods change rarely, so the webhook looks the brand up in memory instead of
        searching for it on every payment. Any change to payment methods clears the cache, in
        every worker (see `create`, `write` and `unlink`).

        :param str code: The code of the payment method (`visa`, `mastercard`...).
        :rtype: int
        """
        return self.sudo()._get_from_code(code).id or 0

    @api.model_create_multi
    def create(self, vals_list):
        self.env.registry.clear_cache()
        return super().create(vals_list)

    def write(self, vals):
        self.env.registry.clear_cache()
        return super().write(vals)

    def unlink(self):
        self.env.registry.clear_cache()
        return super().unlink()
