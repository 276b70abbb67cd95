# Part of payment_mypos. License LGPL-3.
"""An in-memory myPOS for the addon's tests: its hosted page (for pre-authorisations:
:mod:`.fake_preauth`) and its server-to-server calls (:mod:`.fake_calls`), signed with a throw-away
key, and the faults a network and myPOS may bring, each turned into what :func:`.transport.post`
would return or raise. Nothing of Odoo; production code never imports it.

The behaviour follows https://developers.mypos.com/apis/checkout-api (the calls, their answers,
the `Status` codes) and the choices of the repository's emulator where myPOS documents nothing
(the `OrderStatus` of a refund, card tokens). Install it in place of the HTTP exchange::

    fake = FakeMyPOS(merchant_key_pem, key_pair=testing.generate_key_pair())
    with unittest.mock.patch.object(transport, 'post', fake.post): ...
"""

import copy
import hashlib
import hmac
import itertools
import random
import re
import secrets
import threading
from decimal import Decimal

from . import const
from .const import Status
from .fake_calls import ServerCalls
from .fake_preauth import PreAuthPage
from .fake_rules import (
    CUSTOMER_ECHO,
    DECLINED_CARDS,
    PAID_OR_PAYING,
    PREAUTH_HELD,
    URL,
    VISA,
    Faults,
    Fields,
    PaymentResult,
    Reject,
    jsonable,
    now,
)
from .keys import public_key_pem
from .signing import sign_fields

__all__ = ['VISA', 'FakeMyPOS', 'PaymentResult']


class FakeMyPOS(ServerCalls, PreAuthPage):
    """myPOS in memory: one store (the public sandbox store's by default), its orders (purchases
    and pre-authorisations), refunds, saved cards, the calls it received, and fault switches named
    as the emulator's.

    :param str merchant_key_pem: The store's key (private, public or certificate) that verifies
        what the merchant signs.
    :param tuple key_pair: myPOS's own (private key PEM, certificate PEM), a throw-away pair
        (:func:`.testing.generate_key_pair`), kept as :attr:`private_key_pem`,
        :attr:`certificate_pem`.
    """

    url = URL

    def __init__(
        self,
        merchant_key_pem,
        *,
        sid=const.SANDBOX_SID,
        wallet_number=const.SANDBOX_WALLET_NUMBER,
        key_index=const.SANDBOX_KEY_INDEX,
        key_pair,
        billing_descriptor='myPOS  * FAKE',
    ):
        self.sid = str(sid)
        self.wallet_number = str(wallet_number)
        self.key_index = int(key_index)
        self.merchant_public_key_pem = public_key_pem(merchant_key_pem)
        self.private_key_pem, self.certificate_pem = key_pair
        self.billing_descriptor = billing_descriptor
        self.lock = threading.RLock()
        self.faults = Faults()
        self._token_secret = secrets.token_bytes(32)
        self.reset()

    # --- Test controls --- #

    def reset(self):
        """Forget every order, refund, saved card and call (the fault switches too)."""
        with self.lock:
            self.faults = Faults()
            self.orders = {}
            self.trnrefs = {}
            self.refund_records = []
            self.tokens = {}
            self.notification_records = []
            self.calls = []
            self.in_flight = self.in_flight_max = 0
            self._trnrefs = itertools.count(random.randint(100000, 899999))
            self._stans = itertools.count(1)

    def set_faults(self, **switches):
        with self.lock:
            self.faults.update(switches)

    def reset_faults(self):
        with self.lock:
            self.faults = Faults()

    def api_calls(self):
        """The server-to-server calls received: method, order_id, ipc_trnref, amount, status
        (the `Status` answered, None when not processed), fault, fields (as posted)."""
        with self.lock:
            return copy.deepcopy(self.calls)

    def max_concurrent_api_calls(self):
        with self.lock:
            return self.in_flight_max

    def order(self, order_id):
        """The order (amounts as myPOS writes them, 'refunded' included), or None. A
        pre-authorisation's `status` is 'authorized', 'captured', 'cancelled', 'reversed' (released
        by myPOS: lapsed, or its notify not acknowledged) or 'declined', with `authorized_amount`,
        `captured_amount`, `released_amount` and `preauth_expiry` (ISO date). `payment_method`
        is the `PaymentMethod` value of the method paid with ('1' for a card)."""
        with self.lock:
            order = self.orders.get(order_id)
            if order and order['method'] == const.PREAUTH_METHOD:
                self._lapse(order)
            return jsonable(copy.deepcopy(order)) if order else None

    def refunds(self, order_id=None):
        with self.lock:
            return [
                jsonable(copy.deepcopy(refund))
                for refund in self.refund_records
                if order_id is None or refund['order_id'] == order_id
            ]

    def notifications(self, order_id=None, method=None):
        with self.lock:
            return [
                copy.deepcopy(record)
                for record in self.notification_records
                if (order_id is None or record['order_id'] == order_id)
                and (method is None or record['method'] == method)
            ]

    def state(self):
        with self.lock:
            return jsonable(
                {
                    'orders': copy.deepcopy(self.orders),
                    'refunds': copy.deepcopy(self.refund_records),
                    'tokens': copy.deepcopy(self.tokens),
                    'api_calls': copy.deepcopy(self.calls),
                    'faults': self.faults.as_dict(),
                }
            )

    def card_token(self, card=VISA):
        """The CardToken of a card at this store: the same for the same card, opaque."""
        digest = hmac.new(self._token_secret, f'{self.sid}:{card}'.encode(), hashlib.sha256)
        return 'FAKE' + digest.hexdigest()[:31].upper()

    def store_card(self, card=VISA, expiry='3012'):
        """Save a card as a purchase with CardTokenRequest would; return its token."""
        record = self._keep_card(card, expiry)
        return record['token']

    # --- The hosted page --- #

    def pay(self, fields, card=VISA, expiry='3012', deliver=None, method=None):
        """Pay the signed IPCPurchase form `fields` on the hosted page with `card`.

        The page offers the form's `PaymentMethod` list, only the methods usable in its currency
        (:func:`.fake_rules.offered_methods`); the shopper picks `method` ('1' card, '2' iDEAL,
        ...; the first offered by default), one not offered is refused (5). Only a card is
        declined, saved or has card details in the notify.

        myPOS posts the signed IPCPurchaseNotify to URL_Notify with `deliver(url, pairs)`, which
        returns (HTTP status, body text) or raises OSError; when it is not answered `OK`, myPOS
        posts IPCPurchaseRollback and reverses the payment. Without `deliver` nothing is posted
        (the notify is in the result, for the test to post) and the payment stays paid.
        An IPCPreAuthorization form is authorised instead (:meth:`_pay_preauth`).

        :param str expiry: The card's expiry, YYMM as myPOS signs it.
        :rtype: PaymentResult
        """
        fields = Fields(fields)
        if fields.get('IPCmethod') == const.PREAUTH_METHOD:
            if method not in (None, const.PAYMENT_METHOD_CARD):
                return PaymentResult(
                    'rejected',
                    Status.E_INVALID_PARAMS,
                    "a pre-authorization is paid by card only",
                    order_id=fields.get('OrderID'),
                )
            return self._pay_preauth(fields, card, deliver)
        try:
            purchase = self._check_purchase(fields)
            method = self._chosen_method(purchase, method)
        except Reject as reject:
            return PaymentResult(
                'rejected', reject.status, reject.message, order_id=fields.get('OrderID')
            )
        is_card = method == const.PAYMENT_METHOD_CARD
        number = re.sub(r'[\s-]', '', str(card)) if is_card else ''
        with self.lock:
            order = self._open_order(purchase)
            if isinstance(order, PaymentResult):
                return order
            order['payment_method'] = method
            if number in DECLINED_CARDS:
                order['status'] = 'declined'
                return PaymentResult(
                    'declined',
                    Status.E_TRANSACTION_DECLINED,
                    DECLINED_CARDS[number],
                    order_id=purchase['order_id'],
                )
            notify, ok_message, card_record = self._approve(order, purchase, number, expiry, method)
            faults = copy.copy(self.faults)
            self.faults.notify_fail_once = False
        result = PaymentResult(
            'paid',
            order_id=purchase['order_id'],
            ipc_trnref=order['ipc_trnref'],
            payment_method=method,
        )
        result.notify_fields = notify
        rollback = self._order_message('IPCPurchaseRollback', purchase)
        acknowledged = True
        self._set_last_message(order, notify)
        if faults.notify_drop or deliver is None:
            self._record(order, notify, error="not sent (notify_drop)" if deliver else None)
        elif faults.notify_fail_once:
            self._record(order, notify, error="not delivered (notify_fail_once)")
            acknowledged = False
        else:
            acknowledged = self._deliver(order, notify, deliver)
            if faults.notify_duplicate:
                acknowledged = self._deliver(order, notify, deliver) or acknowledged
        if not acknowledged:
            self._set_last_message(order, rollback)
            self._deliver(order, rollback, deliver)
        with self.lock:
            order['status'] = 'paid' if acknowledged else 'reversed'
            if acknowledged and card_record:
                order['card_token'] = card_record['token']
                self._keep_card(number, expiry, order['order_id'])
            result.notifications = self.notifications(order_id=purchase['order_id'])
        result.outcome = order['status']
        if acknowledged:
            result.return_method, result.return_url = 'IPCPurchaseOK', purchase['url_ok']
            result.return_fields = ok_message
        else:
            result.return_method, result.return_url = 'IPCPurchaseCancel', purchase['url_cancel']
            result.return_fields = self._order_message('IPCPurchaseCancel', purchase)
        return result

    def cancel(self, fields):
        """Press Cancel on the hosted page: the browser gets the signed IPCPurchaseCancel (for an
        IPCPreAuthorization form, IPCPreAuthorizationCancel)."""
        fields = Fields(fields)
        if fields.get('IPCmethod') == const.PREAUTH_METHOD:
            return self._cancel_preauth(fields)
        try:
            purchase = self._check_purchase(fields)
        except Reject as reject:
            return PaymentResult('rejected', reject.status, reject.message)
        with self.lock:
            order = self._open_order(purchase)
            if isinstance(order, PaymentResult):
                return order
            message = self._order_message('IPCPurchaseCancel', purchase)
            order['status'] = 'cancelled'
            order['last_message'] = message
        return PaymentResult(
            'cancelled',
            order_id=purchase['order_id'],
            return_method='IPCPurchaseCancel',
            return_url=purchase['url_cancel'],
            return_fields=message,
        )

    def resend(self, order_id, deliver):
        """Post the last message of an order to its URL_Notify again (myPOS repeats itself)."""
        with self.lock:
            order = self.orders[order_id]
            message = list(order['last_message'])
        self._deliver(order, message, deliver)
        return self.notifications(order_id)[-1]

    def reverse(self, order_id, deliver):
        """Reverse a paid order, as myPOS does when its notify was not acknowledged in time:
        post the signed IPCPurchaseRollback to URL_Notify (again, if already reversed)."""
        with self.lock:
            order = self.orders[order_id]
            purchase = {
                'order_id': order_id,
                'amount_text': order['amount'],
                'currency': order['currency'],
            }
            rollback = self._order_message('IPCPurchaseRollback', purchase)
            order.update(status='reversed', last_message=rollback)
        return self._deliver(order, rollback, deliver)

    def _open_order(self, purchase, method='IPCPurchase', **values):
        """The order of an accepted purchase (or pre-authorisation, `method`) form, with `values`
        of its own, or the result of a refused one (lock held)."""
        order_id = purchase['order_id']
        order = self.orders.get(order_id)
        if order and order['status'] in (*PAID_OR_PAYING, *PREAUTH_HELD):
            return PaymentResult(
                'rejected',
                Status.E_DUPLICATE_TRANSMISSION,
                f"a payment was already made with OrderID {order_id}",
                order_id=order_id,
            )
        if not order:
            order = self.orders[order_id] = self._new_order(order_id, method)
        order.update(
            method=method,
            status='pending',
            amount=purchase['amount_text'],
            currency=purchase['currency'],
            url_notify=purchase['url_notify'],
            **values,
        )
        return order

    @staticmethod
    def _chosen_method(purchase, method):
        """The method the shopper pays with: `method`, or the first the page offers."""
        offered = purchase['payment_methods']
        if method is None:
            return offered[0]
        if method not in offered:
            raise Reject(
                Status.E_INVALID_PARAMS,
                f"the page does not offer PaymentMethod {method!r} (it offers "
                f"{', '.join(offered)})",
            )
        return method

    def _approve(self, order, purchase, number, expiry, method):
        """Book the approved payment; return the signed (notify, IPCPurchaseOK, card to save).

        `PaymentMethod` echoes the method used (the notify_payment_method fault: its value); a
        method other than card has no PAN, CardType, ExpDate, CardToken (the preamble's choice,
        as the emulator's: https://developers.mypos.com/apis/checkout-api/purchase-notify).
        """
        trnref = str(next(self._trnrefs))
        request_datetime = now().strftime('%Y-%m-%d %H:%M:%S')
        echoed = self.faults.notify_payment_method
        extra = [
            ('IPC_Trnref', trnref),
            ('RequestSTAN', f'{next(self._stans) % 1000000:06d}'),
            ('RequestDateTime', request_datetime),
            ('PaymentMethod', method if echoed is None else echoed),
            ('BillingDescriptor', self.billing_descriptor),
        ]
        card = None
        if method == const.PAYMENT_METHOD_CARD:
            extra.append(('PAN', number[-4:]))
            if purchase['card_token_request'] in (
                const.CARD_TOKEN_STORE,
                const.CARD_TOKEN_PAY_AND_STORE,
            ):
                card = {'token': self.card_token(number)}
                extra += [('CardToken', card['token']), ('ExpDate', expiry)]
            if not self.faults.notify_omit_card_type:
                extra.append(('CardType', '3' if number.startswith('4') else '1'))
        if purchase['payment_parameters_required'] in ('1', '2'):
            extra += [
                (name, purchase['customer'][name])
                for name in CUSTOMER_ECHO
                if purchase['customer'].get(name)
            ]
        order.update(
            status='processing',
            ipc_trnref=trnref,
            request_datetime=request_datetime,
            pan=number[-4:] or None,
        )
        self.trnrefs[trnref] = order['order_id']
        notify = self._order_message('IPCPurchaseNotify', purchase, extra)
        ok_message = self._order_message('IPCPurchaseOK', purchase, extra)
        return notify, ok_message, card

    def _keep_card(self, number, expiry, order_id=None):
        with self.lock:
            token = self.card_token(number)
            record = self.tokens.setdefault(token, {'token': token, 'saved_by': []})
            record.update(sid=self.sid, pan=number[-4:], exp_date=expiry)
            if order_id:
                record['saved_by'].append(order_id)
            return copy.deepcopy(record)

    def _deliver(self, order, message, deliver):
        """Post `message` to the order's URL_Notify; True when answered 200 `OK`."""
        http_status = body = error = None
        try:
            http_status, body = deliver(order['url_notify'], list(message))
        except OSError as exc:
            error = f"{type(exc).__name__}: {exc}"
        record = self._record(order, message, error=error, http_status=http_status, body=body)
        return record['acknowledged']

    def _record(self, order, message, error=None, http_status=None, body=None):
        with self.lock:
            record = {
                'seq': len(self.notification_records) + 1,
                'order_id': order['order_id'],
                'method': message[0][1],
                'url': order['url_notify'],
                'fields': [list(pair) for pair in message],
                'delivered': http_status is not None,
                'http_status': http_status,
                'body': body,
                'error': error,
                'acknowledged': http_status == 200 and body == 'OK',
            }
            self.notification_records.append(record)
            return record

    def _set_last_message(self, order, message):
        with self.lock:
            order['last_message'] = message

    def _order_message(self, method, purchase, extra=()):
        """A message myPOS signs about an order, its head in the documented order."""
        pairs = [
            ('IPCmethod', method),
            ('SID', self.sid),
            ('Amount', purchase['amount_text']),
            ('Currency', purchase['currency']),
            ('OrderID', purchase['order_id']),
            *extra,
        ]
        return sign_fields(pairs, self.private_key_pem)

    @staticmethod
    def _new_order(order_id, method):
        return {
            'order_id': order_id,
            'method': method,
            'status': 'pending',
            'amount': None,
            'currency': None,
            'ipc_trnref': None,
            'request_datetime': None,
            'pan': None,
            'payment_method': None,  # The value of the method used: '1' card, '2' iDEAL, ...
            'card_token': None,
            'url_notify': None,
            'refunded': Decimal(0),
            'refunds': [],
            'last_message': None,
        }

    # --- Checks of what the merchant posts --- #
