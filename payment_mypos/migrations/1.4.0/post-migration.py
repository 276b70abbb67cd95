# Part of payment_mypos. License LGPL-3.
"""Offer the payment methods myPOS's page can open on the myPOS providers installed before 1.4.0.

The provider's data is `noupdate`: its list of methods is only written at installation. The
methods stay inactive until an administrator enables them, as at installation.
"""

from odoo import SUPERUSER_ID, api

_METHODS = (
    'payment.payment_method_ideal',
    'payment.payment_method_twint',
    'payment_mypos.payment_method_satispay',
    'payment_mypos.payment_method_iris',
)


def migrate(cr, version):
    if not version:
        return
    env = api.Environment(cr, SUPERUSER_ID, {})
    methods = (
        env['payment.method']
        .with_context(active_test=False)
        .browse([env.ref(xmlid).id for xmlid in _METHODS])
    )
    providers = env['payment.provider'].search([('code', '=', 'mypos')])
    providers.write({'payment_method_ids': [(4, method.id) for method in methods]})
