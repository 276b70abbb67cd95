# Part of payment_mypos. License LGPL-3.
"""Forms as myPOS posts them: ordered pairs, blanks kept, names never repeated.

The signature covers the values in posted order, empty ones included:
https://developers.mypos.com/apis/checkout-api/checkout-getting-started/authentication
"""

from urllib.parse import parse_qsl

from .errors import MalformedMessage

MAX_FORM_BYTES = 64 * 1024  # Real notifications are well under 2 KB.
MAX_FORM_FIELDS = 100


def parse_form(body):
    """Parse an x-www-form-urlencoded body keeping field order and empty values.

    :param bytes|str body: The raw body (or query string).
    :return: (name, value) pairs, in received order.
    :rtype: list
    :raise MalformedMessage: If the body is too large, not UTF-8, not form-encoded, or repeats a
                             field name.
    """
    if isinstance(body, bytes):
        if len(body) > MAX_FORM_BYTES:
            raise MalformedMessage(
                f"the body is larger than {MAX_FORM_BYTES} bytes",
                code='body_too_large',
                limit=MAX_FORM_BYTES,
            )
        try:
            body = body.decode('utf-8')
        except UnicodeDecodeError:
            raise MalformedMessage("the body is not UTF-8", code='body_not_utf8') from None
    if not body:
        raise MalformedMessage("the body is empty", code='body_empty')
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
        raise MalformedMessage(
            f"the body is not a valid form ({error})", code='body_not_form', detail=str(error)
        ) from None
    return check_pairs(pairs)


def check_pairs(pairs):
    """Return `pairs` after checking that no field name repeats (names compare case-insensitively).

    :raise MalformedMessage: If there are no fields, too many, a name repeats, or a name or a
                             value holds a NUL character (which no myPOS message has and which
                             PostgreSQL cannot compare: it would end in an HTTP 500).
    """
    if not pairs:
        raise MalformedMessage("the message has no fields", code='body_empty')
    if len(pairs) > MAX_FORM_FIELDS:
        raise MalformedMessage(
            f"the message has more than {MAX_FORM_FIELDS} fields",
            code='too_many_fields',
            limit=MAX_FORM_FIELDS,
        )
    seen = set()
    for name, value in pairs:
        if '\x00' in name or '\x00' in str(value):
            raise MalformedMessage("the message holds a NUL character", code='nul')
        if name.lower() in seen:
            raise MalformedMessage(
                f"the field {name} appears twice", code='field_repeated', name=name
            )
        seen.add(name.lower())
    return list(pairs)


def get_field(pairs, name, default=None):
    """Return the value of field `name` in (name, value) pairs, matching case-insensitively.

    Only for answers' details and the emulator: what decides money is read by position, through
    `layouts.read_form` and `layouts.read_answer` (docs/mypos-protocol.md §3.3a).
    """
    name = name.lower()
    return next((value for key, value in pairs if key.lower() == name), default)
