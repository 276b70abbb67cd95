# Part of payment_mypos. License LGPL-3.
"""The rules of the fake myPOS (:mod:`.fake`): its fault switches (the emulator's, by the same
names), how it reads what a merchant posts, and how it writes its answers."""

import copy
import dataclasses
import datetime
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from xml.etree import ElementTree

from . import const
from .const import Status

URL = 'https://fake-mypos.invalid/vmp/checkout-test'
VISA = '4006090000000007'
# The test cards myPOS's sandbox declines.
DECLINED_CARDS = {'4877000000000002': "Declined by the issuer (test card)"}
IPC_VERSIONS = ('1.3', '1.4', '1.4.1')
PAID_OR_PAYING = ('paid', 'processing')  # Order statuses that refuse another payment.
# A pre-authorisation's order statuses that also refuse another payment with its OrderID.
PREAUTH_HELD = ('authorized', 'captured')
# The `IPCPreAuthStatus` of each pre-authorisation order status
# (https://developers.mypos.com/apis/checkout-api/pre-auth-status).
PREAUTH_STATUS = {
    'authorized': const.PreAuthStatus.PENDING,
    'captured': const.PreAuthStatus.CAPTURED,
    'declined': const.PreAuthStatus.DECLINED,
    'reversed': const.PreAuthStatus.REVERSED,
    'cancelled': const.PreAuthStatus.CANCELLED,
}
# Days a pre-authorisation holds the funds when no test sets its expiry: myPOS's terminal help
# says 30 (help.mypos.com/hc/en-fi/articles/6882371009821); online it is unconfirmed.
PREAUTH_HOLD_DAYS = 30
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
CUSTOMER_ECHO = ('CustomerEmail', 'CustomerPhone', 'CustomerFirstNames', 'CustomerFamilyName')
_CANONICAL_INTEGER_RE = re.compile(r'0|-?[1-9][0-9]{0,17}')
API_FAULTS = (
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


# The currencies of each payment method but the card (which takes every currency of the store):
# TWINT CHF (https://developers.mypos.com/apis/checkout-api/checkout-getting-started/
# twint-online-payments); iDEAL, Satispay, IRIS EUR (the preamble's choice, as the emulator's).
METHOD_CURRENCIES = {'2': {'EUR'}, '4': {'EUR'}, '5': {'CHF'}, '6': {'EUR'}}
_METHOD_LIST_RE = re.compile(r'[1-6](,[1-6])*')


def offered_methods(text, currency, token_request):
    """The methods the page offers for a purchase's `PaymentMethod`, in the order asked (absent:
    every method; '3' is card and iDEAL, https://developers.mypos.com/apis/checkout-api/purchase),
    as the emulator's page: only those usable in `currency`; a card alone to store one.

    :raise Reject: 5 if the value is malformed or names a method twice, if a card is to be stored
        and no card is offered, or if no method is usable in `currency`.
    """
    if text:
        if not _METHOD_LIST_RE.fullmatch(text):
            raise Reject(Status.E_INVALID_PARAMS, f"PaymentMethod {text!r} is not valid")
        asked = []
        for value in text.split(','):
            asked += [const.PAYMENT_METHOD_CARD, '2'] if value == '3' else [value]
        if len(set(asked)) != len(asked):
            raise Reject(Status.E_INVALID_PARAMS, f"PaymentMethod {text!r} names a method twice")
    else:
        asked = list(const.PAYMENT_METHODS)
    if token_request in (const.CARD_TOKEN_STORE, const.CARD_TOKEN_PAY_AND_STORE):
        if const.PAYMENT_METHOD_CARD not in asked:
            raise Reject(
                Status.E_INVALID_PARAMS,
                f"CardTokenRequest={token_request} stores a card but PaymentMethod {text!r} "
                "offers no card",
            )
        if token_request == const.CARD_TOKEN_STORE:
            asked = [const.PAYMENT_METHOD_CARD]
    methods = [m for m in asked if currency in METHOD_CURRENCIES.get(m, {currency})]
    if not methods:
        raise Reject(
            Status.E_INVALID_PARAMS,
            f"PaymentMethod {text!r} offers no method usable in {currency} "
            "(iDEAL, Satispay, IRIS: EUR; TWINT: CHF)",
        )
    return tuple(methods)


@dataclass
class Faults:
    """The emulator's fault switches, by the same names; sticky until reset, except
    `notify_fail_once` (spent by the next payment) and the api_* / refund / token ones when
    `api_faults_remaining` is set (they then hit that many server-to-server calls)."""

    notify_drop: bool = False  # The notify is never sent; the payment stays paid.
    notify_fail_once: bool = False  # The notify fails: myPOS sends the rollback, reverses.
    notify_duplicate: bool = False  # The notify is sent twice.
    notify_omit_card_type: bool = False  # No CardType in the notify (as the sandbox).
    notify_payment_method: str | None = None  # The notify (and OK) echo this PaymentMethod.
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
            if name in ('api_status_text', 'notify_payment_method') and isinstance(value, int):
                value = str(value)
            if name == 'notify_payment_method' and not isinstance(value, str | None):
                raise ValueError(f"notify_payment_method must be a text or None, not {value!r}")
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
                for name in API_FAULTS:
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
    'cancelled', 'rejected' (the purchase form was refused with `status`); for a
    pre-authorisation 'authorized' instead of 'paid', and 'reversed' when its notify was not
    acknowledged (the hold released, no message sent).
    """

    outcome: str
    status: int = 0
    message: str = ''
    order_id: str | None = None
    ipc_trnref: str | None = None
    payment_method: str | None = None  # The method the shopper paid with ('1' card, ...).
    notify_fields: list | None = None  # The signed IPCPurchaseNotify (IPCPreAuthorizationNotify).
    notifications: list = field(default_factory=list)
    return_method: str | None = None
    return_url: str | None = None
    return_fields: list | None = None  # What the browser posts back (IPCPurchaseOK / Cancel...).

    @property
    def notify(self):
        return self.notifications[0] if self.notifications else None


def read_amount(text, what='Amount', pattern=AMOUNT_RE):
    if not isinstance(text, str) or not pattern.fullmatch(text):
        raise Reject(
            Status.E_WRONG_AMOUNT,
            f"{what} {text!r} is not a decimal number with a point and at most 2 decimals",
        )
    return Decimal(text)


def render_answer(tree, output_format):
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


def jsonable(value):
    if isinstance(value, Decimal):
        return f'{value:.2f}'
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def now():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def today():
    """myPOS's date (UTC), by which a pre-authorisation expires."""
    return now().date()
