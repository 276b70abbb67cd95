# Part of payment_mypos. License LGPL-3.
"""The calls we sign: amounts at the wire, the purchase form and the server-to-server calls.
Amounts are integers in minor units until the wire.

https://developers.mypos.com/apis/checkout-api/purchase
https://developers.mypos.com/apis/checkout-api/refund
https://developers.mypos.com/apis/checkout-api/pre-authorization
docs/mypos-protocol.md §4.8 (IPCGetTxnStatus), §4.11 (IPCIAPurchase)
"""

import hashlib
import re
import unicodedata
from decimal import Decimal, InvalidOperation

from . import const
from .countries import COUNTRY_ALPHA3
from .errors import IPCError, MalformedMessage
from .layouts import is_card_token
from .signing import sign_fields

_AMOUNT_RE = re.compile(r'-?[0-9]+(\.[0-9]+)?')  # ASCII digits only.


def format_amount(minor_units, decimals):
    """Format an amount in minor units as myPOS's decimal string: 2345, 2 -> '23.45'.

    :param int minor_units: The amount in minor units.
    :param int decimals: The currency's number of decimals.
    :rtype: str
    """
    return f'{Decimal(int(minor_units)).scaleb(-decimals):.{decimals}f}'


def parse_amount(text, decimals):
    """Parse myPOS's decimal amount into minor units: '23.45', 2 -> 2345; '50', 2 -> 5000.

    :param str text: A decimal with a point and no thousands separator.
    :param int decimals: The currency's number of decimals.
    :rtype: int
    :raise MalformedMessage: If it is not such a number, or has more decimals than the currency.
    """
    if not isinstance(text, str) or not _AMOUNT_RE.fullmatch(text):
        raise MalformedMessage(
            f"the amount {text!r} is not a decimal number", code='amount_format', amount=text
        )
    try:
        scaled = Decimal(text).scaleb(decimals)
    except InvalidOperation:
        raise MalformedMessage(
            f"the amount {text!r} is not a decimal number", code='amount_format', amount=text
        ) from None
    if scaled != scaled.to_integral_value():
        raise MalformedMessage(
            f"the amount {text!r} has more than {decimals} decimals",
            code='amount_decimals',
            amount=text,
            decimals=decimals,
        )
    return int(scaled)


_ARTICLE_UNSAFE_RE = re.compile(r'[\x00-\x1f\x7f<>]+')


# Field names are not signed and myPOS matches them in any order (docs/mypos-protocol.md §2, §3.3a):
# a shopper can re-label the values of the purchase form their browser posts, and cut them again at
# any '-'. So no text of theirs holds a '-' (an ASCII one: the only character the signature joins
# with), and no value of theirs reads as a URL (re-labelled URL_Notify, myPOS's notification would
# go to them), as an IPC method (the form would read as another call - a refund, a reversal - signed
# with the store's key), as an account number (N(11): WalletNumber, AccountSettlement) or as a
# `PaymentMethod` (a digit, or digits and commas: re-labelled, the page would offer other methods).
_HYPHEN = '\u2010'  # Looks like '-' on myPOS's page, is not one for the signature.
_METHOD_LIKE_RE = re.compile(r'ipc[a-z]*', re.IGNORECASE)
_ACCOUNT_LIKE_RE = re.compile(r'[0-9]{10,}')
# Digits with commas, semicolons or blanks in any mix, or digits standing alone ('5', '1 5');
# a postcode such as '1000' or '105 57' is none.
_PAYMENT_METHOD_LIKE_RE = re.compile(r'[0-9\s,;]*[,;][0-9\s,;]*|\s*[0-9](?:\s+[0-9])*\s*')


def clean_text(text, max_length=100):
    """Return `text` on one line, without control characters, markup or anything a re-labelled
    or re-cut value could use (see above), at most `max_length` characters."""
    # What myPOS's side could make of it once normalised is what is checked here.
    text = unicodedata.normalize('NFKC', text or '')
    text = ''.join(char for char in text if unicodedata.category(char) != 'Cf')
    text = _ARTICLE_UNSAFE_RE.sub(' ', text).replace('-', _HYPHEN).replace(':', ' ')
    text = re.sub(r'[/\\]{2,}', '/', text.replace('\\', '/')).strip()
    text = re.sub(r'\s{2,}', ' ', text)[:max_length].strip()
    return '' if _is_dangerous(text) else text


def _is_dangerous(value):
    return bool(
        _METHOD_LIKE_RE.fullmatch(value)
        or _ACCOUNT_LIKE_RE.fullmatch(value)
        or (_PAYMENT_METHOD_LIKE_RE.fullmatch(value) and re.search(r'[0-9]', value))
    )


def check_payment_method(value):
    """Return `value` if it is a `PaymentMethod` this module posts: distinct values of
    `const.PAYMENT_METHODS` joined by commas, no blanks ('1', '2', '1,5', '1,2,5'); never '3',
    which a list says as well (https://developers.mypos.com/apis/checkout-api/purchase).

    :raise IPCError: If it is not.
    """
    parts = value.split(',') if isinstance(value, str) else []
    if not parts or any(part not in const.PAYMENT_METHODS for part in parts):
        raise IPCError(
            f"the payment method {value!r} is not a comma list of "
            f"{', '.join(const.PAYMENT_METHODS)}",
            code='payment_method',
        )
    if len(set(parts)) != len(parts):
        raise IPCError(f"the payment method {value!r} repeats a value", code='payment_method')
    return value


def build_cart(lines, total_minor, decimals, currency, fallback_name):
    """Return the cart fields: one row per line when they add up exactly, else a single row.

    A line becomes a row only with a whole, positive quantity and a unit price that is exact in
    the currency. Lines worth zero are left out. If any line fails or the rows do not sum to the
    total exactly, the whole amount becomes one row, so the cart always sums to `Amount`.

    :param list lines: (name, quantity, line total in minor units) tuples; quantity as a number or
                       decimal string.
    :param int total_minor: The purchase amount in minor units.
    :param int decimals: The currency's number of decimals.
    :param str currency: The currency's ISO code.
    :param str fallback_name: The article name of the single row.
    :return: The `CartItems` field then the row fields, in posting order.
    :rtype: list
    """
    rows = []
    for name, quantity, line_minor in lines or ():
        if not line_minor:
            continue
        quantity = Decimal(str(quantity))
        if quantity <= 0 or quantity != quantity.to_integral_value() or line_minor % int(quantity):
            rows = []
            break
        quantity = int(quantity)
        rows.append(
            (
                clean_text(name) or clean_text(fallback_name) or 'Order',
                quantity,
                line_minor // quantity,
                line_minor,
            )
        )
    if not rows or sum(row[3] for row in rows) != total_minor:
        rows = [(clean_text(fallback_name) or 'Order', 1, total_minor, total_minor)]
    fields = [('CartItems', str(len(rows)))]
    for index, (name, quantity, price, amount) in enumerate(rows, start=1):
        fields += [
            (f'Article_{index}', name),
            (f'Quantity_{index}', str(quantity)),
            (f'Price_{index}', format_amount(price, decimals)),
            (f'Currency_{index}', currency),
            (f'Amount_{index}', format_amount(amount, decimals)),
        ]
    return fields


def cart_total(fields, decimals):
    """Return the sum of the `Amount_n` rows of purchase fields, in minor units."""
    by_name = dict(fields)
    count = int(by_name.get('CartItems', 0))
    return sum(parse_amount(by_name[f'Amount_{n}'], decimals) for n in range(1, count + 1))


_ORDER_ID_UNSAFE_RE = re.compile(r'[^A-Za-z0-9]+')


def make_order_id(reference, instance_tag, serial):
    """Return a myPOS OrderID for one payment attempt, of [A-Za-z0-9_] only, at most 80 long.

    `reference` keeps it readable, `instance_tag` (derived from the database) keeps it unique in
    myPOS's shared sandbox store, and `serial` (the transaction id) keeps it unique per attempt. It
    never holds '-', so that no re-cut of a signed message can move its boundary
    (docs/mypos-protocol.md §3.3a); a reference too long to fit is cut and followed by a digest of
    the whole, so that references differing only at their end (the refunds R-<source>-2, -3 ...)
    still give distinct OrderIDs.

    :param str reference: The Odoo transaction reference.
    :param str instance_tag: Short [a-z0-9] tag of the database.
    :param int serial: A number unique in the database for this attempt.
    :return: At most 80 characters of [A-Za-z0-9_].
    :rtype: str
    """
    suffix = f'_{instance_tag}_{serial}'
    readable = _ORDER_ID_UNSAFE_RE.sub('_', reference or '').strip('_') or 'tx'
    room = const.ORDER_ID_MAX_LENGTH - len(suffix)
    if len(readable) > room:
        digest = hashlib.sha256((reference or '').encode('utf-8')).hexdigest()[:8]
        readable = readable[: room - len(digest) - 1].rstrip('_') + '_' + digest
    return readable + suffix


def checkout_language(lang):
    """Return the checkout page language of an Odoo language code: 'bg_BG' -> 'BG', else 'EN'."""
    code = (lang or '').split('_')[0].split('@')[0].upper()
    return code if code in const.CHECKOUT_LANGUAGES else 'EN'


def split_name(name):
    """Split a full name into (first names, family name).

    'Ann Marie Smith' -> ('Ann Marie', 'Smith').
    """
    parts = clean_text(name).split(' ')
    if len(parts) < 2:
        return parts[0], ''
    return ' '.join(parts[:-1]), parts[-1]


def customer_fields(
    email=None, name=None, phone=None, country_code=None, city=None, zip_code=None, address=None
):
    """Return the optional customer fields of a purchase, leaving out empty ones."""
    first_names, family_name = split_name(name or '')
    email = clean_text(email, 100)
    phone = re.sub(r'[^0-9+]', '', phone or '')
    phone = re.sub(r'^00', '+', phone)
    candidates = [
        # An e-mail address cannot be changed, so one holding '-' is left for the shopper to type.
        ('CustomerEmail', '' if _HYPHEN in email else email),
        ('CustomerFirstNames', first_names),
        ('CustomerFamilyName', family_name),
        # International form only: never a bare number (see `_ACCOUNT_LIKE_RE`).
        ('CustomerPhone', phone if re.fullmatch(r'\+[0-9]{4,15}', phone) else ''),
        ('CustomerCountry', COUNTRY_ALPHA3.get((country_code or '').upper(), '')),
        ('CustomerCity', clean_text(city)),
        ('CustomerZIPCode', clean_text(zip_code, 20)),
        ('CustomerAddress', clean_text(address)),
    ]
    return [
        (field, value)
        for field, value in candidates
        if value and not _is_dangerous(value)  # A piece of a name could be one.
    ]


def build_purchase(
    credentials,
    *,
    source,
    order_id,
    amount_minor,
    decimals,
    currency,
    url_ok,
    url_cancel,
    url_notify,
    language,
    customer=(),
    cart=(),
    card_token_request=const.CARD_TOKEN_NONE,
    payment_method=const.PAYMENT_METHOD_CARD,
):
    """Return the signed fields of an `IPCPurchase` form, in posting order.

    :param Credentials credentials: The store.
    :param str source: The `Source` field: the integration and its version, as the caller names it.
    :param list customer: Fields from :func:`customer_fields`.
    :param list cart: Fields from :func:`build_cart`.
    :param str card_token_request: `const.CARD_TOKEN_*`; storing the card only posts no amount
                                   and no cart (as myPOS's PHP SDK does), whatever is given.
    :param str payment_method: The methods the page offers (see :func:`check_payment_method`).
    :return: (name, value) pairs, `Signature` last.
    :rtype: list
    :raise IPCError: If a payment's amount is not positive or its cart does not sum to it, or the
                     payment method is not one this module posts.
    """
    check_payment_method(payment_method)
    if card_token_request not in (
        const.CARD_TOKEN_NONE,
        const.CARD_TOKEN_STORE,
        const.CARD_TOKEN_PAY_AND_STORE,
    ):
        raise IPCError("the card token request must be 0, 1 or 2", code='card_token_request')
    store_only = card_token_request == const.CARD_TOKEN_STORE
    if not store_only:
        check_positive(amount_minor)
    amount = [] if store_only else [('Amount', format_amount(amount_minor, decimals))]
    if store_only:
        cart = []
    else:
        cart = list(cart) or build_cart((), amount_minor, decimals, currency, order_id)
        if cart_total(cart, decimals) != amount_minor:
            raise IPCError("the cart does not add up to the amount", code='cart_total')
    fields = [
        ('IPCmethod', 'IPCPurchase'),
        ('IPCVersion', const.IPC_VERSION),
        ('IPCLanguage', language),
        ('SID', credentials.sid),
        ('WalletNumber', credentials.wallet_number),
        ('KeyIndex', str(credentials.key_index)),
        ('Source', source),
        *amount,
        ('Currency', currency),
        ('OrderID', order_id),
        ('URL_OK', url_ok),
        ('URL_Cancel', url_cancel),
        ('URL_Notify', url_notify),
        ('CardTokenRequest', card_token_request),
        ('PaymentParametersRequired', const.PAYMENT_PARAMETERS_REQUIRED),
        ('PaymentMethod', payment_method),
        *customer,
        *cart,
    ]
    return sign_fields(fields, credentials.private_key)


def build_preauthorization(
    credentials,
    *,
    source,
    order_id,
    amount_minor,
    decimals,
    currency,
    item_name,
    url_ok,
    url_cancel,
    url_notify,
    language,
    note='',
):
    """Return the signed fields of an `IPCPreAuthorization` form (manual capture), in the order
    of myPOS's PHP SDK (`IPC/PreAuthorization.php`): no cart, no `PaymentMethod`, no
    `CardTokenRequest`, no customer fields, none of which the call has
    (https://developers.mypos.com/apis/checkout-api/pre-authorization).

    :param str item_name: What is guaranteed (required by myPOS): the payment reference; cleaned
                          as shopper text, the order ID if nothing of it is left.
    :param str note: Optional, posted (and signed) even when empty, as the SDK does.
    :return: (name, value) pairs, `Signature` last.
    :rtype: list
    :raise IPCError: If the amount is not positive.
    """
    check_positive(amount_minor)
    fields = [
        ('IPCmethod', const.PREAUTH_METHOD),
        ('IPCVersion', const.IPC_VERSION),
        ('IPCLanguage', language),
        ('SID', credentials.sid),
        ('WalletNumber', credentials.wallet_number),
        ('KeyIndex', str(credentials.key_index)),
        ('Source', source),
        ('ItemName', clean_text(item_name) or clean_text(order_id) or 'Order'),
        ('Currency', currency),
        ('Amount', format_amount(amount_minor, decimals)),
        ('OrderID', order_id),
        ('URL_OK', url_ok),
        ('URL_Cancel', url_cancel),
        ('URL_Notify', url_notify),
        ('Note', clean_text(note)),
    ]
    return sign_fields(fields, credentials.private_key)


def check_positive(amount_minor):
    """Refuse to build a payment of zero or less: myPOS would be asked to move no money, or
    the wrong way (a refund is `IPCRefund`, never a negative purchase).

    :raise IPCError: If `amount_minor` is not more than zero.
    """
    if amount_minor <= 0:
        raise IPCError("the amount to pay must be more than zero", code='amount_not_positive')


def token_purchase_params(*, order_id, amount_minor, decimals, currency, card_token, cart=()):
    """Return the own fields of an `IPCIAPurchase` call, which charges a saved card, in the order
    of myPOS's PHP SDK (docs/mypos-protocol.md §4.11); :func:`build_request` adds the standard
    ones and signs them.

    :param str card_token: The `CardToken` myPOS returned when the card was saved.
    :param list cart: Fields from :func:`build_cart`; one row of the whole amount by default.
    :rtype: list
    :raise IPCError: If the amount is not positive, the cart does not sum to it, or the token is
                     not one of myPOS's.
    """
    if not is_card_token(card_token):
        raise IPCError("the saved card's token is not in myPOS's format", code='card_token')
    check_positive(amount_minor)
    cart = list(cart) or build_cart((), amount_minor, decimals, currency, order_id)
    if cart_total(cart, decimals) != amount_minor:
        raise IPCError("the cart does not add up to the amount", code='cart_total')
    return [
        ('OrderID', order_id),
        ('Amount', format_amount(amount_minor, decimals)),
        ('Currency', currency),
        ('CardToken', card_token),
        *cart,
    ]


def build_request(credentials, method, params, *, source):
    """Return the signed fields of a server-to-server call, asking for its answer in JSON if it
    nests a signed message (`const.JSON_ANSWER_METHODS`), else in XML.

    :param str method: `IPCRefund`, `IPCGetTxnStatus`, ...
    :param list params: The call's own (name, value) pairs.
    :param str source: The `Source` field: the integration and its version, as the caller names it.
    :rtype: list
    """
    output_format = 'json' if method in const.JSON_ANSWER_METHODS else 'xml'
    fields = [
        ('IPCmethod', method),
        ('IPCVersion', const.IPC_VERSION),
        ('IPCLanguage', 'EN'),
        ('SID', credentials.sid),
        ('WalletNumber', credentials.wallet_number),
        ('KeyIndex', str(credentials.key_index)),
        ('Source', source),
        *params,
        ('OutputFormat', output_format),
    ]
    return sign_fields(fields, credentials.private_key)
