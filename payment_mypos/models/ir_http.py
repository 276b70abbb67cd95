# Part of payment_mypos. License LGPL-3.

from odoo import models

from ..controllers.main import MyPOSController

_LIMITED_ROUTES = frozenset(
    (MyPOSController._webhook_url, MyPOSController._return_url, MyPOSController._cancel_url)
)


class IrHttp(models.AbstractModel):
    _inherit = 'ir.http'

    @classmethod
    def _pre_dispatch(cls, rule, args):
        """Override of `ir.http` to bound myPOS's bodies before the form is parsed."""
        if rule.rule in _LIMITED_ROUTES:
            MyPOSController._mypos_limit_body()
        return super()._pre_dispatch(rule, args)
