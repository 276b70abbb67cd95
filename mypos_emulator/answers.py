"""What myPOS sends: the messages it signs about an order, and its signed XML/JSON answers.

https://developers.mypos.com/apis/checkout-api/checkout-getting-started/authentication
"""

from ._ipc import fake_rules, ipc, testing

ANSWER_METHOD_KEY = fake_rules.ANSWER_METHOD_KEY  # `IPCMethod` for the two status calls.


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


def render(tree, output_format):
    """Return (content type, body) of an answer in `xml` (default) or `json`."""
    json_format = (output_format or '').lower() == 'json'
    content_type = 'application/json' if json_format else 'application/xml'
    return f'{content_type}; charset=utf-8', fake_rules.render_answer(tree, output_format)
