# Part of payment_mypos. License LGPL-3.
"""myPOS's side of the protocol, for the emulator and the tests: key pairs, self-signed
certificates, signed answers, and :class:`FakeMyPOS`, an in-memory myPOS. Production code never
imports this module.

`FakeMyPOS` plays the hosted page and answers the server-to-server calls, signed with a throw-away
key, and bends the exchange with the fault switches of the repository's emulator, each turned
into what :func:`.transport.post` would return or raise. The behaviour follows
https://developers.mypos.com/apis/checkout-api (the calls, their answers, the `Status` codes) and
the emulator's choices where myPOS documents nothing (the `OrderStatus` of a refund, card tokens).
The addon's tests install it in place of the HTTP exchange::

    fake = FakeMyPOS(merchant_key_pem)
    with unittest.mock.patch.object(transport, 'post', fake.post): ...
"""

import copy
import dataclasses
import datetime
import hashlib
import hmac
import itertools
import json
import random
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from xml.etree import ElementTree

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from . import const
from .answers import flatten_values
from .const import Status
from .errors import Failure, RemoteError
from .keys import load_private_key, public_key_pem
from .signing import sign, sign_fields, verify


def self_signed_certificate(private_key_pem, organization, days=365):
    """Return a self-signed X.509 certificate (PEM) for a private key."""
    key = load_private_key(private_key_pem)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, 'BG'),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
        ]
    )
    now = datetime.datetime.utcnow().replace(microsecond=0)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode('ascii')


def generate_key_pair(bits=2048, organization='Throw-away myPOS'):
    """Return (private key PEM, self-signed certificate PEM) of a new RSA key pair."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode('ascii')
    return private_pem, self_signed_certificate(private_pem, organization)


def sign_tree(tree, private_key_pem):
    """Return an answer tree with its top-level `Signature` appended (API §3.3).

    Nested objects must already carry their own signature.
    """
    return list(tree) + [('Signature', sign(flatten_values(tree), private_key_pem))]


# === The fake myPOS === #

URL = 'https://fake-mypos.invalid/vmp/checkout-test'
VISA = '4006090000000007'
# The test cards myPOS's sandbox declines.
DECLINED_CARDS = {'4877000000000002': "Declined by the issuer (test card)"}
IPC_VERSIONS = ('1.3', '1.4', '1.4.1')
PAID_OR_PAYING = ('paid', 'processing')  # Order statuses that refuse another payment.
# The top-level key spelling of each answer: `IPCMethod` for the two status calls.
ANSWER_METHOD_KEY = {'IPCGetTxnStatus': 'IPCMethod', 'IPCGetPaymentStatus': 'IPCMethod'}
# IPCGetPaymentStatus's PaymentStatus for each order status.
PAYMENT_STATUS = {
    'paid': '1',
    'pending': '2',
    'processing': '2',
    'cancelled': '3',
    'declined': '3',
    'reversed': '4',
}
AMOUNT_RE = re.compile(r'\d+(\.\d{1,2})?')
SIGNED_AMOUNT_RE = re.compile(r'-?\d+(\.\d{1,2})?')
GARBAGE = b"<html><head><title>Error</title></head><body>Temporary problem<br></body></html>"
_CUSTOMER_ECHO = ('CustomerEmail', 'CustomerPhone', 'CustomerFirstNames', 'CustomerFamilyName')
_CANONICAL_INTEGER_RE = re.compile(r'0|-?[1-9][0-9]{0,17}')
_API_FAULTS = (
    'api_http_status',
    'api_redirect',
    'api_garbage',
    'api_bad_signature',
    'api_unsigned',
    'api_timeout',
    'api_drop_answer',
    'api_drip',
    'refund_insufficient_funds',
    'token_decline',
    'api_status_text',
)


class Reject(Exception):
    """A call refused by myPOS with a `Status` code."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = Status(status)
        self.message = message


@dataclass
class Faults:
    """The emulator's fault switches, by the same names; sticky until reset, except
    `notify_fail_once` (spent by the next payment) and the api_* / refund / token ones when
    `api_faults_remaining` is set (they then hit that many server-to-server calls)."""

    notify_drop: bool = False  # The notify is never sent; the payment stays paid.
    notify_fail_once: bool = False  # The notify fails: myPOS sends the rollback, reverses.
    notify_duplicate: bool = False  # The notify is sent twice.
    notify_omit_card_type: bool = False  # No CardType in the notify (as the sandbox).
    api_http_status: int | None = None  # This HTTP status; the call is not processed.
    api_redirect: int | None = None  # A redirect status; the call is not processed.
    api_garbage: bool = False  # An HTML body; processed.
    api_bad_signature: bool = False  # A signature that does not verify; processed.
    api_unsigned: bool = False  # No signature; processed.
    api_timeout: float = 0.0  # Seconds before the answer; processed.
    api_drop_answer: bool = False  # The connection closes without an answer; processed.
    api_drip: float = 0.0  # Seconds between the bytes of the answer; processed.
    refund_insufficient_funds: bool = False  # IPCRefund answers 13 E_NOT_SUFFICIENT_FUNDS.
    token_decline: int | None = None  # IPCIAPurchase answers this Status; not charged.
    api_status_text: str | None = None  # The answer's Status is this text ('00', ' 0').
    api_faults_remaining: int | None = None  # None: sticky; n: the api faults hit n calls.

    def as_dict(self):
        return dataclasses.asdict(self)

    def update(self, switches):
        names = {f.name for f in dataclasses.fields(self)}
        unknown = set(switches) - names
        if unknown:
            raise ValueError(f"unknown fault switch(es): {', '.join(sorted(unknown))}")
        for name, value in switches.items():
            if name == 'token_decline' and value is not None:
                value = Status(int(value))
            if name == 'api_status_text' and isinstance(value, int):
                value = str(value)
            setattr(self, name, value)

    def api_active(self, method):
        return bool(
            self.api_http_status
            or self.api_redirect
            or self.api_garbage
            or self.api_bad_signature
            or self.api_unsigned
            or self.api_timeout
            or self.api_drop_answer
            or self.api_drip
            or (self.refund_insufficient_funds and method == const.REFUND_METHOD)
            or (self.token_decline and method == const.TOKEN_PURCHASE_METHOD)
            or self.api_status_text is not None
        )

    def take_api(self, method):
        """The switches one call sees; counts `api_faults_remaining` down."""
        taken = copy.copy(self)
        if self.api_active(method) and self.api_faults_remaining is not None:
            self.api_faults_remaining -= 1
            if self.api_faults_remaining <= 0:
                for name in _API_FAULTS:
                    setattr(self, name, Faults.__dataclass_fields__[name].default)
                self.api_faults_remaining = None
        return taken if taken.api_active(method) else Faults()


class Fields:
    """Posted (name, value) pairs, read by name without regard to case, as myPOS reads them."""

    def __init__(self, pairs):
        if isinstance(pairs, dict):
            pairs = pairs.items()
        self.pairs = [(str(name), '' if value is None else str(value)) for name, value in pairs]
        self._values = {name.lower(): value for name, value in self.pairs}

    def get(self, name, default=None):
        return self._values.get(name.lower(), default)

    def require(self, *names):
        missing = [name for name in names if self.get(name, '') == '']
        if missing:
            raise Reject(
                Status.E_MISSING_REQ_PARAMS, f"missing required field(s): {', '.join(missing)}"
            )


@dataclass
class PaymentResult:
    """What :meth:`FakeMyPOS.pay` / :meth:`FakeMyPOS.cancel` did, as the emulator reports it.

    outcome: 'paid', 'reversed' (notify not acknowledged: rollback sent), 'declined',
    'cancelled', 'rejected' (the purchase form was refused with `status`).
    """

    outcome: str
    status: int = 0
    message: str = ''
    order_id: str | None = None
    ipc_trnref: str | None = None
    notify_fields: list | None = None  # The signed IPCPurchaseNotify.
    notifications: list = field(default_factory=list)
    return_method: str | None = None
    return_url: str | None = None
    return_fields: list | None = None  # What the browser posts back (IPCPurchaseOK / Cancel).

    @property
    def notify(self):
        return self.notifications[0] if self.notifications else None


def _amount(text, what='Amount', pattern=AMOUNT_RE):
    if not isinstance(text, str) or not pattern.fullmatch(text):
        raise Reject(
            Status.E_WRONG_AMOUNT,
            f"{what} {text!r} is not a decimal number with a point and at most 2 decimals",
        )
    return Decimal(text)


def _render(tree, output_format):
    """Return the body of an answer: myPOS's XML (root `IPC_response`) or JSON, where `Status`
    is a JSON number when its text is a plain integer."""
    if (output_format or '').lower() == 'json':

        def convert(pairs, top):
            result = {}
            for key, value in pairs:
                if isinstance(value, list):
                    result[key] = convert(value, False)
                elif top and key == 'Status' and _CANONICAL_INTEGER_RE.fullmatch(value):
                    result[key] = int(value)
                else:
                    result[key] = value
            return result

        return json.dumps(convert(tree, True), ensure_ascii=False).encode('utf-8')

    def fill(element, pairs):
        for key, value in pairs:
            child = ElementTree.SubElement(element, key)
            if isinstance(value, list):
                fill(child, value)
            else:
                child.text = value

    root = ElementTree.Element('IPC_response')
    fill(root, tree)
    return ElementTree.tostring(root, encoding='utf-8', xml_declaration=True)


def _jsonable(value):
    if isinstance(value, Decimal):
        return f'{value:.2f}'
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _now():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


class FakeMyPOS:
    """myPOS in memory: one store (the public sandbox store's by default), its orders, refunds,
    saved cards, the calls it received, and fault switches named as the emulator's.

    :param str merchant_key_pem: The store's key (private, public or certificate) that verifies
        what the merchant signs; myPOS's own key pair is a new throw-away one
        (:attr:`private_key_pem`, :attr:`certificate_pem`), unless given.
    """

    url = URL

    def __init__(
        self,
        merchant_key_pem,
        *,
        sid=const.SANDBOX_SID,
        wallet_number=const.SANDBOX_WALLET_NUMBER,
        key_index=const.SANDBOX_KEY_INDEX,
        key_pair=None,
        billing_descriptor='myPOS  * FAKE',
    ):
        self.sid = str(sid)
        self.wallet_number = str(wallet_number)
        self.key_index = int(key_index)
        self.merchant_public_key_pem = public_key_pem(merchant_key_pem)
        self.private_key_pem, self.certificate_pem = key_pair or generate_key_pair(1024)
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
        """The order (amounts as myPOS writes them, 'refunded' included), or None."""
        with self.lock:
            order = self.orders.get(order_id)
            return _jsonable(copy.deepcopy(order)) if order else None

    def refunds(self, order_id=None):
        with self.lock:
            return [
                _jsonable(copy.deepcopy(refund))
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
            return _jsonable(
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

    def pay(self, fields, card=VISA, expiry='3012', deliver=None):
        """Pay the signed IPCPurchase form `fields` on the hosted page with `card`.

        myPOS posts the signed IPCPurchaseNotify to URL_Notify with `deliver(url, pairs)`, which
        returns (HTTP status, body text) or raises OSError; when it is not answered `OK`, myPOS
        posts IPCPurchaseRollback and reverses the payment. Without `deliver` nothing is posted
        (the notify is in the result, for the test to post) and the payment stays paid.

        :param str expiry: The card's expiry, YYMM as myPOS signs it.
        :rtype: PaymentResult
        """
        fields = Fields(fields)
        try:
            purchase = self._check_purchase(fields)
        except Reject as reject:
            return PaymentResult(
                'rejected', reject.status, reject.message, order_id=fields.get('OrderID')
            )
        number = re.sub(r'[\s-]', '', str(card))
        with self.lock:
            order = self._open_order(purchase)
            if isinstance(order, PaymentResult):
                return order
            if number in DECLINED_CARDS:
                order['status'] = 'declined'
                return PaymentResult(
                    'declined',
                    Status.E_TRANSACTION_DECLINED,
                    DECLINED_CARDS[number],
                    order_id=purchase['order_id'],
                )
            notify, ok_message, card_record = self._approve(order, purchase, number, expiry)
            faults = copy.copy(self.faults)
            self.faults.notify_fail_once = False
        result = PaymentResult(
            'paid', order_id=purchase['order_id'], ipc_trnref=order['ipc_trnref']
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
        """Press Cancel on the hosted page: the browser gets the signed IPCPurchaseCancel."""
        fields = Fields(fields)
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

    def _open_order(self, purchase):
        """The order of an accepted purchase form, or the result of a refused one (lock held)."""
        order_id = purchase['order_id']
        order = self.orders.get(order_id)
        if order and order['status'] in PAID_OR_PAYING:
            return PaymentResult(
                'rejected',
                Status.E_DUPLICATE_TRANSMISSION,
                f"a payment was already made with OrderID {order_id}",
                order_id=order_id,
            )
        if not order:
            order = self.orders[order_id] = self._new_order(order_id, 'IPCPurchase')
        order.update(
            status='pending',
            amount=purchase['amount_text'],
            currency=purchase['currency'],
            url_notify=purchase['url_notify'],
        )
        return order

    def _approve(self, order, purchase, number, expiry):
        """Book the approved card; return the signed (notify, IPCPurchaseOK, card to save)."""
        trnref = str(next(self._trnrefs))
        request_datetime = _now().strftime('%Y-%m-%d %H:%M:%S')
        extra = [
            ('IPC_Trnref', trnref),
            ('RequestSTAN', f'{next(self._stans) % 1000000:06d}'),
            ('RequestDateTime', request_datetime),
            ('PaymentMethod', '1'),
            ('BillingDescriptor', self.billing_descriptor),
            ('PAN', number[-4:]),
        ]
        card = None
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
                for name in _CUSTOMER_ECHO
                if purchase['customer'].get(name)
            ]
        order.update(
            status='processing',
            ipc_trnref=trnref,
            request_datetime=request_datetime,
            pan=number[-4:],
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
            'card_token': None,
            'url_notify': None,
            'refunded': Decimal(0),
            'refunds': [],
            'last_message': None,
        }

    # --- Checks of what the merchant posts --- #

    def _check_identity(self, fields):
        """The checks of every call: SID (1/4), KeyIndex (1/3), Signature (2), WalletNumber
        (1/5), IPCVersion (1/5); see https://developers.mypos.com/apis/checkout-api."""
        sid = fields.get('SID', '')
        if not sid:
            raise Reject(Status.E_MISSING_REQ_PARAMS, "missing required field(s): SID")
        if sid != self.sid:
            raise Reject(Status.E_INVALID_SID, f"unknown store SID {sid!r}")
        key_index = fields.get('KeyIndex', '')
        if not key_index:
            raise Reject(Status.E_MISSING_REQ_PARAMS, "missing required field(s): KeyIndex")
        if key_index.strip() != str(self.key_index):
            raise Reject(
                Status.E_IPC_ERROR,
                f"KeyIndex {key_index!r} is not a key of this store (expected {self.key_index})",
            )
        pairs = fields.pairs
        if not fields.get('Signature') or pairs[-1][0].lower() != 'signature':
            raise Reject(Status.E_SIGNATURE_FAILED, "the request has no Signature last")
        values = [value for name, value in pairs[:-1]]
        if not verify(values, pairs[-1][1], self.merchant_public_key_pem):
            raise Reject(
                Status.E_SIGNATURE_FAILED, "the Signature does not verify with the merchant's key"
            )
        wallet = fields.get('WalletNumber', '')
        if not wallet:
            raise Reject(Status.E_MISSING_REQ_PARAMS, "missing required field(s): WalletNumber")
        if wallet != self.wallet_number:
            raise Reject(
                Status.E_INVALID_PARAMS, f"WalletNumber {wallet!r} does not own store {self.sid}"
            )
        fields.require('IPCVersion')
        if fields.get('IPCVersion') not in IPC_VERSIONS:
            raise Reject(
                Status.E_INVALID_PARAMS, f"unsupported IPCVersion {fields.get('IPCVersion')!r}"
            )

    def _check_money(self, fields, store_only=False):
        """Amount (9), Currency (5/25), OrderID and the cart rows summing to Amount (9)."""
        fields.require(*(() if store_only else ('Amount', 'CartItems')), 'Currency', 'OrderID')
        currency = fields.get('Currency')
        if currency not in const.SUPPORTED_CURRENCIES:
            raise Reject(Status.E_STORE_RESTRICTED, f"the currency {currency!r} is not enabled")
        if store_only:
            return Decimal(0)
        amount = _amount(fields.get('Amount'))
        if amount <= 0:
            raise Reject(Status.E_WRONG_AMOUNT, f"Amount {fields.get('Amount')!r} is not positive")
        count = int(fields.get('CartItems'))
        total = Decimal(0)
        for n in range(1, count + 1):
            fields.require(f'Article_{n}', f'Quantity_{n}', f'Price_{n}', f'Amount_{n}')
            price = _amount(fields.get(f'Price_{n}'), f'Price_{n}', SIGNED_AMOUNT_RE)
            row = _amount(fields.get(f'Amount_{n}'), f'Amount_{n}', SIGNED_AMOUNT_RE)
            if row != price * int(fields.get(f'Quantity_{n}')):
                raise Reject(Status.E_WRONG_AMOUNT, f"Amount_{n} is not Quantity_{n} x Price_{n}")
            if fields.get(f'Currency_{n}') != currency:
                raise Reject(Status.E_INVALID_PARAMS, f"Currency_{n} differs from Currency")
            total += row
        if total != amount:
            raise Reject(Status.E_WRONG_AMOUNT, f"the cart rows sum to {total}, not to Amount")
        return amount

    def _check_purchase(self, fields):
        self._check_identity(fields)
        if fields.get('IPCmethod') != 'IPCPurchase':
            raise Reject(Status.E_UNSUPPORTED_CALL, f"{fields.get('IPCmethod')!r} on the page")
        token_request = fields.get('CardTokenRequest')
        store_only = token_request == const.CARD_TOKEN_STORE
        fields.require('URL_OK', 'URL_Cancel', 'URL_Notify', 'PaymentParametersRequired')
        if token_request not in ('0', '1', '2'):
            raise Reject(Status.E_INVALID_PARAMS, f"CardTokenRequest {token_request!r}")
        self._check_money(fields, store_only)
        return {
            'order_id': fields.get('OrderID'),
            'amount_text': '0.00' if store_only else fields.get('Amount'),
            'currency': fields.get('Currency'),
            'url_ok': fields.get('URL_OK'),
            'url_cancel': fields.get('URL_Cancel'),
            'url_notify': fields.get('URL_Notify'),
            'card_token_request': token_request,
            'payment_parameters_required': fields.get('PaymentParametersRequired'),
            'customer': {name: fields.get(name) for name in _CUSTOMER_ECHO if fields.get(name)},
        }

    # --- The server-to-server calls --- #

    def post(self, url, fields):
        """Stand-in for :func:`.transport.post`: the body of myPOS's HTTP 200 answer, or the
        :class:`RemoteError` the transport raises for what the faults make of the exchange."""
        if url != self.url:
            raise RemoteError(
                Failure.UNREACHABLE,
                f"myPOS cannot be reached at {url} (ConnectionError: nothing listens there; "
                f"the fake myPOS is at {self.url})",
                url=url,
                error='ConnectionError',
            )
        fields = Fields(fields)
        with self.lock:
            self.in_flight += 1
            self.in_flight_max = max(self.in_flight_max, self.in_flight)
        try:
            return self._call(url, fields)
        finally:
            with self.lock:
                self.in_flight -= 1

    def _call(self, url, fields):
        method = fields.get('IPCmethod', '')
        with self.lock:
            faults = self.faults.take_api(method)
        call = {
            'method': method,
            'order_id': fields.get('OrderID'),
            'ipc_trnref': fields.get('IPC_Trnref'),
            'amount': fields.get('Amount'),
            'status': None,
            'fault': None,
            'fields': list(fields.pairs),
        }
        http_status = faults.api_http_status or faults.api_redirect
        if http_status:  # Answered by something in front of myPOS; never processed.
            call['fault'] = f"http {http_status}"
            with self.lock:
                self.calls.append(call)
            raise RemoteError(
                Failure.HTTP,
                f"myPOS answered with HTTP error {http_status} at {url}",
                url=url,
                http_status=http_status,
            )
        try:
            tree = self._process(method, fields, faults)
        except Reject as reject:
            tree = [
                (ANSWER_METHOD_KEY.get(method, 'IPCmethod'), method),
                ('Status', str(int(reject.status))),
                ('StatusMsg', reject.message),
            ]
            call['status'] = int(reject.status)
        else:
            call['status'] = 0
        if faults.api_status_text is not None:
            tree = [(k, faults.api_status_text if k == 'Status' else v) for k, v in tree]
        pairs = sign_tree(tree, self.private_key_pem)
        if faults.api_bad_signature:
            pairs[-1] = ('Signature', sign(['tampered'], self.private_key_pem))
        if faults.api_unsigned:
            pairs = pairs[:-1]
        body = GARBAGE if faults.api_garbage else _render(pairs, fields.get('OutputFormat'))
        call['fault'] = ', '.join(
            name for name in _API_FAULTS if getattr(faults, name) not in (None, False, 0.0)
        )
        with self.lock:
            self.calls.append(call)
        if faults.api_drop_answer:
            raise RemoteError(
                Failure.LOST,
                f"the connection to myPOS at {url} broke after the request was sent "
                "(ConnectionError: Connection aborted, RemoteDisconnected): myPOS may have "
                "acted on it",
                url=url,
                error='ConnectionError',
            )
        delay = faults.api_timeout + faults.api_drip * len(body)
        if delay >= const.REQUEST_TIMEOUT:
            raise RemoteError(
                Failure.TIMEOUT,
                f"myPOS did not answer within {const.REQUEST_TIMEOUT} seconds ({url}): "
                "Read timed out.",
                url=url,
                seconds=const.REQUEST_TIMEOUT,
            )
        if delay:
            time.sleep(delay)
        return body

    def _process(self, method, fields, faults):
        self._check_identity(fields)
        handler = {
            const.REFUND_METHOD: self._refund,
            const.TXN_STATUS_METHOD: self._txn_status,
            'IPCGetPaymentStatus': self._payment_status,
            const.TOKEN_PURCHASE_METHOD: self._token_purchase,
        }.get(method)
        if handler is None:
            raise Reject(Status.E_UNSUPPORTED_CALL, f"IPCmethod {method} is not supported")
        with self.lock:
            return handler(fields, faults)

    def _refund(self, fields, faults):
        fields.require('IPC_Trnref', 'Amount', 'Currency')
        amount = _amount(fields.get('Amount'))
        if amount <= 0:
            raise Reject(Status.E_WRONG_AMOUNT, "the refund Amount must be positive")
        trnref, currency = fields.get('IPC_Trnref'), fields.get('Currency')
        refund_order_id = fields.get('OrderID') or ''
        order_id = self.trnrefs.get(trnref)
        if order_id is None:
            raise Reject(Status.E_INVALID_PARAMS, f"unknown IPC_Trnref {trnref!r}")
        order = self.orders[order_id]
        if order['status'] != 'paid':
            raise Reject(
                Status.E_TRANSACTION_NOT_PERMITTED,
                f"the purchase {order_id} is {order['status']}, not paid",
            )
        if currency != order['currency']:
            raise Reject(Status.E_INVALID_PARAMS, f"Currency {currency} is not the purchase's")
        if refund_order_id and (
            refund_order_id in self.orders
            or any(r['refund_order_id'] == refund_order_id for r in self.refund_records)
        ):
            raise Reject(
                Status.E_DUPLICATE_TRANSMISSION, f"OrderID {refund_order_id} was already used"
            )
        if faults.refund_insufficient_funds:
            raise Reject(Status.E_NOT_SUFFICIENT_FUNDS, "not enough funds in the merchant account")
        balance = Decimal(order['amount']) - order['refunded']
        if amount > balance:
            raise Reject(
                Status.E_WRONG_AMOUNT,
                f"the refund {fields.get('Amount')} exceeds the refundable balance {balance:.2f}",
            )
        order['refunded'] += amount
        refund = {
            'order_id': order_id,
            'refund_order_id': refund_order_id,
            'ipc_trnref': trnref,
            'amount': fields.get('Amount'),
            'currency': currency,
        }
        order['refunds'].append(refund)
        self.refund_records.append(dict(refund))
        return [
            ('IPCmethod', const.REFUND_METHOD),
            ('IPC_Trnref', trnref),
            ('Amount', fields.get('Amount')),
            ('Currency', currency),
            ('Status', '0'),
            ('StatusMsg', 'Success'),
        ]

    def _token_purchase(self, fields, faults):
        """Charge a saved card: https://developers.mypos.com/apis/checkout-api (IPCIAPurchase)."""
        fields.require('OrderID', 'Amount', 'Currency', 'CardToken')
        self._check_money(fields)
        order_id, token = fields.get('OrderID'), fields.get('CardToken')
        card = self.tokens.get(token)
        if card is None or card['sid'] != self.sid:
            raise Reject(Status.E_INVALID_PARAMS, f"unknown CardToken {token!r}")
        order = self.orders.get(order_id)
        if order and order['status'] in PAID_OR_PAYING:
            raise Reject(
                Status.E_DUPLICATE_TRANSMISSION,
                f"a payment was already made with OrderID {order_id}",
            )
        if not order:
            order = self.orders[order_id] = self._new_order(order_id, const.TOKEN_PURCHASE_METHOD)
        purchase = {
            'order_id': order_id,
            'amount_text': fields.get('Amount'),
            'currency': fields.get('Currency'),
        }
        order.update(
            method=const.TOKEN_PURCHASE_METHOD,
            card_token=token,
            amount=purchase['amount_text'],
            currency=purchase['currency'],
            pan=card['pan'],
        )
        if faults.token_decline:
            order['status'] = 'declined'
            raise Reject(
                faults.token_decline,
                f"the stored card was not charged: {faults.token_decline.name} (fault)",
            )
        trnref = str(next(self._trnrefs))
        request_datetime = _now().strftime('%Y-%m-%d %H:%M:%S')
        order.update(
            status='paid',
            ipc_trnref=trnref,
            request_datetime=request_datetime,
            # What IPCGetTxnStatus nests as OrderStatus: the last message myPOS sent about it.
            last_message=self._order_message(
                const.TOKEN_PURCHASE_METHOD,
                purchase,
                [('IPC_Trnref', trnref), ('RequestDateTime', request_datetime)],
            ),
        )
        self.trnrefs[trnref] = order_id
        return [
            ('IPCmethod', const.TOKEN_PURCHASE_METHOD),
            ('IPC_Trnref', trnref),
            ('Amount', purchase['amount_text']),
            ('Currency', purchase['currency']),
            ('Status', '0'),
            ('StatusMsg', 'Success'),
        ]

    def _txn_status(self, fields, _faults):
        """IPCGetTxnStatus: the last message myPOS signed about the order, nested as
        `OrderStatus` (for a refund's OrderID, the refund itself)."""
        fields.require('OrderID')
        order_id = fields.get('OrderID')
        order = self.orders.get(order_id)
        last = list(order['last_message']) if order and order['last_message'] else None
        tree = [('IPCMethod', const.TXN_STATUS_METHOD), ('OrderID', order_id)]
        if not last:
            refund = next(
                (r for r in self.refund_records if r['refund_order_id'] == order_id), None
            )
            if refund:
                order = refund
                last = self._order_message(
                    const.REFUND_METHOD,
                    {
                        'order_id': order_id,
                        'amount_text': refund['amount'],
                        'currency': refund['currency'],
                    },
                    [('IPC_Trnref', refund['ipc_trnref'])],
                )
        if last:
            tree.append(('OrderStatus', last))
        return tree + [('Status', '0'), ('StatusMsg', 'Success' if order else 'Order not found')]

    def _payment_status(self, fields, _faults):
        fields.require('OrderID')
        order_id = fields.get('OrderID')
        order = self.orders.get(order_id)
        tree = [('IPCMethod', 'IPCGetPaymentStatus'), ('OrderID', order_id)]
        if not order:
            return tree + [
                ('PaymentStatus', '0'),
                ('Status', '0'),
                ('StatusMsg', 'Order not found'),
            ]
        trnref = order['ipc_trnref'] if order['status'] in ('paid', 'reversed') else ''
        return tree + [
            ('PaymentMethod', '1'),
            ('PaymentStatus', PAYMENT_STATUS[order['status']]),
            ('PaymentReference', f'MTFAKE{trnref}' if trnref else ''),
            ('Amount', order['amount']),
            ('Currency', order['currency']),
            ('IPC_Trnref', trnref or ''),
            ('Status', '0'),
            ('StatusMsg', 'Success'),
        ]
