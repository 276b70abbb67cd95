# Part of payment_mypos. License LGPL-3.
"""What each value of a myPOS message means, read by position rather than by the names posted.

myPOS signs the values of a message joined with '-', not their names nor their boundaries
(docs/mypos-protocol.md §3.3a): whoever holds a genuine signature can re-cut its values at their
'-' and re-name the pieces. So a message is read here against a strict layout: the values that
decide anything sit at their documented places and have formats without '-', and the result is a
typed :class:`Message`, never a name -> value mapping.

The layouts come from https://developers.mypos.com/apis/checkout-api/purchase-notify,
https://developers.mypos.com/apis/checkout-api/purchase-notify-ok,
https://developers.mypos.com/apis/checkout-api/refund,
https://developers.mypos.com/apis/checkout-api/pre-authorization-notify,
https://developers.mypos.com/apis/checkout-api/pre-auth-completion,
https://developers.mypos.com/apis/checkout-api/pre-auth-cancellation,
https://developers.mypos.com/apis/checkout-api/pre-auth-status and docs/mypos-protocol.md §4.8,
§4.11.
"""

import datetime
import re
from dataclasses import dataclass, field

from . import const
from .errors import InvalidSignature, MalformedMessage
from .forms import check_pairs, get_field
from .signing import verify

# Formats of the values that decide anything
# (https://developers.mypos.com/apis/checkout-api/purchase and the pages of the messages above),
# ASCII only and without '-', so that no re-cut of the signed values can move a boundary between
# them.
_FORMATS = {
    'SID': re.compile(r'[0-9]{15}'),
    'Amount': re.compile(r'[0-9]{1,15}(?:\.[0-9]{1,6})?'),
    'Currency': re.compile(r'[A-Z]{3}'),
    'OrderID': re.compile(r'[A-Za-z0-9_]{1,80}'),
    'IPC_Trnref': re.compile(r'[A-Za-z0-9_]{1,64}'),
    'Status': re.compile(r'[0-9]{1,3}'),
    # https://developers.mypos.com/apis/checkout-api/pre-authorization-notify: N(6); the date and
    # time is the one value with '-', at fixed places, so no re-cut moves a boundary past it; the
    # expiry is YYMMDD.
    'RequestSTAN': re.compile(r'[0-9]{1,6}'),
    'RequestDateTime': re.compile(r'[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}'),
    'PreAuthExpDate': re.compile(r'[0-9]{6}'),
}
# The status answer's expiry is DD/MM/YYYY
# (https://developers.mypos.com/apis/checkout-api/pre-auth-status).
_STATUS_EXPIRY_RE = re.compile(r'([0-9]{2})/([0-9]{2})/([0-9]{4})')
_PREAUTH_STATUS_RE = re.compile(r'[0-9]')
# OrderIDs issued before version 18.0.1.1.0 may hold '-' (never at an end, possibly twice in a
# row); such a reading is only accepted when it is the only one naming a transaction (see
# `Message.order_id_readings`).
_LEGACY_ORDER_ID_RE = re.compile(r'[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?')
_READING_RE = re.compile(r'[A-Za-z0-9_-]+')
# The saved card of a notification (https://developers.mypos.com/apis/checkout-api/purchase-notify).
# `CardToken` is opaque, at most 50 characters; printable ASCII without spaces is assumed
# (docs/mypos-protocol.md §9). `PAN` is the last 4 digits (a masked number is read by its last 4);
# `ExpDate` is YYMM; `CardType` 1 to 8.
_CARD_TOKEN_RE = re.compile(r'[\x21-\x7e]{1,50}')
_PAN_RE = re.compile(r'[0-9*Xx ]{0,15}([0-9]{4})')
_EXP_DATE_RE = re.compile(r'([0-9]{2})(0[1-9]|1[0-2])')


@dataclass(frozen=True)
class Message:
    """A verified message of myPOS, each decisive value taken from its documented place.

    `extras` are the (name, value) pairs after the layout's head, for the log and for details
    that move no money (the card brand); `nested` is the raw `OrderStatus` of `IPCGetTxnStatus`
    (it carries its own signature, read with :func:`read_form`); `order_id_readings` lists every
    OrderID that another cut of the same signed values would name, this one first. `expiry` is the
    end of a pre-authorisation (its notify's or its status answer's `PreAuthExpDate`) and
    `preauth_status` the status answer's `IPCPreAuthStatus` (a :class:`.const.PreAuthStatus`).
    """

    method: str
    sid: str = ''
    amount: str = ''
    currency: str = ''
    order_id: str = ''
    trnref: str = ''
    status: str = ''
    status_msg: str = ''
    extras: tuple = ()
    nested: tuple = ()
    order_id_readings: tuple = ()
    expiry: datetime.date | None = None  # A pre-authorisation's end: notify or status answer.
    preauth_status: int | None = None  # The status answer's `IPCPreAuthStatus`.
    pairs: tuple = field(default=(), compare=False, repr=False)

    def extra(self, name, default=None):
        """Return the value of an extra field (case-insensitive name), for details only."""
        return get_field(self.extras, name, default)


def is_card_token(value):
    """Tell whether `value` can be a `CardToken` of myPOS (opaque, printable, at most 50)."""
    return isinstance(value, str) and bool(_CARD_TOKEN_RE.fullmatch(value))


@dataclass(frozen=True)
class Card:
    """A card myPOS saved: its token, and what the shopper recognises it by."""

    token: str
    last4: str
    expiry: str  # MM/YY
    card_type: str


def read_card(message):
    """Return the saved card of a verified notification, or None if it has no token.

    The values are the notification's extras, which only myPOS's server holds the signature of
    (the browser's OK has another method, refused where notifications go): read by name.

    :param Message message: The verified `IPCPurchaseNotify`.
    :rtype: Card
    :raise MalformedMessage: If the token, the last digits or the expiry date are ill-formed.
    """
    token = message.extra('CardToken')
    if not token:
        return None
    if not is_card_token(token):
        raise MalformedMessage(
            "the CardToken is not in myPOS's format", code='value_format', name='CardToken'
        )
    pan = _PAN_RE.fullmatch(message.extra('PAN') or '')
    expiry = _EXP_DATE_RE.fullmatch(message.extra('ExpDate') or '')
    for name, match in (('PAN', pan), ('ExpDate', expiry)):
        if not match:
            raise MalformedMessage(
                f"the {name} of the saved card is not in myPOS's format",
                code='value_format',
                name=name,
            )
    card_type = message.extra('CardType') or ''
    return Card(
        token=token,
        last4=pan.group(1),
        expiry=f'{expiry.group(2)}/{expiry.group(1)}',
        card_type=card_type if re.fullmatch(r'[1-8]', card_type) else '',
    )


def read_payment_method(message):
    """Return the `PaymentMethod` a verified notification (or the nested `OrderStatus` of
    `IPCGetTxnStatus`) carries: the one method the shopper used, or None when absent or empty.

    Read by name among the extras, as :func:`read_card` (only myPOS's server holds the signature);
    one value of `const.PAYMENT_METHODS`, never a list: docs/mypos-protocol.md §4.13 (a) and
    https://developers.mypos.com/apis/checkout-api/purchase-notify. Never from the browser's
    `IPCPurchaseOK`: the shopper holds its signature and may re-label its `CardType` (a digit).

    :param Message message: The verified message.
    :rtype: str|None
    :raise MalformedMessage: If it is anything else ('1,5', '3', ' 1').
    """
    value = message.extra('PaymentMethod')
    if value is None or value == '':
        return None
    if not isinstance(value, str) or value not in const.PAYMENT_METHODS:
        raise MalformedMessage(
            f"the PaymentMethod {_shown(value)} is not one of myPOS's methods",
            code='value_format',
            name='PaymentMethod',
        )
    return value


def _canonical(name):
    return name.lower()


def _check_value(name, value, legacy_order_id=False):
    """Return `value` if it has the format of field `name`.

    :raise MalformedMessage: If it has not.
    """
    pattern = _FORMATS[name]
    if name == 'OrderID' and legacy_order_id and isinstance(value, str) and '-' in value:
        pattern = _LEGACY_ORDER_ID_RE
        if len(value) > const.ORDER_ID_MAX_LENGTH:
            raise MalformedMessage(
                f"the {name} is longer than 80 characters", code='value_format', name=name
            )
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise MalformedMessage(
            f"the {name} {_shown(value)} is not in myPOS's format",
            code='value_format',
            name=name,
        )
    return value


def _date(name, year, month, day):
    """Return the date, or refuse a value of field `name` that is not a real one."""
    try:
        return datetime.date(int(year), int(month), int(day))
    except ValueError:
        raise MalformedMessage(
            f"the {name} is not a real date", code='value_format', name=name
        ) from None


def read_notify_expiry(value):
    """Return the date of a notify's `PreAuthExpDate` (YYMMDD, of this century).

    :raise MalformedMessage: If it is not six digits or not a real date.
    """
    _check_value('PreAuthExpDate', value)
    return _date('PreAuthExpDate', 2000 + int(value[:2]), value[2:4], value[4:])


def read_status_expiry(value):
    """Return the date of a status answer's `PreAuthExpDate` (DD/MM/YYYY); None when empty.

    :raise MalformedMessage: If it is neither empty nor a real date in that format.
    """
    if value is None or value == '':
        return None
    match = _STATUS_EXPIRY_RE.fullmatch(value) if isinstance(value, str) else None
    if not match:
        raise MalformedMessage(
            f"the PreAuthExpDate {_shown(value)} is not in myPOS's format (DD/MM/YYYY)",
            code='value_format',
            name='PreAuthExpDate',
        )
    day, month, year = match.groups()
    return _date('PreAuthExpDate', year, month, day)


def _read_preauth_status(found, status):
    """Return the `IPCPreAuthStatus` of a status answer (required when `Status` is 0)."""
    value = found.get('ipcpreauthstatus')
    if value is None and status != '0':
        return None
    if not isinstance(value, str) or not _PREAUTH_STATUS_RE.fullmatch(value):
        raise MalformedMessage(
            f"the IPCPreAuthStatus {_shown(value)} is not in myPOS's format",
            code='value_format',
            name='IPCPreAuthStatus',
        )
    try:
        return int(const.PreAuthStatus(int(value)))
    except ValueError:
        raise MalformedMessage(
            f"the IPCPreAuthStatus {value} is not one of myPOS's",
            code='value_format',
            name='IPCPreAuthStatus',
        ) from None


def _shown(value):
    """A bounded, printable rendering of an untrusted value for an error message."""
    if isinstance(value, list):
        return "(a nested object)"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "...'"


def _check_head(pairs, layout, reserved):
    """Check that `pairs` start with the names of `layout`, in order, and that no reserved name
    appears after them (names compare case-insensitively, as myPOS's do: docs/mypos-protocol.md §2).

    :raise MalformedMessage: If a name is missing, misplaced or repeated.
    """
    names = [_canonical(name) for name, _value in pairs]
    for index, expected in enumerate(layout):
        if index >= len(names) or names[index] != _canonical(expected):
            found = pairs[index][0] if index < len(names) else "nothing"
            raise MalformedMessage(
                f"field {index + 1} must be {expected}, not {_shown(found)}",
                code='field_misplaced',
                position=index + 1,
                name=expected,
            )
    reserved = {_canonical(name) for name in reserved}
    for name, _value in pairs[len(layout) :]:
        if _canonical(name) in reserved:
            raise MalformedMessage(
                f"the field {_shown(name)} is out of its place",
                code='field_out_of_place',
                name=_shown(name),
            )


def _order_id_readings(values):
    """Return every OrderID that a re-cut of `values` (from the OrderID's place on) could name."""
    readings, pieces = [], '-'.join(values).split('-')
    for end in range(1, len(pieces) + 1):
        reading = '-'.join(pieces[:end])
        if len(reading) > const.ORDER_ID_MAX_LENGTH or not _READING_RE.fullmatch(reading):
            break
        readings.append(reading)
    return tuple(readings)


@dataclass(frozen=True)
class SignedForm:
    """A form whose layout and formats were checked, but whose signature was not yet verified.

    Only its OrderID readings may be used before :meth:`verify` (to find the transaction whose
    provider holds the certificate); everything else comes from the verified :class:`Message`.
    """

    _message: Message
    _values: tuple
    _signature: str

    @property
    def method(self):
        return self._message.method

    @property
    def order_id(self):
        return self._message.order_id

    @property
    def order_id_readings(self):
        return self._message.order_id_readings

    def verify(self, certificate_pem):
        """Return the message once its signature verifies with myPOS's certificate.

        :rtype: Message
        :raise InvalidSignature: If it does not.
        :raise InvalidKey: If the certificate cannot be read.
        """
        if not verify(self._values, self._signature, certificate_pem):
            raise InvalidSignature(
                "the Signature does not verify with myPOS's certificate", code='signature_invalid'
            )
        return self._message


def read_form(pairs, methods=None):
    """Read a form posted by myPOS against the layout of its method.

    Everything is checked before anything is looked up: `IPCmethod` first, with a method of
    `methods`; then `SID`, `Amount`, `Currency`, `OrderID` (and `IPC_Trnref` for a payment; and
    `RequestSTAN`, `RequestDateTime`, `PreAuthExpDate` for a pre-authorisation's notify), each in
    its format; `Signature` last; none of these names anywhere else.

    :param list pairs: (name, value) pairs in received order (see :func:`.forms.parse_form`).
    :param tuple methods: The methods accepted here; all of `const.FORM_LAYOUTS` by default.
    :rtype: SignedForm
    :raise MalformedMessage: If the message does not have the layout of its method.
    :raise InvalidSignature: If it has no signature.
    """
    pairs = check_pairs(list(pairs))
    if any(isinstance(value, list) for _name, value in pairs):
        raise MalformedMessage("the message holds a nested object", code='nested')
    name, method = pairs[0]
    if _canonical(name) != 'ipcmethod':
        raise MalformedMessage(
            f"field 1 must be IPCmethod, not {_shown(name)}",
            code='field_misplaced',
            position=1,
            name='IPCmethod',
        )
    layout = const.FORM_LAYOUTS.get(method)
    if layout is None or (methods is not None and method not in methods):
        shown = method if re.fullmatch(r'[A-Za-z]{1,40}', method or '') else _shown(method)
        raise MalformedMessage(
            f"{shown} is not accepted on this URL", code='method_refused', method=shown
        )
    if _canonical(pairs[-1][0]) != 'signature' or not pairs[-1][1]:
        raise InvalidSignature(
            "the message has no Signature as its last field", code='signature_missing'
        )
    body = pairs[:-1]
    unread = {_canonical(name) for name in const.FORM_EXTRA_NAMES.get(method, ())}
    reserved = [name for name in const.FORM_RESERVED_NAMES if _canonical(name) not in unread]
    _check_head(body, layout, reserved)
    head = dict(zip(layout, (value for _name, value in body), strict=False))
    for name in layout[1:]:
        _check_value(name, head[name], legacy_order_id=True)
    if 'RequestDateTime' in head:
        try:
            datetime.datetime.strptime(head['RequestDateTime'], '%Y-%m-%d %H:%M:%S')
        except ValueError:
            raise MalformedMessage(
                "the RequestDateTime is not a real date and time",
                code='value_format',
                name='RequestDateTime',
            ) from None
    expiry = read_notify_expiry(head['PreAuthExpDate']) if 'PreAuthExpDate' in head else None
    values = tuple(value for _name, value in body)
    message = Message(
        method=method,
        sid=head['SID'],
        amount=head['Amount'],
        currency=head['Currency'],
        order_id=head['OrderID'],
        trnref=head.get('IPC_Trnref', ''),
        extras=tuple(body[len(layout) :]),
        order_id_readings=_order_id_readings(values[4:]),
        expiry=expiry,
        pairs=tuple(body),
    )
    return SignedForm(message, values, pairs[-1][1])


def read_answer(tree, method):
    """Read a verified, status-0 answer of myPOS against the layout of `method`.

    :param list tree: The answer, as returned by :func:`.answers.check_answer`.
    :param str method: The method that was called.
    :rtype: Message
    :raise MalformedMessage: If a field is missing, misplaced, repeated or ill-formed.
    """
    layout = const.ANSWER_LAYOUTS[method]
    body = [(name, value) for name, value in tree if _canonical(name) != 'signature']
    _check_head(body, layout, ())
    if body[0][1] != method:
        raise MalformedMessage(
            f"the answer is for {_shown(body[0][1])}, not {method}",
            code='answer_method',
            method=method,
        )
    found = {}
    for name, value in check_pairs(body):
        key = _canonical(name)
        found[key] = value
        if isinstance(value, list) and key != 'orderstatus':
            raise MalformedMessage(f"the field {_shown(name)} holds a nested object", code='nested')
    head = dict(zip(layout, (value for _name, value in body), strict=False))
    for name in layout[1:]:
        _check_value(name, head[name], legacy_order_id=True)
    status = _check_value('Status', found.get('status'))
    nested = found.get('orderstatus') or ()
    expiry = preauth_status = None
    if method == const.PREAUTH_STATUS_METHOD:
        preauth_status = _read_preauth_status(found, status)
        expiry = read_status_expiry(found.get('preauthexpdate'))
    return Message(
        method=method,
        amount=head.get('Amount', ''),
        currency=head.get('Currency', ''),
        order_id=head.get('OrderID', ''),
        trnref=head.get('IPC_Trnref', ''),
        status=status,
        status_msg=found.get('statusmsg') if isinstance(found.get('statusmsg'), str) else '',
        extras=tuple(body[len(layout) :]),
        nested=tuple(nested) if isinstance(nested, list) else (),
        expiry=expiry,
        preauth_status=preauth_status,
        pairs=tuple(tree),
    )
