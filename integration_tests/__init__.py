# Part of payment_mypos. License LGPL-3.
