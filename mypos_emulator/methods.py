"""The payment methods myPOS's hosted page offers (`PaymentMethod` of IPCPurchase): which the page
shows for a purchase, and what a purchase asking for none of them is refused with.

https://developers.mypos.com/apis/checkout-api/purchase (1 card, 2 iDEAL, 3 both);
https://developers.mypos.com/apis/checkout-api/checkout-getting-started/twint-online-payments
(5 TWINT, CHF only, comma lists such as `1,5`); 4 Satispay and 6 IRIS from myPOS's WooCommerce
plugin 1.4.3. The currency of each non-card method is the emulator's choice where myPOS is silent
(iDEAL, Satispay, IRIS: EUR).
"""

import re

from ._ipc import ipc
from .messages import Reject

CARD = '1'
BOTH = '3'  # Card and iDEAL, as myPOS documents it; the emulator also takes it inside a list.
# Emulator-local until the addon's ipc.const.PAYMENT_METHODS is merged (same values, same names).
PAYMENT_METHODS = {'1': 'card', '2': 'ideal', '4': 'satispay', '5': 'twint', '6': 'iris'}
LABELS = {'1': 'Card', '2': 'iDEAL', '4': 'Satispay', '5': 'TWINT', '6': 'IRIS'}
# The currencies each method takes; card: every currency enabled for the store.
CURRENCIES = {'2': {'EUR'}, '4': {'EUR'}, '5': {'CHF'}, '6': {'EUR'}}
ALL = tuple(PAYMENT_METHODS)
_LIST_RE = re.compile(r'[1-6](,[1-6])*')


def usable(method, currency):
    """Whether the page can offer `method` for a purchase in `currency`."""
    return method == CARD or currency in CURRENCIES.get(method, ())


def offered(text, currency, token_request, store_methods=ALL):
    """The methods the page offers for a purchase's `PaymentMethod` (absent: every method of the
    store), in the order asked for; raise Reject (5) when the value is malformed, names a method
    twice, offers nothing usable in `currency`, or asks to store a card without offering cards.

    With `CardTokenRequest=1` (store a card, no payment) only the card is offered (emulator's
    choice: the other methods have no card to store).
    """
    if text:
        if not _LIST_RE.fullmatch(text):
            raise Reject(ipc.Status.E_INVALID_PARAMS, f"PaymentMethod {text!r} is not valid")
        asked = []
        for value in text.split(','):
            asked += [CARD, '2'] if value == BOTH else [value]
        if len(set(asked)) != len(asked):  # Emulator's choice: a list names each method once.
            raise Reject(
                ipc.Status.E_INVALID_PARAMS, f"PaymentMethod {text!r} names a method twice"
            )
    else:
        asked = list(store_methods)
    if token_request in ('1', '2') and CARD not in asked:
        raise Reject(
            ipc.Status.E_INVALID_PARAMS,
            f"CardTokenRequest={token_request} stores a card but PaymentMethod {text!r} "
            "offers no card",
        )
    if token_request == '1':
        asked = [CARD]
    methods = [m for m in asked if m in store_methods and usable(m, currency)]
    if not methods:
        raise Reject(
            ipc.Status.E_INVALID_PARAMS,
            f"PaymentMethod {text!r} offers no method usable in {currency} "
            "(iDEAL, Satispay, IRIS: EUR; TWINT: CHF)",
        )
    return tuple(methods)
