# Part of payment_mypos. License LGPL-3.

from . import main
