"""What myPOS sends: the messages it signs about an order, and its signed XML/JSON answers.

https://developers.mypos.com/apis/checkout-api/checkout-getting-started/authentication
"""

import json
import re
from xml.etree import ElementTree

from ._ipc import ipc, testing

# The top-level key spelling of each answer (`IPCMethod` for the two status calls:
# docs/mypos-protocol.md §2).
ANSWER_METHOD_KEY = {'IPCGetTxnStatus': 'IPCMethod', 'IPCGetPaymentStatus': 'IPCMethod'}


def signed(pairs, private_key_pem):
    """Return a tree with a `Signature` over its flattened values appended, as myPOS signs."""
    pairs = [(key, value if isinstance(value, list) else str(value)) for key, value in pairs]
    return testing.sign_tree(pairs, private_key_pem)


def order_message(method, store, amount, currency, order_id, private_key_pem, extra=()):
    """A message myPOS signs about one order, its fields in the documented order.

    https://developers.mypos.com/apis/checkout-api/purchase-notify
    https://developers.mypos.com/apis/checkout-api/purchase-notify-ok
    """
    pairs = [
        ('IPCmethod', method),
        ('SID', store.sid),
        ('Amount', amount),
        ('Currency', currency),
        ('OrderID', order_id),
        *extra,
    ]
    return ipc.sign_fields(pairs, private_key_pem)


def render_xml(tree):
    """Render a tree as myPOS's XML answer, root `<IPC_response>`."""

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


# A JSON integer whose text a reader gets back unchanged: '00', '-0', '+1', ' 1', '٠' are none.
_CANONICAL_INTEGER_RE = re.compile(r'0|-?[1-9][0-9]{0,17}')


def render_json(tree):
    """Render a tree as myPOS's JSON answer; `Status` is a JSON number as in real answers when
    its text is a plain integer, else a JSON string (the api_status_text fault's '00', ' 0')."""

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


def render(tree, output_format):
    """Return (content type, body) of an answer in `xml` (default) or `json`."""
    if (output_format or '').lower() == 'json':
        return 'application/json; charset=utf-8', render_json(tree)
    return 'application/xml; charset=utf-8', render_xml(tree)
