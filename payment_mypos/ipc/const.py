# Part of payment_mypos. License LGPL-3.
"""Constants of the myPOS Checkout (IPC) protocol, each with the page of myPOS's documentation
it comes from (https://developers.mypos.com/apis/checkout-api/...), or the section of the
repository's docs/mypos-protocol.md where no public page states it. Data only."""

import enum
import re

# Seconds a server-to-server call may wait for myPOS, in all (connect, then read).
REQUEST_TIMEOUT = 10
# Seconds of REQUEST_TIMEOUT the TCP connection may take.
CONNECT_TIMEOUT = 3
# The largest answer read from myPOS; real ones are a few KB.
MAX_ANSWER_BYTES = 1024 * 1024

# One URL per environment serves the hosted page and every server-to-server call.
# https://developers.mypos.com/online-payments/initial-setup-and-testing/testing-in-sandbox/test-scenarios
PRODUCTION_URL = 'https://www.mypos.com/vmp/checkout'
SANDBOX_URL = 'https://www.mypos.com/vmp/checkout-test'

# The version every official integration posts today
# (https://developers.mypos.com/apis/checkout-api/purchase).
IPC_VERSION = '1.4'

# myPOS's public sandbox store (its key and certificate are files of the addon),
# docs/mypos-protocol.md §6.1.
SANDBOX_SID = '000000000000010'
SANDBOX_WALLET_NUMBER = '61938166610'
SANDBOX_KEY_INDEX = 1

# OrderID is at most 80 characters (https://developers.mypos.com/apis/checkout-api/purchase).
ORDER_ID_MAX_LENGTH = 80

# `IPCLanguage`: documented checkout page languages; anything else falls back to English.
# https://developers.mypos.com/apis/checkout-api/purchase
CHECKOUT_LANGUAGES = {'EN', 'FR', 'IT', 'DE', 'SV', 'PT', 'NL', 'EL', 'BG', 'ES'}

# Currencies the official WooCommerce plugin offers (HRK dropped: obsolete),
# docs/mypos-protocol.md §7.
SUPPORTED_CURRENCIES = {
    'BGN',
    'CHF',
    'CZK',
    'DKK',
    'EUR',
    'GBP',
    'HUF',
    'ISK',
    'JPY',
    'NOK',
    'PLN',
    'RON',
    'SEK',
    'USD',
}

# `PaymentMethod`: the methods myPOS's page shows, by value, with the method's name (also Odoo's
# payment method code). 1 card and 2 iDEAL: https://developers.mypos.com/apis/checkout-api/purchase;
# 5 TWINT (and the comma list '1,5'):
# https://developers.mypos.com/apis/checkout-api/checkout-getting-started/twint-online-payments;
# 4 Satispay and 6 IRIS: myPOS's WooCommerce plugin 1.4.3 constants. '3' (card and iDEAL) is
# documented but never sent: a comma list says the same.
PAYMENT_METHODS = {'1': 'card', '2': 'ideal', '4': 'satispay', '5': 'twint', '6': 'iris'}
PAYMENT_METHOD_CARD = '1'

# `PaymentParametersRequired`: 2 = customer details optional and prefilled
# (https://developers.mypos.com/apis/checkout-api/purchase).
PAYMENT_PARAMETERS_REQUIRED = '2'

# The messages myPOS posts to us, by what they mean for the transaction:
# https://developers.mypos.com/apis/checkout-api/purchase-notify,
# https://developers.mypos.com/apis/checkout-api/purchase-notify-ok.
NOTIFY_METHODS = {
    'done': 'IPCPurchaseNotify',
    'cancel': 'IPCPurchaseRollback',
}
RETURN_METHODS = {
    'ok': 'IPCPurchaseOK',
    'cancel': 'IPCPurchaseCancel',
}
REFUND_METHOD = 'IPCRefund'
TXN_STATUS_METHOD = 'IPCGetTxnStatus'
# The charge of a saved card, server to server; its signed answer is the outcome
# (docs/mypos-protocol.md §4.11).
TOKEN_PURCHASE_METHOD = 'IPCIAPurchase'

# Pre-authorisation (manual capture): the hosted form, what myPOS posts back, and the three
# server-to-server calls on the same OrderID. The form and its notify:
# https://developers.mypos.com/apis/checkout-api/pre-authorization,
# https://developers.mypos.com/apis/checkout-api/pre-authorization-notify,
# https://developers.mypos.com/apis/checkout-api/pre-authorization-cancel; the calls:
# https://developers.mypos.com/apis/checkout-api/pre-auth-completion,
# https://developers.mypos.com/apis/checkout-api/pre-auth-cancellation,
# https://developers.mypos.com/apis/checkout-api/pre-auth-status.
PREAUTH_METHOD = 'IPCPreAuthorization'
PREAUTH_NOTIFY_METHOD = 'IPCPreAuthorizationNotify'
PREAUTH_RETURN_METHODS = {
    'ok': 'IPCPreAuthorizationOK',
    'cancel': 'IPCPreAuthorizationCancel',
}
PREAUTH_COMPLETION_METHOD = 'IPCPreAuthCompletion'
PREAUTH_CANCELLATION_METHOD = 'IPCPreAuthCancellation'
PREAUTH_STATUS_METHOD = 'IPCPreAuthStatus'
# The messages of each hosted page (notifications and browser returns): never applied to a
# transaction of the other kind.
PURCHASE_FORM_METHODS = frozenset({*NOTIFY_METHODS.values(), *RETURN_METHODS.values()})
PREAUTH_FORM_METHODS = frozenset({PREAUTH_NOTIFY_METHOD, *PREAUTH_RETURN_METHODS.values()})
PREAUTH_CALL_METHODS = frozenset(
    {PREAUTH_COMPLETION_METHOD, PREAUTH_CANCELLATION_METHOD, PREAUTH_STATUS_METHOD}
)


class PreAuthStatus(enum.IntEnum):
    """The `IPCPreAuthStatus` of a pre-authorisation (no 2 is defined anywhere).

    https://developers.mypos.com/apis/checkout-api/pre-auth-status
    """

    PENDING = 1  # Funds locked, not captured.
    CAPTURED = 3  # Completed.
    DECLINED = 4  # Never authorised.
    REVERSED = 5  # Expired, or reversed by myPOS.
    CANCELLED = 6  # Released by the merchant.


# The calls whose answer nests a signed message are asked for in JSON. myPOS's PHP SDK asks every
# call in JSON and cannot verify a nested XML answer; the one real answer with a nested
# `OrderStatus` is JSON and verifies with myPOS's signature rule
# (https://developers.mypos.com/apis/checkout-api/checkout-getting-started/authentication). The
# others keep XML. Evidence: docs/mypos-protocol.md §2, §4.8.
# The pre-authorisation calls too: the cancellation page's XML example is malformed and no real XML
# answer of them was ever seen, while myPOS's PHP SDK asks them in JSON.
JSON_ANSWER_METHODS = frozenset({TXN_STATUS_METHOD, *PREAUTH_CALL_METHODS})

# `CardTokenRequest` (https://developers.mypos.com/apis/checkout-api/purchase): no token; store the
# card only (no payment: no `Amount` and no cart rows, as myPOS's PHP SDK posts it); pay and store
# the card.
CARD_TOKEN_NONE = '0'
CARD_TOKEN_STORE = '1'
CARD_TOKEN_PAY_AND_STORE = '2'

# The head of each form myPOS signs, in order
# (https://developers.mypos.com/apis/checkout-api/purchase-notify,
# https://developers.mypos.com/apis/checkout-api/purchase-notify-ok). The values that decide
# anything are read from these places only (docs/mypos-protocol.md §3.3a); extra fields may follow
# (myPOS adds fields over time).
_FORM_HEAD = ('IPCmethod', 'SID', 'Amount', 'Currency', 'OrderID')
FORM_LAYOUTS = {
    'IPCPurchaseNotify': (*_FORM_HEAD, 'IPC_Trnref'),
    'IPCPurchaseOK': (*_FORM_HEAD, 'IPC_Trnref'),
    'IPCPurchaseRollback': _FORM_HEAD,
    'IPCPurchaseCancel': _FORM_HEAD,
    # The nested OrderStatus of a refund's status (docs/mypos-protocol.md §4.8, §9: an assumption).
    'IPCRefund': (*_FORM_HEAD, 'IPC_Trnref'),
    # The nested OrderStatus of a saved card's charge (docs/mypos-protocol.md §4.8, §9: an
    # assumption, like the refund's: the form of the call's answer, with the head of every form).
    'IPCIAPurchase': (*_FORM_HEAD, 'IPC_Trnref'),
    # https://developers.mypos.com/apis/checkout-api/pre-authorization-notify: the fields in the
    # order of its example; `BillingDescriptor` follows, among the extras.
    PREAUTH_NOTIFY_METHOD: (
        *_FORM_HEAD,
        'IPC_Trnref',
        'RequestSTAN',
        'RequestDateTime',
        'PreAuthExpDate',
    ),
    # "The same parameters" as the notify (same page): only the head is read, the notify's other
    # fields may follow (see FORM_EXTRA_NAMES).
    PREAUTH_RETURN_METHODS['ok']: (*_FORM_HEAD, 'IPC_Trnref'),
    # https://developers.mypos.com/apis/checkout-api/pre-authorization-cancel lists Amount,
    # Currency, OrderID; IPCmethod and SID first is an assumption, as a real IPCPurchaseCancel.
    PREAUTH_RETURN_METHODS['cancel']: _FORM_HEAD,
}
# Names that may appear in a form only at their place in the head (or last, for `Signature`).
FORM_RESERVED_NAMES = (*_FORM_HEAD, 'IPC_Trnref', 'PreAuthExpDate', 'Signature')
# Reserved names that may follow the head of a form as unread extras: the browser's
# IPCPreAuthorizationOK carries the notify's fields, which never decide anything there.
FORM_EXTRA_NAMES = {PREAUTH_RETURN_METHODS['ok']: frozenset({'PreAuthExpDate'})}
# The head of each server-to-server answer; `Status` anywhere after it
# (https://developers.mypos.com/apis/checkout-api/refund, docs/mypos-protocol.md §4.8, §4.11).
ANSWER_LAYOUTS = {
    'IPCRefund': ('IPCmethod', 'IPC_Trnref', 'Amount', 'Currency'),
    # myPOS's Checkout API v1.4 document: the answer of a saved card's charge.
    'IPCIAPurchase': ('IPCmethod', 'IPC_Trnref', 'Amount', 'Currency'),
    'IPCGetTxnStatus': ('IPCmethod', 'OrderID'),
    # https://developers.mypos.com/apis/checkout-api/pre-auth-completion: no IPC_Trnref of its own.
    PREAUTH_COMPLETION_METHOD: ('IPCmethod', 'Amount', 'Currency', 'OrderID'),
    # https://developers.mypos.com/apis/checkout-api/pre-auth-cancellation: no OrderID.
    PREAUTH_CANCELLATION_METHOD: ('IPCmethod', 'Amount', 'Currency'),
    # https://developers.mypos.com/apis/checkout-api/pre-auth-status: `IPCPreAuthStatus` and
    # `PreAuthExpDate` follow, read by name (the page's example and its table order them apart).
    PREAUTH_STATUS_METHOD: ('IPCmethod', 'OrderID'),
}


_STATUS_TEXT_RE = re.compile(r'[0-9]{1,9}')  # ASCII only: `str.isdigit` takes any script's digits.


class Status(enum.IntEnum):
    """The `Status` codes of myPOS, by their official names (7 has none in myPOS's documentation;
    its name is the PHP SDK's constant's).

    https://developers.mypos.com/apis/checkout-api/checkout-getting-started/error-messages
    """

    SUCCESS = 0
    E_MISSING_REQ_PARAMS = 1
    E_SIGNATURE_FAILED = 2
    E_IPC_ERROR = 3
    E_INVALID_SID = 4
    E_INVALID_PARAMS = 5
    E_INVALID_REFERER = 6
    E_PAYMENT_TRIES = 7
    E_TRANSACTION_AUTH_FAIL = 8
    E_WRONG_AMOUNT = 9
    E_UNSUPPORTED_CALL = 10
    E_INACTIVE_MANDATE_REFERENCE = 11
    E_INVALID_MANDATE_REFERENCE = 12
    E_NOT_SUFFICIENT_FUNDS = 13
    E_TRANSACTION_NOT_PERMITTED = 14
    E_EXCEEDED_LIMIT = 15
    E_MANDATE_ALREADY_REGISTERED = 16
    E_INACTIVE_ACOUNTIDENTIFIER = 17
    E_INVALID_ACOUNTIDENTIFIER = 18
    E_EXEEDED_ACCOUNT_LIMITS = 19
    E_DUPLICATE_TRANSMISSION = 20
    E_TRANSACTION_DECLINED = 21
    E_WRONG_EXPIRE_DATE = 22
    E_INVALID_SESSION = 23
    E_3DS_AUTHENTICATION_FAILED = 24
    E_STORE_RESTRICTED = 25
    E_UNDEFINED_ERROR = 99

    @classmethod
    def number(cls, value):
        """Return the number a `Status` is written as, or None if it is not one.

        Text counts only as myPOS writes a code: exactly '0', or ASCII digits that are not all
        zeros (at most 9). '00', ' 4', '4 ', '+4', '٤' (a non-ASCII digit) and '' are no code.

        :param int|str value: The code as received (text), or an int.
        :rtype: int|None
        """
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return int(value) if value >= 0 else None
        if isinstance(value, str) and _STATUS_TEXT_RE.fullmatch(value):
            if value == '0' or value.strip('0'):
                return int(value)
        return None

    @classmethod
    def of(cls, value):
        """Return the status of a code (int or text, see :meth:`number`), or None if it is not
        a documented one."""
        number = cls.number(value)
        try:
            return None if number is None else cls(number)
        except ValueError:
            return None


# The official name of each code ('Success' for 0), for logs and the emulator.
STATUS_NAMES = {status.value: status.name if status else 'Success' for status in Status}

# Statuses that say the store's credentials or setup are wrong
# (https://developers.mypos.com/apis/checkout-api/checkout-getting-started/error-messages); any
# other signed answer about a dummy order proves that both signatures work
# (docs/mypos-protocol.md §4.10).
CONNECTION_FAILURE_STATUSES = frozenset(
    {
        Status.E_MISSING_REQ_PARAMS,
        Status.E_SIGNATURE_FAILED,
        Status.E_IPC_ERROR,
        Status.E_INVALID_SID,
        Status.E_INVALID_PARAMS,
        Status.E_INVALID_REFERER,
        Status.E_UNSUPPORTED_CALL,
        Status.E_STORE_RESTRICTED,
        Status.E_UNDEFINED_ERROR,
    }
)
