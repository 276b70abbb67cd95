# Part of payment_mypos. License LGPL-3.

import logging

from odoo import api, fields, models

_logger = logging.getLogger(__name__)


class PaymentToken(models.Model):
    _inherit = 'payment.token'

    # A myPOS token charges only on the store that saved the card: the provider may be connected
    # to another store since.
    mypos_sid = fields.Char(
        string="myPOS Store ID",
        help="The myPOS store (SID) that saved the card; its token works on that store only.",
        readonly=True,
        groups='base.group_system',
    )

    @api.model
    def _get_available_tokens(self, *args, **kwargs):
        """Override of `payment` to offer no myPOS card saved on another store than its
        provider's current one (a disconnected provider is not available at all), and, outside
        the back office, only the cards of the partner logged in: whoever holds a customer's
        invoice, order or payment link must not see nor pick the customer's cards."""
        tokens = super()._get_available_tokens(*args, **kwargs)
        user = self.env.user
        own_only = not user._is_internal()
        return tokens.filtered(
            lambda token: (
                token.provider_code != 'mypos'
                or (token._mypos_usable() and (not own_only or token.partner_id == user.partner_id))
            )
        )

    def _mypos_usable(self):
        """Tell whether this myPOS token can be charged by its provider as it is set up now."""
        self.ensure_one()
        token = self.sudo()
        provider = token.provider_id
        return (
            provider.state != 'disabled'
            and bool(token.mypos_sid)
            and token.mypos_sid == provider._mypos_get_credentials().sid
        )

    def _handle_archiving(self):
        """Override of `payment` to say that myPOS keeps the card: it has no call to delete a
        token, so archiving only stops Odoo from offering and charging it."""
        res = super()._handle_archiving()
        for token in self.filtered(lambda t: t.provider_code == 'mypos'):
            _logger.info(
                "Archived myPOS token %s: myPOS has no call to delete it; Odoo no longer uses it",
                token.id,
            )
        return res
