"""What the emulator remembers (orders, sessions, messages sent, calls answered, fault switches),
behind the one lock every part takes, and the settings every part reads.
"""

import copy
import datetime
import hashlib
import hmac
import itertools
import random
import secrets
import sys
import threading
from dataclasses import dataclass, field
from decimal import Decimal

from . import messages
from ._ipc import fake_rules
from .faults import Faults

PAID_OR_PAYING = fake_rules.PAID_OR_PAYING  # Order statuses that refuse another payment.
# ... and the statuses of a pre-authorisation that was granted: its OrderID is spent too
# (https://developers.mypos.com/apis/checkout-api/pre-authorization: "must be unique").
TAKEN = (*PAID_OR_PAYING, 'authorized', 'captured', 'released', 'expired')


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


class Snapshot(dict):
    """The JSON-ready state; calling it returns it, so `emu.state` and `emu.state()` both work."""

    def __call__(self):
        return self


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


def new_order(order_id, method='IPCPurchase'):
    """The record of an OrderID, kept across its sessions (it may be re-sent until paid)."""
    return {
        'order_id': order_id,
        'method': method,
        'status': 'pending',
        'ipc_trnref': None,
        'request_stan': None,
        'request_datetime': None,
        'payment_method': None,  # The PaymentMethod used ('1' card, '2' iDEAL, ...).
        'pan': None,
        'card_type': None,
        'card_token': None,
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
        'card': None,  # With CardTokenRequest 1 or 2: the card to store once paid.
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
        # Derives the card tokens; kept across resets, so a card keeps its token for the run.
        self._token_secret = secrets.token_bytes(32)
        self.reset()

    def reset(self):
        with self.lock:
            self.orders = {}
            self.sessions = {}
            self.trnrefs = {}
            self.notifications = []
            self.refunds = []
            self.tokens = {}  # CardToken -> the stored card (no full number).
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

    # --- Stored cards --- #

    def card_token(self, sid, number):
        """The CardToken of a card number at a store: always the same for the same pair, opaque,
        35 characters of [A-Z0-9] (myPOS leaves the format open:
        https://developers.mypos.com/apis/checkout-api/purchase-notify)."""
        message = f'{sid}:{number}'.encode()
        digest = hmac.new(self._token_secret, message, hashlib.sha256).hexdigest()
        return 'EMU' + digest[:32].upper()

    def keep_token(self, card, order_id=None):
        """Record a stored card (`card`: token, sid, pan, exp_date, card_type) as saved, by
        `order_id` when a purchase saved it; return the record."""
        with self.lock:
            record = self.tokens.setdefault(
                card['token'], {'token': card['token'], 'saved_by': [], 'created_at': iso()}
            )
            record.update({k: card[k] for k in ('sid', 'pan', 'exp_date', 'card_type')})
            if order_id is not None:
                record['saved_by'].append(order_id)
            return copy.deepcopy(record)

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
            return Snapshot(
                jsonable(
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
                        'tokens': copy.deepcopy(self.tokens),
                        'api_calls': copy.deepcopy(self.api_calls),
                        'rejected': copy.deepcopy(self.rejected),
                    }
                )
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

    def copy_tokens(self):
        with self.lock:
            return copy.deepcopy(self.tokens)

    def copy_api_calls(self):
        with self.lock:
            return copy.deepcopy(self.api_calls)

    def copy_rejected(self):
        with self.lock:
            return copy.deepcopy(self.rejected)
