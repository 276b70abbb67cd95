# Part of payment_mypos. License LGPL-3.

from odoo import _, api, fields, models


class PaymentMyPOSDisconnectWizard(models.TransientModel):
    """Confirmation of a myPOS disconnection, saying how many payments are still under way."""

    _name = 'payment.mypos.disconnect.wizard'
    _description = "Disconnect myPOS"

    provider_id = fields.Many2one(
        comodel_name='payment.provider',
        required=True,
        readonly=True,
        ondelete='cascade',
        domain=[('code', '=', 'mypos')],
    )
    open_transaction_count = fields.Integer(
        string="Transactions Under Way",
        compute='_compute_open_transaction_count',
    )
    summary = fields.Text(compute='_compute_open_transaction_count')

    @api.depends('provider_id')
    def _compute_open_transaction_count(self):
        for wizard in self:
            count = (
                len(wizard.provider_id._mypos_get_open_transactions()) if wizard.provider_id else 0
            )
            wizard.open_transaction_count = count
            if count:
                wizard.summary = _(
                    "%(count)s myPOS transaction(s) of this provider are still draft or pending. "
                    "Their customers may still complete the payment on myPOS's page: the myPOS "
                    "certificate is kept, so their notifications are still verified and applied, "
                    "but refunds and status checks need the credentials again.",
                    count=count,
                )
            else:
                wizard.summary = _("No myPOS transaction of this provider is draft or pending.")

    def action_confirm(self):
        """Disconnect the provider, then close the dialog (the provider form reloads)."""
        self.ensure_one()
        self.provider_id._mypos_disconnect()
        return {'type': 'ir.actions.act_window_close'}
