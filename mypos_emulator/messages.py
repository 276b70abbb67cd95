"""myPOS's side of the protocol: the checks myPOS makes on what a merchant posts.

Signing and verifying reuse the protocol package ``payment_mypos/ipc/`` (loaded by :mod:`._ipc`);
this module adds what only the server side needs: case-insensitive field access and the checks
myPOS makes on a purchase, a card and server-to-server calls, refused with myPOS's status codes.
What myPOS signs and answers is in :mod:`.answers`.

https://developers.mypos.com/apis/checkout-api/purchase
https://developers.mypos.com/apis/checkout-api/checkout-getting-started/error-messages
"""

import re
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import urlsplit

from ._ipc import const, ipc

# Pre-authorisation, by the emulator's own names (the addon's ipc.const has its own):
# https://developers.mypos.com/apis/checkout-api/pre-authorization and the pages it links.
PREAUTH_METHOD = 'IPCPreAuthorization'
PREAUTH_NOTIFY_METHOD = 'IPCPreAuthorizationNotify'
PREAUTH_OK_METHOD = 'IPCPreAuthorizationOK'
PREAUTH_CANCEL_METHOD = 'IPCPreAuthorizationCancel'
PREAUTH_COMPLETION_METHOD = 'IPCPreAuthCompletion'
PREAUTH_CANCELLATION_METHOD = 'IPCPreAuthCancellation'
PREAUTH_STATUS_METHOD = 'IPCPreAuthStatus'
PREAUTH_API_METHODS = (
    PREAUTH_COMPLETION_METHOD,
    PREAUTH_CANCELLATION_METHOD,
    PREAUTH_STATUS_METHOD,
)
API_METHODS = (
    'IPCRefund',
    'IPCReversal',
    'IPCGetTxnStatus',
    'IPCGetPaymentStatus',
    'IPCIAPurchase',
    *PREAUTH_API_METHODS,
)
IPC_VERSIONS = ('1.3', '1.4', '1.4.1')

AMOUNT_RE = re.compile(r'\d+(\.\d{1,2})?')  # Decimal point, at most 2 decimals.
SIGNED_AMOUNT_RE = re.compile(r'-?\d+(\.\d{1,2})?')  # Cart rows: discounts are negative.
# The enabled currencies without minor units in ISO 4217 (the others have 2): they decide how a zero
# amount is written (emulator's choice; docs/mypos-protocol.md §7 leaves myPOS's handling of
# decimals open).
ZERO_DECIMAL_CURRENCIES = frozenset({'ISK', 'JPY'})
# The fields of an amount and a cart, which a store-card-only IPCPurchase does not post.
_CART_FIELD_RE = re.compile(
    r'(amount|cartitems|(article|quantity|price|amount|currency|delivery)_\d+)', re.IGNORECASE
)

# Fields of IPCPurchase that IPCPreAuthorization does not take (lower case).
_NOT_PREAUTH_FIELDS = frozenset(
    {
        'cardtokenrequest',
        'paymentmethod',
        'paymentparametersrequired',
        'customeremail',
        'customerphone',
        'customerfirstnames',
        'customerfamilyname',
        'customercountry',
        'customercity',
        'customerzipcode',
        'customeraddress',
    }
)


class Reject(Exception):
    """A request refused with a myPOS status code."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = int(status)
        self.message = message

    @property
    def name(self):
        return const.STATUS_NAMES.get(self.status, 'E_UNDEFINED_ERROR')


@dataclass
class Store:
    """The store the emulator accepts requests for."""

    sid: str
    wallet_number: str
    key_index: int
    merchant_public_key_pem: str
    name: str = 'myPOS Emulator Store'
    billing_descriptor: str = 'myPOS  * EMULATOR'
    currencies: frozenset = field(default_factory=lambda: frozenset(const.SUPPORTED_CURRENCIES))


class Fields:
    """The posted (name, value) pairs with case-insensitive access by name, as myPOS matches them
    (docs/mypos-protocol.md §2)."""

    def __init__(self, pairs):
        self.pairs = list(pairs)
        self._values = {name.lower(): value for name, value in self.pairs}

    def get(self, name, default=None):
        return self._values.get(name.lower(), default)

    def __contains__(self, name):
        return name.lower() in self._values

    def require(self, *names):
        missing = [name for name in names if self.get(name, '') == '']
        if missing:
            raise Reject(
                ipc.Status.E_MISSING_REQ_PARAMS, f"missing required field(s): {', '.join(missing)}"
            )

    @property
    def signature(self):
        return self.get('Signature')

    @property
    def signed_values(self):
        return [value for name, value in self.pairs if name.lower() != 'signature']


def parse_amount(text, pattern=AMOUNT_RE, what='Amount'):
    """Return a myPOS amount as a Decimal, or reject it with E_WRONG_AMOUNT (9)."""
    if not isinstance(text, str) or not pattern.fullmatch(text):
        raise Reject(
            ipc.Status.E_WRONG_AMOUNT,
            f"{what} {text!r} is not a decimal number with a point and at most 2 decimals",
        )
    return Decimal(text)


def format_decimal(amount):
    return f'{amount:.2f}'


def zero_amount(currency):
    """Zero in a currency's decimals: the Amount signed for a card stored without paying."""
    return '0' if currency in ZERO_DECIMAL_CURRENCIES else '0.00'


def check_identity(fields, store):
    """The checks every call goes through: store, key, signature, wallet.

    Order: SID (1 missing / 4 unknown), KeyIndex (1 missing / 3 wrong), Signature (2 missing or
    not verifying with the merchant key), WalletNumber (1 missing / 5 wrong), IPCVersion (1 / 5).
    """
    sid = fields.get('SID', '')
    if not sid:
        raise Reject(ipc.Status.E_MISSING_REQ_PARAMS, "missing required field(s): SID")
    if sid != store.sid:
        raise Reject(ipc.Status.E_INVALID_SID, f"unknown store SID {sid!r}")
    key_index = fields.get('KeyIndex', '')
    if not key_index:
        raise Reject(ipc.Status.E_MISSING_REQ_PARAMS, "missing required field(s): KeyIndex")
    if key_index.strip() != str(store.key_index):
        raise Reject(
            ipc.Status.E_IPC_ERROR,
            f"KeyIndex {key_index!r} is not a key of this store (expected {store.key_index})",
        )
    if not fields.signature:
        raise Reject(ipc.Status.E_SIGNATURE_FAILED, "the request has no Signature")
    pairs = fields.pairs
    if pairs[-1][0].lower() != 'signature':
        raise Reject(ipc.Status.E_SIGNATURE_FAILED, "Signature must be the last field")
    if not ipc.verify(fields.signed_values, fields.signature, store.merchant_public_key_pem):
        raise Reject(
            ipc.Status.E_SIGNATURE_FAILED, "the Signature does not verify with the merchant's key"
        )
    wallet = fields.get('WalletNumber', '')
    if not wallet:
        raise Reject(ipc.Status.E_MISSING_REQ_PARAMS, "missing required field(s): WalletNumber")
    if wallet != store.wallet_number:
        raise Reject(
            ipc.Status.E_INVALID_PARAMS, f"WalletNumber {wallet!r} does not own store {store.sid}"
        )
    fields.require('IPCVersion')
    version = fields.get('IPCVersion')
    if version not in IPC_VERSIONS:
        raise Reject(ipc.Status.E_INVALID_PARAMS, f"unsupported IPCVersion {version!r}")
    if version == '1.4.1':
        fields.require('PartnerID', 'ApplicationID')


def _check_url(fields, name, schemes=('http', 'https')):
    url = fields.get(name)
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if not parts or parts.scheme.lower() not in schemes or not parts.hostname:
        raise Reject(
            ipc.Status.E_INVALID_PARAMS,
            f"{name} {url!r} is not an absolute {'/'.join(schemes)} URL",
        )
    return url


def _check_amount(fields):
    """`Amount` as a Decimal: digits with a point and at most 2 decimals (9), above zero (9)."""
    amount = parse_amount(fields.get('Amount'))
    if amount <= 0:
        raise Reject(ipc.Status.E_WRONG_AMOUNT, f"Amount {fields.get('Amount')!r} must be positive")
    return amount


def _check_currency(fields, store):
    """`Currency`: three capitals (5), enabled for the store (25)."""
    currency = fields.get('Currency')
    if not re.fullmatch(r'[A-Z]{3}', currency):
        raise Reject(ipc.Status.E_INVALID_PARAMS, f"Currency {currency!r} is not an ISO 4217 code")
    if currency not in store.currencies:
        raise Reject(
            ipc.Status.E_STORE_RESTRICTED, f"the currency {currency} is not enabled for this store"
        )
    return currency


def _check_order_id(fields):
    order_id = fields.get('OrderID')
    if len(order_id) > const.ORDER_ID_MAX_LENGTH:
        raise Reject(
            ipc.Status.E_INVALID_PARAMS,
            f"OrderID is longer than {const.ORDER_ID_MAX_LENGTH} characters",
        )
    return order_id


def check_purchase(fields, store):
    """Check an `IPCPurchase` form as myPOS would before showing its payment page.

    With `CardTokenRequest=1` (store the card, no payment) there is no `Amount` and no cart, as
    myPOS's PHP SDK posts it; posting either anyway is refused with 5 (emulator's choice).
    `PaymentMethod` is checked after these by :func:`.methods.offered`.

    :param Fields fields: The posted form.
    :param Store store: The store.
    :return: The purchase: order_id, amount (Decimal), amount_text, currency, urls, cart rows...
    :rtype: dict
    :raise Reject: With the status code of the first problem found.
    """
    check_identity(fields, store)
    token_request = fields.get('CardTokenRequest')
    store_only = token_request == '1'
    fields.require(
        *(() if store_only else ('Amount',)),
        'Currency',
        'OrderID',
        'URL_OK',
        'URL_Cancel',
        'URL_Notify',
        'CardTokenRequest',
        'PaymentParametersRequired',
    )
    if store_only:
        posted = [name for name, _value in fields.pairs if _CART_FIELD_RE.fullmatch(name)]
        if posted:
            raise Reject(
                ipc.Status.E_INVALID_PARAMS,
                f"CardTokenRequest=1 stores a card without paying: no Amount or cart is posted "
                f"(found {', '.join(posted[:3])})",
            )
        amount = Decimal(0)
    else:
        amount = _check_amount(fields)
    currency = _check_currency(fields, store)
    order_id = _check_order_id(fields)
    urls = {name: _check_url(fields, name) for name in ('URL_OK', 'URL_Cancel', 'URL_Notify')}
    if token_request not in ('0', '1', '2'):
        raise Reject(
            ipc.Status.E_INVALID_PARAMS, f"CardTokenRequest {token_request!r} is not 0, 1 or 2"
        )
    ppr = fields.get('PaymentParametersRequired')
    if ppr not in ('1', '2', '3'):
        raise Reject(
            ipc.Status.E_INVALID_PARAMS, f"PaymentParametersRequired {ppr!r} is not 1, 2 or 3"
        )
    if ppr == '1':
        fields.require('CustomerEmail', 'CustomerFirstNames', 'CustomerFamilyName')
    email = fields.get('CustomerEmail')
    if email and not re.fullmatch(r'[^@\s]+@[^@\s]+\.[^@\s]+', email):
        raise Reject(
            ipc.Status.E_INVALID_PARAMS, f"CustomerEmail {email!r} is not an e-mail address"
        )
    rows = [] if store_only else check_cart(fields, amount, currency)
    return {
        'order_id': order_id,
        'amount': amount,
        'amount_text': zero_amount(currency) if store_only else fields.get('Amount'),
        'currency': currency,
        'url_ok': urls['URL_OK'],
        'url_cancel': urls['URL_Cancel'],
        'url_notify': urls['URL_Notify'],
        'card_token_request': token_request,
        'payment_parameters_required': ppr,
        'language': (fields.get('IPCLanguage') or 'EN').upper(),
        'note': fields.get('Note') or '',
        'customer': {
            name: fields.get(name)
            for name in (
                'CustomerEmail',
                'CustomerFirstNames',
                'CustomerFamilyName',
                'CustomerPhone',
                'CustomerCountry',
                'CustomerCity',
                'CustomerZIPCode',
                'CustomerAddress',
            )
            if fields.get(name)
        },
        'cart': rows,
    }


def check_preauth_version(fields):
    """Pre-authorisation exists from IPCVersion 1.4 on: myPOS's PHP SDK refuses 1.3 for each of
    its pre-auth calls; the emulator answers 1.3 with 5 (its choice: what myPOS answers is
    undocumented)."""
    if fields.get('IPCVersion') == '1.3':
        raise Reject(
            ipc.Status.E_INVALID_PARAMS, "pre-authorisation needs IPCVersion 1.4 or later, not 1.3"
        )


def check_preauthorization(fields, store):
    """Check an `IPCPreAuthorization` form as myPOS would before showing its card page.

    Required: `ItemName`, `Amount`, `Currency`, `OrderID` and the three URLs (1), checked as for
    IPCPurchase (5, 9, 25). No cart, `CardTokenRequest`, `PaymentMethod` or
    `PaymentParametersRequired` belongs to this call (myPOS's PHP SDK posts none); posting one is
    refused with 5 (emulator's choice).
    https://developers.mypos.com/apis/checkout-api/pre-authorization

    :return: The pre-authorisation: kind 'preauth', order_id, amount, amount_text, currency,
             item_name, urls, note (and the keys the purchase page reads, empty).
    :rtype: dict
    :raise Reject: With the status code of the first problem found.
    """
    check_identity(fields, store)
    check_preauth_version(fields)
    fields.require(
        'ItemName', 'Amount', 'Currency', 'OrderID', 'URL_OK', 'URL_Cancel', 'URL_Notify'
    )
    foreign = [
        name
        for name, _value in fields.pairs
        if (_CART_FIELD_RE.fullmatch(name) and name.lower() != 'amount')
        or name.lower() in _NOT_PREAUTH_FIELDS
    ]
    if foreign:
        raise Reject(
            ipc.Status.E_INVALID_PARAMS,
            f"IPCPreAuthorization takes no cart, card token, payment method or customer "
            f"parameters (found {', '.join(foreign[:3])})",
        )
    amount = _check_amount(fields)
    currency = _check_currency(fields, store)
    order_id = _check_order_id(fields)
    urls = {name: _check_url(fields, name) for name in ('URL_OK', 'URL_Cancel', 'URL_Notify')}
    return {
        'kind': 'preauth',
        'order_id': order_id,
        'amount': amount,
        'amount_text': fields.get('Amount'),
        'currency': currency,
        'item_name': fields.get('ItemName'),
        'url_ok': urls['URL_OK'],
        'url_cancel': urls['URL_Cancel'],
        'url_notify': urls['URL_Notify'],
        'card_token_request': None,
        'payment_parameters_required': None,
        'language': (fields.get('IPCLanguage') or 'EN').upper(),
        'note': fields.get('Note') or '',
        'customer': {},
        'cart': [],
    }


def check_preauth_call(fields, *, amount=True):
    """The own fields of IPCPreAuthCompletion / IPCPreAuthCancellation (`OrderID`, `Amount`,
    `Currency`: 1 missing; 9 / 5 malformed) or IPCPreAuthStatus (`OrderID` only).

    https://developers.mypos.com/apis/checkout-api/pre-auth-completion
    :return: (order_id, amount Decimal or None, currency or None)
    """
    check_preauth_version(fields)
    if not amount:
        fields.require('OrderID')
        return fields.get('OrderID'), None, None
    fields.require('OrderID', 'Amount', 'Currency')
    value = _check_amount(fields)
    currency = fields.get('Currency')
    if not re.fullmatch(r'[A-Z]{3}', currency):
        raise Reject(ipc.Status.E_INVALID_PARAMS, f"Currency {currency!r} is not an ISO 4217 code")
    return fields.get('OrderID'), value, currency


def check_token_purchase(fields, store):
    """Check an `IPCIAPurchase` (charge a stored card) past the checks of every call.

    `OrderID`, `Amount`, `Currency`, `CardToken` and the cart are required (1) and checked as
    for IPCPurchase (5, 9, 25); whether the token is known is for the caller to say.

    :return: order_id, amount (Decimal), amount_text, currency, card_token, cart rows.
    :rtype: dict
    :raise Reject: With the status code of the first problem found.
    """
    fields.require('OrderID', 'Amount', 'Currency', 'CardToken')
    order_id = _check_order_id(fields)
    amount = _check_amount(fields)
    currency = _check_currency(fields, store)
    return {
        'order_id': order_id,
        'amount': amount,
        'amount_text': fields.get('Amount'),
        'currency': currency,
        'card_token': fields.get('CardToken'),
        'cart': check_cart(fields, amount, currency),
    }


def check_cart(fields, amount, currency):
    """Check the cart rows (the purchase page's "Cart rules") and return them as dicts."""
    count_text = fields.get('CartItems', '')
    if count_text == '':
        raise Reject(ipc.Status.E_MISSING_REQ_PARAMS, "missing required field(s): CartItems")
    if not re.fullmatch(r'\d+', count_text):
        raise Reject(ipc.Status.E_INVALID_PARAMS, f"CartItems {count_text!r} is not a whole number")
    count = int(count_text)
    if count < 1:
        raise Reject(
            ipc.Status.E_MISSING_REQ_PARAMS, "the cart is empty (CartItems must be at least 1)"
        )
    if count > 99:
        raise Reject(ipc.Status.E_INVALID_PARAMS, "CartItems is larger than 99")
    rows, total = [], Decimal(0)
    for n in range(1, count + 1):
        fields.require(
            f'Article_{n}', f'Quantity_{n}', f'Price_{n}', f'Amount_{n}', f'Currency_{n}'
        )
        quantity_text = fields.get(f'Quantity_{n}')
        if not re.fullmatch(r'\d+', quantity_text) or int(quantity_text) < 1:
            raise Reject(
                ipc.Status.E_INVALID_PARAMS,
                f"Quantity_{n} {quantity_text!r} is not a positive whole number",
            )
        price = parse_amount(fields.get(f'Price_{n}'), SIGNED_AMOUNT_RE, f'Price_{n}')
        row_amount = parse_amount(fields.get(f'Amount_{n}'), SIGNED_AMOUNT_RE, f'Amount_{n}')
        if row_amount != price * int(quantity_text):
            raise Reject(
                ipc.Status.E_WRONG_AMOUNT,
                f"Amount_{n} {fields.get(f'Amount_{n}')} is not "
                f"Quantity_{n} x Price_{n} ({quantity_text} x "
                f"{fields.get(f'Price_{n}')})",
            )
        if fields.get(f'Currency_{n}') != currency:
            raise Reject(
                ipc.Status.E_INVALID_PARAMS,
                f"Currency_{n} {fields.get(f'Currency_{n}')!r} differs from Currency {currency}",
            )
        total += row_amount
        rows.append(
            {
                'article': fields.get(f'Article_{n}'),
                'quantity': quantity_text,
                'price': fields.get(f'Price_{n}'),
                'amount': fields.get(f'Amount_{n}'),
                'currency': fields.get(f'Currency_{n}'),
                'delivery': fields.get(f'Delivery_{n}') == '1',
            }
        )
    if total != amount:
        raise Reject(
            ipc.Status.E_WRONG_AMOUNT,
            f"the cart rows sum to {format_decimal(total)}, not to Amount {fields.get('Amount')}",
        )
    return rows


# === Cards (see README: test cards) === #

DECLINED_CARDS = {
    '4877000000000002': "Declined by the issuer (test card)",
    '67032000000000001': "Declined by the issuer (test card)",
}


def card_type(number):
    """Return myPOS's CardType code for a card number.

    https://developers.mypos.com/apis/checkout-api/purchase-notify
    """
    if number.startswith('4'):
        return '3'  # VISA
    if re.match(r'5[1-5]|2(2[2-9]|[3-6]\d|7[01]|720)', number):
        return '1'  # MasterCard
    if re.match(r'5[06-9]|6', number):
        return '2'  # Maestro
    if number.startswith('35'):
        return '6'  # JCB
    return '3'


def check_card(number, expiry, cvc, today):
    """Check the card form; return (digits, 'YYMM') or raise Reject (5 or 22)."""
    digits = re.sub(r'[\s-]', '', number or '')
    if not re.fullmatch(r'\d{12,19}', digits):
        raise Reject(ipc.Status.E_INVALID_PARAMS, "the card number must have 12 to 19 digits")
    match = re.fullmatch(r'\s*(\d{1,2})\s*/\s*(\d{2}|\d{4})\s*', expiry or '')
    if not match or not 1 <= int(match.group(1)) <= 12:
        raise Reject(ipc.Status.E_WRONG_EXPIRE_DATE, "the expiry date must be MM/YY")
    month, year = int(match.group(1)), int(match.group(2)[-2:])
    if (2000 + year, month) < (today.year, today.month):
        raise Reject(ipc.Status.E_WRONG_EXPIRE_DATE, "the card has expired")
    if not re.fullmatch(r'\d{3,4}', (cvc or '').strip()):
        raise Reject(ipc.Status.E_INVALID_PARAMS, "the CVC must have 3 or 4 digits")
    return digits, f'{year:02d}{month:02d}'
