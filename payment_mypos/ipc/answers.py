# Part of payment_mypos. License LGPL-3.
"""Answers of myPOS's server-to-server API: XML or JSON into an ordered tree, verified, with its
`Status` checked.

https://developers.mypos.com/apis/checkout-api/checkout-getting-started/authentication
https://developers.mypos.com/apis/checkout-api/checkout-getting-started/error-messages
"""

import json
import re
from xml.etree import ElementTree

from .const import STATUS_NAMES, Status
from .errors import Failure, InvalidSignature, MalformedMessage, RemoteError, shown_status
from .forms import get_field
from .signing import verify


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
            raise _unreadable(f"the answer is not valid JSON ({error})", error) from None
        except RecursionError:
            raise _too_deep() from None
        return _json_tree(data)
    if text.startswith('<'):
        try:
            root = ElementTree.fromstring(text.encode('utf-8'))
        except ElementTree.ParseError as error:
            raise _unreadable(f"the answer is not valid XML ({error})", error) from None
        except RecursionError:
            raise _too_deep() from None
        return _xml_tree(root)
    raise _unreadable("the answer is neither XML nor JSON", repr(text[:20]))


# myPOS nests one object in an answer (the OrderStatus of IPCGetTxnStatus,
# docs/mypos-protocol.md §4.8); deeper nesting is refused before any recursion could exhaust the
# stack.
MAX_ANSWER_DEPTH = 4
_TOO_DEEP = f"the answer is nested deeper than {MAX_ANSWER_DEPTH} levels"


def _unreadable(message, detail):
    return MalformedMessage(message, code='answer_unreadable', detail=str(detail))


def _too_deep():
    return MalformedMessage(_TOO_DEEP, code='answer_too_deep', depth=MAX_ANSWER_DEPTH)


def _json_tree(pairs, depth=1):
    if not isinstance(pairs, list) or not all(isinstance(pair, tuple) for pair in pairs):
        raise _unreadable("the JSON answer is not an object", 'JSON')
    if depth > MAX_ANSWER_DEPTH:
        raise _too_deep()
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
        raise _too_deep()
    return [
        (child.tag, _xml_tree(child, depth + 1) if len(child) else (child.text or ''))
        for child in element
    ]


def flatten_values(tree):
    """Return the values of a tree depth-first, nested signatures included (they are signed)."""
    values = []
    for _key, value in tree:
        if isinstance(value, list):
            values.extend(flatten_values(value))
        else:
            values.append(value)
    return values


def verify_response(tree, public_key_pem):
    """Verify the top-level signature of a parsed answer.

    :raise InvalidSignature: If the top-level `Signature` is missing or does not verify.
    """
    signature = get_field(tree, 'Signature')
    if not signature or isinstance(signature, list):
        raise InvalidSignature("the answer has no Signature", code='signature_missing')
    values = flatten_values([(k, v) for k, v in tree if k.lower() != 'signature'])
    if not verify(values, signature, public_key_pem):
        raise InvalidSignature(
            "the answer's Signature does not verify with myPOS's certificate",
            code='signature_invalid',
        )
    return tree


def status_text(status, status_msg=None):
    """Return the code and official name of a myPOS `Status`, in English for the log.

    :param int|str status: The code, as myPOS writes one (see :meth:`.const.Status.number`).
    :param str status_msg: myPOS's own `StatusMsg`, appended when given.
    :rtype: str
    """
    code = Status.number(status)
    if code is None:
        return f"myPOS answered with an unknown status {shown_status(status)}."
    name = STATUS_NAMES.get(code, 'unknown')
    detail = f' (myPOS: "{status_msg}")' if status_msg else ''
    return f"Error {code} {name}{detail}" if code else "Success."


_REFUSAL_RE = re.compile(r'[0-9]+')  # ASCII digits only (not `str.isdigit`).


def status_failure(status):
    """Tell what a signed answer's `Status` says: None for a success, exactly '0';
    `Failure.STATUS` for a refusal, ASCII digits that are not all zeros; else `Failure.UNCLEAR`
    (zero written otherwise, spaces, a sign, a non-ASCII digit, nothing, a nested object).

    :param str|list|None status: The `Status` as received.
    :rtype: Failure|None
    """
    if status == '0':
        return None
    if isinstance(status, str) and _REFUSAL_RE.fullmatch(status) and status.strip('0'):
        return Failure.STATUS
    return Failure.UNCLEAR


def check_answer(body, public_key_pem):
    """Parse and verify a server-to-server answer, and check its `Status`.

    Only a `Status` of exactly '0' is a success and only ASCII digits not all zeros a refusal;
    any other `Status` of a signed answer is unclear, so myPOS may have acted on the call.

    :param bytes body: The raw answer.
    :param str public_key_pem: myPOS's certificate.
    :return: The verified tree (status 0).
    :rtype: list
    :raise RemoteError: If the answer is garbage, unsigned, wrongly signed, or not a success.
    """
    try:
        tree = parse_response(body)
    except MalformedMessage as error:
        raise RemoteError(
            Failure.GARBAGE, f"myPOS's answer cannot be read: {error}", reason=error
        ) from None
    status = get_field(tree, 'Status')
    signature = get_field(tree, 'Signature')
    if not signature:
        message = status_text(status, get_field(tree, 'StatusMsg')) if status else ""
        raise RemoteError(
            Failure.UNSIGNED,
            f"myPOS's answer is not signed. {message}".strip(),
            status=status,
            tree=tree,
        )
    try:
        verify_response(tree, public_key_pem)
    except InvalidSignature:
        raise RemoteError(
            Failure.SIGNATURE,
            "myPOS's answer is signed, but not with the configured myPOS certificate: use the "
            "certificate of the store's current key index (or the configuration pack).",
            status=status,
            tree=tree,
        ) from None
    failure = status_failure(status)
    if failure is Failure.STATUS:
        raise RemoteError(
            Failure.STATUS,
            status_text(status, get_field(tree, 'StatusMsg')),
            status=status,
            tree=tree,
        )
    if failure is Failure.UNCLEAR:
        raise RemoteError(
            Failure.UNCLEAR,
            f"myPOS's answer is signed, but its Status {shown_status(status)} is neither 0 nor an "
            "error code: myPOS may have acted on the call.",
            status=status,
            tree=tree,
        )
    return tree
