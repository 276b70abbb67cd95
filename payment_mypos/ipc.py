# Part of payment_mypos. License LGPL-3.
"""The myPOS Checkout (IPC) protocol as plain functions.

Building the fields of a call, signing them, parsing what myPOS posts or answers and verifying its
signature: no Odoo import here, so this module is easy to test and to port. Amounts are integers
in minor units (cents) everywhere; they become decimal strings only at the wire.

Protocol facts: ../shared/reference/mypos-checkout-api.md (cited as "API §n").
"""

import base64
import binascii
import datetime
import functools
import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qsl
from xml.etree import ElementTree

from cryptography import x509
from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from . import const


class IPCError(ValueError):
    """Base class of every protocol error; its message is safe to show to an administrator."""


class MalformedMessage(IPCError):
    """The message cannot be parsed or lacks a required field."""


class InvalidSignature(IPCError):
    """The message's signature is missing or does not verify."""


class InvalidKey(IPCError):
    """A key or certificate cannot be loaded."""


@dataclass(frozen=True)
class Credentials:
    """The five settings that identify a store (API §4.1, §3.2, §3.4)."""

    sid: str
    wallet_number: str
    key_index: int
    private_key: str  # The store's RSA private key, PEM.
    certificate: str  # myPOS's certificate or bare public key, PEM.


# === Keys === #

_PEM_RE = re.compile(r'-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----', re.DOTALL)


def normalize_pem(text):
    """Return the first PEM block of `text`, re-wrapped in 64-character lines.

    Accepts what an administrator pastes: CRLF line ends, surrounding text, or a block whose line
    breaks were lost (a single-line password input drops them).

    :param str text: The pasted text.
    :return: The normalized PEM block.
    :rtype: str
    :raise InvalidKey: If no PEM block is found.
    """
    match = _PEM_RE.search(text or '')
    if not match:
        raise InvalidKey("no PEM block (-----BEGIN ...----- / -----END ...-----) found")
    label, body = match.group(1), re.sub(r'\s+', '', match.group(2))
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return '\n'.join([f'-----BEGIN {label}-----', *lines, f'-----END {label}-----', ''])


@functools.lru_cache(maxsize=32)
def _load_private_key(pem):
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as error:
        raise InvalidKey(f"the private key cannot be read ({error})") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise InvalidKey("the private key is not an RSA key")
    return key


def load_private_key(pem):
    """Return the RSA private key of a PEM text, parsed once per distinct content.

    :param str pem: A PKCS#1 or PKCS#8 PEM, unencrypted.
    :rtype: rsa.RSAPrivateKey
    :raise InvalidKey: If it is not an unencrypted RSA private key.
    """
    return _load_private_key(normalize_pem(pem))


def _der_read(data, offset):
    """Read one DER TLV at `offset`: return (tag, content start, content end)."""
    tag, length = data[offset], data[offset + 1]
    start = offset + 2
    if length & 0x80:
        size = length & 0x7F
        length = int.from_bytes(data[start : start + size], 'big')
        start += size
    if start + length > len(data):
        raise ValueError("truncated DER")
    return tag, start, start + length


def _spki_from_certificate_der(der):
    """Extract the SubjectPublicKeyInfo of an X.509 certificate without validating the rest.

    myPOS's legacy test certificates have an empty serial number, which `cryptography` refuses
    (API §3.4); their public key is still good.
    """
    _tag, cert_start, _end = _der_read(der, 0)  # Certificate
    _tag, tbs_start, tbs_end = _der_read(der, cert_start)  # TBSCertificate
    offset, index = tbs_start, 0
    if der[offset] == 0xA0:  # [0] version
        offset = _der_read(der, offset)[2]
    # serialNumber, signature, issuer, validity, subject, then subjectPublicKeyInfo.
    while offset < tbs_end:
        tag, start, end = _der_read(der, offset)
        if index == 5:
            return der[offset:end]
        offset, index = end, index + 1
    raise ValueError("no subjectPublicKeyInfo")


@functools.lru_cache(maxsize=32)
def _load_public_key(pem):
    label = _PEM_RE.search(pem).group(1)
    data = pem.encode()
    try:
        if label == 'CERTIFICATE':
            try:
                key = x509.load_pem_x509_certificate(data).public_key()
            except ValueError:
                der = base64.b64decode(''.join(pem.strip().splitlines()[1:-1]))
                key = serialization.load_der_public_key(_spki_from_certificate_der(der))
        else:  # PUBLIC KEY (SubjectPublicKeyInfo) or RSA PUBLIC KEY (PKCS#1)
            key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, IndexError, binascii.Error) as error:
        raise InvalidKey(f"the certificate or public key cannot be read ({error})") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise InvalidKey("the certificate does not hold an RSA public key")
    return key


def load_public_key(pem):
    """Return the RSA public key of a certificate or public-key PEM, parsed once per content.

    :param str pem: An X.509 certificate, a SubjectPublicKeyInfo or a PKCS#1 RSA public key.
    :rtype: rsa.RSAPublicKey
    :raise InvalidKey: If no RSA public key can be read from it.
    """
    return _load_public_key(normalize_pem(pem))


def public_key_pem(pem):
    """Return the bare public key (SubjectPublicKeyInfo PEM) of a private key, public key or
    certificate PEM."""
    label = _PEM_RE.search(pem or '')
    if label and 'PRIVATE' in label.group(1):
        key = load_private_key(pem).public_key()
    else:
        key = load_public_key(pem)
    return key.public_bytes(
        serialization.Encoding.PEM,
        serialization.PublicFormat.SubjectPublicKeyInfo,
    ).decode('ascii')


def self_signed_certificate(private_key_pem, organization, days=365):
    """Return a self-signed X.509 certificate (PEM) for a private key: myPOS's side of a key pair
    in the emulator and the tests, never used by the module itself."""
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


def forget_keys():
    """Drop every parsed key of this process; they are parsed again, once, on next use.

    Keys are cached by content, so a changed key is never confused with the old one; this only
    keeps replaced credentials from lingering in memory.
    """
    _load_private_key.cache_clear()
    _load_public_key.cache_clear()


def key_bits(key_or_pem):
    """Return the size in bits of a key, or of the key in a PEM (private or public)."""
    if isinstance(key_or_pem, str):
        label = _PEM_RE.search(key_or_pem or '')
        if label and 'PRIVATE' in label.group(1):
            return load_private_key(key_or_pem).key_size
        return load_public_key(key_or_pem).key_size
    return key_or_pem.key_size


# === Signatures (API §3) === #


def signing_payload(values):
    """Return the bytes that are signed: base64 of the values joined with '-' (API §3.1)."""
    return base64.b64encode('-'.join(str(value) for value in values).encode('utf-8'))


def sign(values, private_key_pem):
    """Sign values in posted order with the store's key: RSA PKCS#1 v1.5, SHA-256 (API §3.1).

    :param list values: The raw (unescaped) values, in the order they will be posted.
    :param str private_key_pem: The store's private key.
    :return: The base64 signature.
    :rtype: str
    """
    key = load_private_key(private_key_pem)
    signature = key.sign(signing_payload(values), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode('ascii')


def verify(values, signature, public_key_pem):
    """Tell whether `signature` signs `values` (in received order) with myPOS's key (API §3.3).

    :param list values: The received values, `Signature` excluded.
    :param str signature: The received base64 signature (strict alphabet and padding).
    :param str public_key_pem: myPOS's certificate or public key.
    :rtype: bool
    :raise InvalidKey: If the certificate cannot be read.
    """
    key = load_public_key(public_key_pem)
    try:
        raw_signature = base64.b64decode(signature or '', validate=True)
    except (binascii.Error, ValueError):
        return False
    if not raw_signature:
        return False
    try:
        key.verify(raw_signature, signing_payload(values), padding.PKCS1v15(), hashes.SHA256())
    except _CryptoInvalidSignature:
        return False
    return True


def sign_fields(fields, private_key_pem):
    """Return `fields` with a `Signature` field appended last (API §2, §3.1).

    :param list fields: (name, value) pairs in posting order.
    :rtype: list
    """
    fields = [(name, str(value)) for name, value in fields]
    return fields + [('Signature', sign([value for _name, value in fields], private_key_pem))]


# === Messages posted by myPOS (API §4.3, §4.4) === #

MAX_FORM_BYTES = 64 * 1024  # Real notifications are well under 2 KB.
MAX_FORM_FIELDS = 100


def parse_form(body):
    """Parse an x-www-form-urlencoded body keeping field order and empty values (API §3.3).

    :param bytes|str body: The raw body (or query string).
    :return: (name, value) pairs, in received order.
    :rtype: list
    :raise MalformedMessage: If the body is too large, not UTF-8, not form-encoded, or repeats a
                             field name.
    """
    if isinstance(body, bytes):
        if len(body) > MAX_FORM_BYTES:
            raise MalformedMessage(f"the body is larger than {MAX_FORM_BYTES} bytes")
        try:
            body = body.decode('utf-8')
        except UnicodeDecodeError:
            raise MalformedMessage("the body is not UTF-8") from None
    if not body:
        raise MalformedMessage("the body is empty")
    try:
        pairs = parse_qsl(
            body,
            keep_blank_values=True,
            strict_parsing=True,
            encoding='utf-8',
            errors='strict',
            max_num_fields=MAX_FORM_FIELDS,
        )
    except (ValueError, UnicodeDecodeError) as error:
        raise MalformedMessage(f"the body is not a valid form ({error})") from None
    return check_pairs(pairs)


def check_pairs(pairs):
    """Return `pairs` after checking that no field name repeats (names compare case-insensitively).

    :raise MalformedMessage: If there are no fields, too many, a name repeats, or a name or a
                             value holds a NUL character (which no myPOS message has and which
                             PostgreSQL cannot compare: it would end in an HTTP 500).
    """
    if not pairs:
        raise MalformedMessage("the message has no fields")
    if len(pairs) > MAX_FORM_FIELDS:
        raise MalformedMessage(f"the message has more than {MAX_FORM_FIELDS} fields")
    seen = set()
    for name, value in pairs:
        if '\x00' in name or '\x00' in str(value):
            raise MalformedMessage("the message holds a NUL character")
        if name.lower() in seen:
            raise MalformedMessage(f"the field {name} appears twice")
        seen.add(name.lower())
    return list(pairs)


def get_field(pairs, name, default=None):
    """Return the value of field `name` in (name, value) pairs, matching case-insensitively.

    Only for answers' details and the emulator: what decides money is read by position, through
    `layouts.read_form` and `layouts.read_answer` (API §3.3a).
    """
    name = name.lower()
    return next((value for key, value in pairs if key.lower() == name), default)


# === Amounts (API §7) === #

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
        raise MalformedMessage(f"the amount {text!r} is not a decimal number")
    try:
        scaled = Decimal(text).scaleb(decimals)
    except InvalidOperation:
        raise MalformedMessage(f"the amount {text!r} is not a decimal number") from None
    if scaled != scaled.to_integral_value():
        raise MalformedMessage(f"the amount {text!r} has more than {decimals} decimals")
    return int(scaled)


# === The purchase (API §4.2) === #

_ARTICLE_UNSAFE_RE = re.compile(r'[\x00-\x1f\x7f<>]+')


# Field names are not signed and myPOS matches them in any order (API §2, §3.3a): a shopper can
# re-label the values of the purchase form their browser posts, and cut them again at any '-'.
# So no text of theirs holds a '-' (an ASCII one: the only character the signature joins with), and
# no value of theirs reads as a URL (re-labelled URL_Notify, myPOS's notification would go to
# them), as an IPC method (the form would read as another call - a refund, a reversal - signed
# with the store's key) or as an account number (N(11): WalletNumber, AccountSettlement).
_HYPHEN = '\u2010'  # Looks like '-' on myPOS's page, is not one for the signature.
_METHOD_LIKE_RE = re.compile(r'ipc[a-z]*', re.IGNORECASE)
_ACCOUNT_LIKE_RE = re.compile(r'[0-9]{10,}')


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
    return bool(_METHOD_LIKE_RE.fullmatch(value) or _ACCOUNT_LIKE_RE.fullmatch(value))


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
    """Return a myPOS OrderID for one payment attempt (API §7), of [A-Za-z0-9_] only.

    `reference` keeps it readable, `instance_tag` (derived from the database) keeps it unique in
    myPOS's shared sandbox store, and `serial` (the transaction id) keeps it unique per attempt. It
    never holds '-', so that no re-cut of a signed message can move its boundary (API §3.3a); a
    reference too long to fit is cut and followed by a digest of the whole, so that references
    differing only at their end (the refunds R-<source>-2, -3 ...) still give distinct OrderIDs.

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
    """Return the optional customer fields of a purchase (API §4.2), leaving out empty ones."""
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
        ('CustomerCountry', const.COUNTRY_ALPHA3.get((country_code or '').upper(), '')),
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
):
    """Return the signed fields of an `IPCPurchase` form, in posting order (API §4.2).

    :param Credentials credentials: The store.
    :param list customer: Fields from :func:`customer_fields`.
    :param list cart: Fields from :func:`build_cart`.
    :return: (name, value) pairs, `Signature` last.
    :rtype: list
    :raise IPCError: If the cart does not sum to the amount.
    """
    cart = list(cart) or build_cart((), amount_minor, decimals, currency, order_id)
    if cart_total(cart, decimals) != amount_minor:
        raise IPCError("the cart does not add up to the amount")
    fields = [
        ('IPCmethod', 'IPCPurchase'),
        ('IPCVersion', const.IPC_VERSION),
        ('IPCLanguage', language),
        ('SID', credentials.sid),
        ('WalletNumber', credentials.wallet_number),
        ('KeyIndex', str(credentials.key_index)),
        ('Source', const.SOURCE),
        ('Amount', format_amount(amount_minor, decimals)),
        ('Currency', currency),
        ('OrderID', order_id),
        ('URL_OK', url_ok),
        ('URL_Cancel', url_cancel),
        ('URL_Notify', url_notify),
        ('CardTokenRequest', '0'),
        ('PaymentParametersRequired', const.PAYMENT_PARAMETERS_REQUIRED),
        ('PaymentMethod', const.PAYMENT_METHOD_CARD),
        *customer,
        *cart,
    ]
    return sign_fields(fields, credentials.private_key)


def build_request(credentials, method, params, output_format='xml'):
    """Return the signed fields of a server-to-server call (API §4.1, §4.5, §4.7, §4.8).

    :param str method: `IPCRefund`, `IPCGetTxnStatus`, ...
    :param list params: The call's own (name, value) pairs.
    :rtype: list
    """
    fields = [
        ('IPCmethod', method),
        ('IPCVersion', const.IPC_VERSION),
        ('IPCLanguage', 'EN'),
        ('SID', credentials.sid),
        ('WalletNumber', credentials.wallet_number),
        ('KeyIndex', str(credentials.key_index)),
        ('Source', const.SOURCE),
        *params,
        ('OutputFormat', output_format),
    ]
    return sign_fields(fields, credentials.private_key)


# === Server-to-server answers (API §2, §3.3) === #


def parse_response(body):
    """Parse an XML or JSON answer into a tree of (key, value) pairs in document order.

    A value is a string or, for a nested object, a list of pairs. JSON numbers keep their literal
    text, so the signed values are exactly what myPOS sent.

    :param bytes|str body: The raw answer.
    :rtype: list
    :raise MalformedMessage: If it is neither.
    """
    if isinstance(body, bytes):
        body = body.decode('utf-8', errors='replace')
    text = body.strip()
    if text.startswith('{'):
        try:
            data = json.loads(
                text,
                object_pairs_hook=list,
                parse_float=str,
                parse_int=str,
                parse_constant=str,
            )
        except ValueError as error:
            raise MalformedMessage(f"the answer is not valid JSON ({error})") from None
        except RecursionError:
            raise MalformedMessage(_TOO_DEEP) from None
        return _json_tree(data)
    if text.startswith('<'):
        try:
            root = ElementTree.fromstring(text.encode('utf-8'))
        except ElementTree.ParseError as error:
            raise MalformedMessage(f"the answer is not valid XML ({error})") from None
        except RecursionError:
            raise MalformedMessage(_TOO_DEEP) from None
        return _xml_tree(root)
    raise MalformedMessage("the answer is neither XML nor JSON")


# myPOS nests one object in an answer (the OrderStatus of IPCGetTxnStatus, API §4.8); deeper
# nesting is refused before any recursion could exhaust the stack.
MAX_ANSWER_DEPTH = 4
_TOO_DEEP = f"the answer is nested deeper than {MAX_ANSWER_DEPTH} levels"


def _json_tree(pairs, depth=1):
    if not isinstance(pairs, list) or not all(isinstance(pair, tuple) for pair in pairs):
        raise MalformedMessage("the JSON answer is not an object")
    if depth > MAX_ANSWER_DEPTH:
        raise MalformedMessage(_TOO_DEEP)
    tree = []
    for key, value in pairs:
        if isinstance(value, list) and all(isinstance(item, tuple) for item in value):
            value = _json_tree(value, depth + 1)
        elif isinstance(value, list):  # A JSON array: flatten its objects in order.
            value = [
                (key, _json_tree(item, depth + 1) if isinstance(item, list) else str(item))
                for item in value
            ]
        elif value is None:
            value = ''
        elif isinstance(value, bool):
            value = 'true' if value else 'false'
        tree.append((key, value))
    return tree


def _xml_tree(element, depth=1):
    if depth > MAX_ANSWER_DEPTH:
        raise MalformedMessage(_TOO_DEEP)
    return [
        (child.tag, _xml_tree(child, depth + 1) if len(child) else (child.text or ''))
        for child in element
    ]


def flatten_values(tree):
    """Return the values of a tree depth-first, nested signatures included (API §3.3)."""
    values = []
    for _key, value in tree:
        if isinstance(value, list):
            values.extend(flatten_values(value))
        else:
            values.append(value)
    return values


def sign_tree(tree, private_key_pem):
    """Return an answer tree with its top-level `Signature` appended (myPOS's side of API §3.3).

    Nested objects must already carry their own signature. Used by the emulator and the tests.
    """
    return list(tree) + [('Signature', sign(flatten_values(tree), private_key_pem))]


def verify_response(tree, public_key_pem):
    """Verify the top-level signature of a parsed answer (API §3.3).

    :raise InvalidSignature: If the top-level `Signature` is missing or does not verify.
    """
    signature = get_field(tree, 'Signature')
    if not signature or isinstance(signature, list):
        raise InvalidSignature("the answer has no Signature")
    values = flatten_values([(k, v) for k, v in tree if k.lower() != 'signature'])
    if not verify(values, signature, public_key_pem):
        raise InvalidSignature("the answer's Signature does not verify with myPOS's certificate")
    return tree


def explain_status(status, status_msg=None):
    """Return a person-readable explanation of a myPOS `Status` code (API §5).

    :param int|str status: The code.
    :param str status_msg: myPOS's own `StatusMsg`, appended when given.
    :rtype: str
    """
    try:
        code = int(status)
    except (TypeError, ValueError):
        return f"myPOS answered with an unknown status {status!r}."
    name = const.STATUS_NAMES.get(code, 'unknown')
    text = const.STATUS_EXPLANATIONS.get(code, "myPOS answered with an undocumented status.")
    detail = f' (myPOS: "{status_msg}")' if status_msg else ''
    return f"Error {code} {name}{detail}: {text}" if code else "Success."


class RemoteError(IPCError):
    """A server-to-server call did not give a usable answer.

    `kind` says why: 'unreachable' (the request provably never left: no connection), 'lost' (the
    connection broke after the request left), 'timeout', 'http' (an HTTP error status),
    'garbage' (not XML nor JSON, or not in the layout of the answer), 'unsigned' (no signature,
    or an error answer myPOS does not sign), 'signature' (the answer's signature does not
    verify), 'status' (a signed answer with a non-zero `Status`).
    """

    def __init__(self, kind, message, status=None, tree=None):
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.tree = tree


def read_answer(body, public_key_pem):
    """Parse and verify a server-to-server answer, and check its `Status` (API §3.3, §5).

    :param bytes body: The raw answer.
    :param str public_key_pem: myPOS's certificate.
    :return: The verified tree (status 0).
    :rtype: list
    :raise RemoteError: If the answer is garbage, unsigned, wrongly signed, or not a success.
    """
    try:
        tree = parse_response(body)
    except MalformedMessage as error:
        raise RemoteError('garbage', f"myPOS's answer cannot be read: {error}") from None
    status = get_field(tree, 'Status')
    signature = get_field(tree, 'Signature')
    if not signature:
        message = explain_status(status, get_field(tree, 'StatusMsg')) if status else ""
        raise RemoteError(
            'unsigned',
            f"myPOS's answer is not signed. {message}".strip(),
            status=status,
            tree=tree,
        )
    try:
        verify_response(tree, public_key_pem)
    except InvalidSignature:
        raise RemoteError(
            'signature',
            "myPOS's answer is signed, but not with the configured myPOS certificate: use the "
            "certificate of the store's current key index (or the configuration pack).",
            status=status,
            tree=tree,
        ) from None
    if str(status) != '0':
        raise RemoteError(
            'status',
            explain_status(status, get_field(tree, 'StatusMsg')),
            status=status,
            tree=tree,
        )
    return tree


def decode_configuration_pack(pack):
    """Decode myPOS's Configuration Pack (API §6.3) into :class:`Credentials`.

    :param str pack: The base64 text from myPOS's dashboard.
    :rtype: Credentials
    :raise MalformedMessage: If it is not the base64 of a JSON object with valid `sid`, `cn`,
                             `pk`, `pc` and `idx`.
    """
    try:
        data = json.loads(base64.b64decode(re.sub(r'\s+', '', pack or ''), validate=True))
    except (binascii.Error, ValueError):
        raise MalformedMessage("the configuration pack is not base64-encoded JSON") from None
    if not isinstance(data, dict):
        raise MalformedMessage("the configuration pack is not a JSON object")
    missing = [key for key in ('sid', 'cn', 'pk', 'pc', 'idx') if not data.get(key)]
    if missing:
        raise MalformedMessage(f"the configuration pack lacks {', '.join(missing)}")
    unknown = set(data) - {'sid', 'cn', 'pk', 'pc', 'idx', 'appid', 'pid'}
    if unknown:
        raise MalformedMessage(
            f"the configuration pack has unknown keys: {', '.join(sorted(unknown))}"
        )
    try:
        key_index = int(data['idx'])
    except (TypeError, ValueError):
        raise MalformedMessage("the configuration pack's key index is not a number") from None
    pems = {}
    for key, name in (('pk', "store private key"), ('pc', "myPOS certificate")):
        try:
            pems[key] = normalize_pem(str(data[key]))
        except InvalidKey as error:
            raise MalformedMessage(
                f"the configuration pack's {name} ({key}) is not valid: {error}"
            ) from None
    credentials = Credentials(
        sid=str(data['sid']),
        wallet_number=str(data['cn']),
        key_index=key_index,
        private_key=pems['pk'],
        certificate=pems['pc'],
    )
    check_credentials(credentials)
    return credentials


def check_credentials(credentials):
    """Validate the form of each credential; the message names the wrong one.

    :raise IPCError: On the first invalid credential.
    """
    if not re.fullmatch(r'\d{1,15}', credentials.sid or ''):
        raise IPCError("the Store ID (SID) must be digits only (at most 15)")
    if not re.fullmatch(r'\d{1,11}', credentials.wallet_number or ''):
        raise IPCError("the wallet number (client number) must be digits only (at most 11)")
    if not 1 <= int(credentials.key_index or 0) <= 99:
        raise IPCError("the key index must be a whole number from 1 to 99")
    try:
        load_private_key(credentials.private_key)
    except InvalidKey as error:
        raise IPCError(f"the store private key is not valid: {error}") from None
    try:
        load_public_key(credentials.certificate)
    except InvalidKey as error:
        raise IPCError(f"the myPOS certificate is not valid: {error}") from None
