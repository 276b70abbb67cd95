# Part of payment_mypos. License LGPL-3.

from . import payment_mypos_disconnect_wizard
