"""Pre-authorisation on myPOS's side after the card page: the hold's states and expiry, and the
server-to-server calls that capture it, release it or ask about it.

https://developers.mypos.com/apis/checkout-api/pre-auth-completion
https://developers.mypos.com/apis/checkout-api/pre-auth-cancellation
https://developers.mypos.com/apis/checkout-api/pre-auth-status
"""

import copy
import datetime
from decimal import Decimal

from . import messages
from ._ipc import ipc
from .faults import EmulatorError
from .messages import (
    PREAUTH_CANCELLATION_METHOD,
    PREAUTH_COMPLETION_METHOD,
    PREAUTH_METHOD,
    PREAUTH_STATUS_METHOD,
    Reject,
)
from .state import iso, jsonable

# How long a hold lasts when no test sets its expiry (emulator's choice: myPOS's terminal help
# says 30 days; online it is undocumented, and the notify's PreAuthExpDate is what counts).
HOLD_DAYS = 30
# `IPCPreAuthStatus` of each order status of a pre-authorisation
# (https://developers.mypos.com/apis/checkout-api/pre-auth-status): 1 pending (the notify may be
# in flight), 3 captured, 4 declined, 5 reversed (notify not acknowledged, or expired), 6
# cancelled by IPCPreAuthCancellation. An open or cancelled page is no pre-authorisation yet.
PREAUTH_STATUS = {
    'processing': '1',
    'authorized': '1',
    'captured': '3',
    'declined': '4',
    'reversed': '5',
    'expired': '5',
    'released': '6',
}


def today():
    return datetime.datetime.now(datetime.timezone.utc).date()


def is_preauth(order):
    return bool(order) and order['method'] == PREAUTH_METHOD


def preauth_status(order):
    """The `IPCPreAuthStatus` code of an order, or None when myPOS knows no pre-authorisation
    under its OrderID (not a pre-auth; page open or cancelled without a declined card)."""
    if not is_preauth(order):
        return None
    attempts = order['attempts']
    if order['status'] in ('pending', 'cancelled') and attempts:
        return '4' if attempts[-1].get('outcome') == 'declined' else None
    return PREAUTH_STATUS.get(order['status'])


def _expire(order):
    order.update(status='expired', released_amount=order['amount'], expired_at=iso())


def expire_due(order, day=None):
    """Expire an authorised hold past its expiry date, as myPOS reverses it (status 5).

    Call with the lock held.
    """
    if (
        is_preauth(order)
        and order['status'] == 'authorized'
        and order.get('preauth_expiry')
        and datetime.date.fromisoformat(order['preauth_expiry']) < (day or today())
    ):
        _expire(order)


def _as_date(value):
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    try:
        return datetime.date.fromisoformat(str(value))
    except ValueError:
        raise EmulatorError(f"the expiry {value!r} is not a date (YYYY-MM-DD)") from None


class PreAuth:
    """The server-to-server pre-authorisation calls and the test controls of a hold."""

    def __init__(self, state):
        self.state = state

    @property
    def handlers(self):
        """The call handlers, by IPCmethod, for :class:`.api.Api`."""
        return {
            PREAUTH_COMPLETION_METHOD: self.completion,
            PREAUTH_CANCELLATION_METHOD: self.cancellation,
            PREAUTH_STATUS_METHOD: self.status,
        }

    def expire_due(self):
        """Expire every hold past its expiry date (before the state is read)."""
        with self.state.lock:
            for order in self.state.orders.values():
                expire_due(order)

    def _order(self, order_id):
        """The pre-authorisation of `order_id`, expired if due; 5 when there is none (emulator's
        choice: myPOS documents no status for an unknown OrderID). Call with the lock held."""
        order = self.state.orders.get(order_id)
        expire_due(order)
        if preauth_status(order) is None:
            raise Reject(
                ipc.Status.E_INVALID_PARAMS, f"no pre-authorisation with OrderID {order_id!r}"
            )
        return order

    @staticmethod
    def _authorized(order, what):
        """Refuse with 14 unless the hold is authorised (emulator's choice: one completion or
        cancellation per OrderID; none after expiry, release or a declined card)."""
        if order['status'] != 'authorized':
            raise Reject(
                ipc.Status.E_TRANSACTION_NOT_PERMITTED,
                f"the pre-authorisation {order['order_id']} is {order['status']}: "
                f"it cannot be {what}",
            )

    @staticmethod
    def _same_currency(order, currency):
        if currency != order['currency']:
            raise Reject(
                ipc.Status.E_INVALID_PARAMS,
                f"Currency {currency} differs from the pre-authorisation's {order['currency']}",
            )

    def completion(self, fields, _faults):
        """Capture the hold, once, for at most the authorised amount; myPOS releases the rest
        (https://developers.mypos.com/in-app-payments/android-payments/pre-authorization-completion)."""
        order_id, amount, currency = messages.check_preauth_call(fields)
        with self.state.lock:
            order = self._order(order_id)
            self._authorized(order, 'completed')
            self._same_currency(order, currency)
            authorised = Decimal(order['amount'])
            if amount > authorised:
                raise Reject(
                    ipc.Status.E_WRONG_AMOUNT,
                    f"the completion {fields.get('Amount')} exceeds the authorised amount "
                    f"{order['amount']}",
                )
            order.update(
                status='captured',
                captured_amount=fields.get('Amount'),
                released_amount=messages.format_decimal(authorised - amount),
                captured_at=iso(),
            )
        return [
            ('IPCmethod', PREAUTH_COMPLETION_METHOD),
            ('Amount', fields.get('Amount')),
            ('Currency', currency),
            ('OrderID', order_id),
            ('Status', '0'),
            ('StatusMsg', 'Success'),
        ]

    def cancellation(self, fields, _faults):
        """Release the whole hold. `Amount` must be the authorised amount: a partial release is
        not emulated (9; myPOS's API page lists only OrderID, its PHP SDK sends all three)."""
        order_id, amount, currency = messages.check_preauth_call(fields)
        with self.state.lock:
            order = self._order(order_id)
            self._authorized(order, 'cancelled')
            self._same_currency(order, currency)
            if amount != Decimal(order['amount']):
                raise Reject(
                    ipc.Status.E_WRONG_AMOUNT,
                    f"Amount {fields.get('Amount')} is not the authorised amount "
                    f"{order['amount']} (a partial release is not emulated)",
                )
            order.update(status='released', released_amount=order['amount'], released_at=iso())
        return [
            ('IPCmethod', PREAUTH_CANCELLATION_METHOD),
            ('Amount', fields.get('Amount')),
            ('Currency', currency),
            ('Status', '0'),
            ('StatusMsg', 'Success'),
        ]

    def status(self, fields, _faults):
        """The hold's state and expiry (`PreAuthExpDate` DD/MM/YYYY; empty for a declined card,
        which has no hold)."""
        order_id, _amount, _currency = messages.check_preauth_call(fields, amount=False)
        with self.state.lock:
            order = self._order(order_id)
            code, expiry = preauth_status(order), order.get('preauth_expiry')
        if code == '4' or not expiry:
            expiry_text = ''
        else:
            expiry_text = datetime.date.fromisoformat(expiry).strftime('%d/%m/%Y')
        return [
            ('IPCmethod', PREAUTH_STATUS_METHOD),
            ('OrderID', order_id),
            ('IPCPreAuthStatus', code),
            ('PreAuthExpDate', expiry_text),
            ('Status', '0'),
            ('StatusMsg', 'Success'),
        ]

    # --- Test controls --- #

    def _control_order(self, order_id):
        order = self.state.orders.get(order_id)
        if not is_preauth(order):
            raise EmulatorError(f"no pre-authorisation with OrderID {order_id!r}")
        return order

    def expire(self, order_id):
        """See :meth:`Emulator.expire_preauth`."""
        with self.state.lock:
            order = self._control_order(order_id)
            if order['status'] != 'authorized':
                raise EmulatorError(
                    f"the pre-authorisation {order_id!r} is {order['status']}, not authorised"
                )
            _expire(order)
            return jsonable(copy.deepcopy(order))

    def set_expiry(self, order_id, expiry):
        """See :meth:`Emulator.set_preauth_expiry`."""
        day = _as_date(expiry)
        with self.state.lock:
            order = self._control_order(order_id)
            if order['status'] not in ('processing', 'authorized'):
                raise EmulatorError(
                    f"the pre-authorisation {order_id!r} is {order['status']}, not authorised"
                )
            order['preauth_expiry'] = day.isoformat()
            expire_due(order)
            return jsonable(copy.deepcopy(order))
