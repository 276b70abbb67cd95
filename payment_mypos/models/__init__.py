# Part of payment_mypos. License LGPL-3.

from . import ir_http
from . import payment_method
from . import payment_mypos_log
from . import payment_mypos_outbox
from . import payment_provider
from . import payment_provider_admin
from . import payment_token
from . import payment_transaction
from . import payment_transaction_method
from . import payment_transaction_people
from . import payment_transaction_preauth
from . import payment_transaction_refund
from . import payment_transaction_status
from . import payment_transaction_token
