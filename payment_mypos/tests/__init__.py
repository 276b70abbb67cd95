# Part of payment_mypos. License LGPL-3.
# The tests Odoo's runner runs with the addon alone; those needing a second real server (the
# myPOS emulator, a browser) are in the repository's integration_tests/.

from . import test_administration
from . import test_charges_at_most_once
from . import test_forged_notifications
from . import test_fuzzing
from . import test_i18n
from . import test_ipc
from . import test_ipc_methods
from . import test_ipc_preauth
from . import test_ipc_preauth_fake
from . import test_ipc_tokens
from . import test_layouts
from . import test_log_retention
from . import test_manual_capture
from . import test_manual_capture_doubts
from . import test_message_integrity
from . import test_money_state
from . import test_payment_methods
from . import test_payment_provider
from . import test_payment_transaction
from . import test_performance
from . import test_processing_flows
from . import test_reconciliation
from . import test_refunds
from . import test_saved_cards
from . import test_secrets
from . import test_status_check
