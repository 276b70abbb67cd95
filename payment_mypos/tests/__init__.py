# Part of payment_mypos. License LGPL-3.

from . import test_ipc
from . import test_payment_provider
from . import test_payment_transaction
from . import test_processing_flows
