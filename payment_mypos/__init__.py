# Part of payment_mypos. License LGPL-3.

from . import controllers
from . import models
from . import wizards

from odoo.addons.payment import setup_provider, reset_payment_provider


def post_init_hook(env):
    setup_provider(env, 'mypos')


def uninstall_hook(env):
    reset_payment_provider(env, 'mypos')
