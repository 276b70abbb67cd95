"""What the emulator remembers (orders, sessions, messages sent, calls answered, fault switches),
behind the one lock every part takes, and the settings every part reads.
"""

import copy
import datetime
import itertools
import random
import sys
import threading
from dataclasses import dataclass, field
from decimal import Decimal

from . import messages
from .faults import Faults

PAID_OR_PAYING = ('paid', 'processing')  # Order statuses that refuse another payment.


def now():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def iso(moment=None):
    return (moment or now()).isoformat()


def jsonable(value):
    """`value` with its Decimals as myPOS amounts, ready for json.dumps."""
    if isinstance(value, Decimal):
        return messages.format_decimal(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


@dataclass
class Context:
    """The constructor's settings, read live by the parts, with the stop signal and the log."""

    notify_timeout: float = 10.0
    verify_tls: bool = True
    require_https_notify: bool = False
    verbose: bool = False
    stopping: threading.Event = field(default_factory=threading.Event)

    def log(self, text):
        if self.verbose:
            sys.stderr.write(f'[mypos-emulator] {text}\n')
            sys.stderr.flush()


def new_order(order_id):
    """The record of an OrderID, kept across its sessions (it may be re-sent until paid)."""
    return {
        'order_id': order_id,
        'status': 'pending',
        'ipc_trnref': None,
        'request_stan': None,
        'request_datetime': None,
        'pan': None,
        'card_type': None,
        'refunded': Decimal(0),
        'refunds': [],
        'last_message': None,
        'messages': [],
        'sessions': [],
        'attempts': [],
        'created_at': iso(),
    }


def new_session(token, order_id, purchase, pairs):
    """The record of one payment page, opened by one accepted IPCPurchase form."""
    return {
        'token': token,
        'order_id': order_id,
        'status': 'open',
        'outcome': None,
        'created_at': iso(),
        'purchase': purchase,
        'fields': pairs,
        'ipc_trnref': None,
        'notifications': [],
    }


def note_sent(order, method, to):
    """Log on the order a message myPOS produced and where it went ('browser' or 'notify')."""
    order['messages'].append({'method': method, 'to': to, 'at': iso()})


class State:
    """The records and fault switches; parts mutate them under `lock`, readers get copies."""

    def __init__(self):
        self.lock = threading.RLock()
        self.faults = Faults()
        self.reset()

    def reset(self):
        with self.lock:
            self.orders = {}
            self.sessions = {}
            self.trnrefs = {}
            self.notifications = []
            self.refunds = []
            self.api_calls = []
            self.api_in_flight = 0  # Server-to-server calls being answered right now,
            self.api_in_flight_max = 0  # and the most there were at once.
            self.rejected = []
            self._trnref_counter = itertools.count(random.randint(100000, 899999))
            self._stan_counter = itertools.count(1)

    def next_trnref(self):
        return str(next(self._trnref_counter))

    def next_stan(self):
        return f'{next(self._stan_counter) % 1000000:06d}'

    # --- Fault switches --- #

    def replace_faults(self, value):
        with self.lock:
            if isinstance(value, Faults):
                self.faults = copy.copy(value)
            else:
                self.faults = Faults().update(value)

    def update_faults(self, switches):
        with self.lock:
            self.faults.update(switches)
        return self.faults

    def reset_faults(self):
        with self.lock:
            self.faults.reset()

    def take_api_faults(self, method):
        with self.lock:
            return self.faults.take_api(method)

    # --- Copies for readers --- #

    def snapshot(self, store):
        """Everything, JSON-serialisable; `store` describes the store and its addresses."""
        with self.lock:
            return jsonable(
                {
                    'store': store,
                    'faults': self.faults.as_dict(),
                    'orders': copy.deepcopy(self.orders),
                    'sessions': {
                        token: {k: v for k, v in session.items() if k != 'fields'}
                        for token, session in self.sessions.items()
                    },
                    'notifications': copy.deepcopy(self.notifications),
                    'refunds': copy.deepcopy(self.refunds),
                    'api_calls': copy.deepcopy(self.api_calls),
                    'rejected': copy.deepcopy(self.rejected),
                }
            )

    def copy_order(self, order_id):
        with self.lock:
            order = self.orders.get(order_id)
            return jsonable(copy.deepcopy(order)) if order else None

    def copy_notifications(self, order_id=None, method=None, seqs=None):
        with self.lock:
            return [
                copy.deepcopy(n)
                for n in self.notifications
                if (order_id is None or n['order_id'] == order_id)
                and (method is None or n['method'] == method)
                and (seqs is None or n['seq'] in seqs)
            ]

    def copy_refunds(self, order_id=None):
        with self.lock:
            return [
                jsonable(copy.deepcopy(r))
                for r in self.refunds
                if order_id is None or r['order_id'] == order_id
            ]

    def copy_api_calls(self):
        with self.lock:
            return copy.deepcopy(self.api_calls)

    def copy_rejected(self):
        with self.lock:
            return copy.deepcopy(self.rejected)
