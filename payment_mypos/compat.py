# Part of payment_mypos. License LGPL-3.
"""What differs between the Odoo series this addon runs on (18.0 and 19.0), in one place: the rest
of the addon calls these and does not know which series runs it."""

import threading

from odoo.modules import module as odoo_module
from odoo.release import version_info

SERIES = f'{version_info[0]}.{version_info[1]}'
# 19.0 renamed the payment framework's processing hooks (`_process`, `_apply_updates`,
# `_extract_amount_data`), moved the refund request to the refund itself (`_refund`), and replaced
# `_sql_constraints` by `models.Constraint`.
ODOO_19 = version_info[:2] >= (19, 0)


def process_message(tx, message):
    """Run a verified myPOS message about `tx` through the payment framework's processing.

    18.0 calls it `_handle_notification_data`; 19.0 `_process`, which also checks the amount
    through `_extract_amount_data` (that we opt out of: our own check refuses instead).
    """
    if ODOO_19:
        return tx._process('mypos', message)
    return tx._handle_notification_data('mypos', message)


def can_read(model, field):
    """Whether the current user may read `field` of `model` (its `groups`), as the ORM decides."""
    if ODOO_19:
        return model._has_field_access(field, 'read')
    return field.is_accessible(model.env)


def in_test():
    """Whether Odoo is running a test, whose cursor must not be committed: 18.0 marks the thread
    (`testing`), 19.0's runner only the module (`current_test`)."""
    return bool(getattr(threading.current_thread(), 'testing', False) or odoo_module.current_test)
