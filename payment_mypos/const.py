# Part of payment_mypos. License LGPL-3.
"""What Odoo makes of the protocol: payment method codes, the addon's sandbox files, and the
translated explanations of myPOS's status codes and of the protocol's errors (protocol facts live
in `ipc/const.py`)."""

import ast
import datetime
import enum
from pathlib import Path

from odoo import release
from odoo.tools import LazyTranslate

from .ipc.const import (
    PREAUTH_CANCELLATION_METHOD,
    PREAUTH_COMPLETION_METHOD,
    REFUND_METHOD,
    TOKEN_PURCHASE_METHOD,
    PreAuthStatus,
    Status,
)
from .ipc.errors import Failure

_lt = LazyTranslate(__name__)


def _addon_version():
    """Return the addon's own version, as its manifest writes it (1.3.0, without the series)."""
    manifest = Path(__file__).with_name('__manifest__.py').read_text(encoding='utf-8')
    return ast.literal_eval(manifest)['version'].removeprefix(f'{release.series}.')


# Who calls myPOS, by the series that runs and the addon's version: the `User-Agent` every request
# must carry (docs/mypos-protocol.md §2) and the optional `Source` field that names the
# integration, as myPOS's own plugins write it ("sc_opencart 1.8.1").
ADDON_VERSION = _addon_version()
USER_AGENT = f'Odoo/{release.series} payment_mypos/{ADDON_VERSION}'
SOURCE = f'odoo{release.version_info[0]}_payment_mypos {ADDON_VERSION}'

# The payment methods enabled with the provider: cards and the brands myPOS reports
# (https://developers.mypos.com/apis/checkout-api/purchase-notify).
DEFAULT_PAYMENT_METHOD_CODES = {'card', 'visa', 'mastercard', 'maestro'}

# `CardType` of IPCPurchaseNotify (https://developers.mypos.com/apis/checkout-api/purchase-notify)
# -> Odoo payment method code.
CARD_TYPE_MAPPING = {
    '1': 'mastercard',
    '2': 'maestro',
    '3': 'visa',
    '4': 'visa',  # Visa Electron
    '5': 'vpay',
    '6': 'jcb',
    '7': 'bancontact',
}

# The key material of myPOS's public sandbox store, shipped with the addon
# (docs/mypos-protocol.md §6.1).
SANDBOX_PRIVATE_KEY_FILE = 'data/sandbox/store-private-key.pem'
SANDBOX_CERTIFICATE_FILE = 'data/sandbox/mypos-public-cert.pem'

# What each status means for a merchant, and what to do about it
# (https://developers.mypos.com/apis/checkout-api/checkout-getting-started/error-messages,
# https://developers.mypos.com/guides/troubleshooting-guides/online-payments-troubleshooting). Shown
# wherever a myPOS answer reaches a person.
STATUS_EXPLANATIONS = {
    Status.SUCCESS: _lt("Success."),
    Status.E_MISSING_REQ_PARAMS: _lt(
        "A required field is missing from the request. Update the module; if it persists, report "
        "it with the transaction's log."
    ),
    Status.E_SIGNATURE_FAILED: _lt(
        "myPOS refused the request's signature. The store private key or the key index does not "
        "match the certificate uploaded to myPOS: check both (use the latest key index)."
    ),
    Status.E_IPC_ERROR: _lt(
        "myPOS could not process the request. Most often the credentials belong to the other "
        "environment (sandbox credentials in live mode or the reverse), or the key index is wrong."
    ),
    Status.E_INVALID_SID: _lt(
        "myPOS does not know this Store ID (SID). Copy the SID from myPOS's dashboard (Online "
        "stores) or import the configuration pack again."
    ),
    Status.E_INVALID_PARAMS: _lt(
        "A parameter was refused: often a wallet number that does not match the store, or "
        "credentials used against the wrong environment."
    ),
    Status.E_INVALID_REFERER: _lt(
        "The request came from a site that is not in the store's approved links. Add your "
        "website's root domain in myPOS's dashboard."
    ),
    Status.E_PAYMENT_TRIES: _lt("Too many payment attempts for this order. Start a new payment."),
    Status.E_TRANSACTION_AUTH_FAIL: _lt(
        "The card authorisation failed. The shopper can try again or use another card."
    ),
    Status.E_WRONG_AMOUNT: _lt(
        "myPOS refused the amount. Check the currency's decimals and that the amount is positive."
    ),
    Status.E_UNSUPPORTED_CALL: _lt("myPOS does not support this call for the store."),
    Status.E_INACTIVE_MANDATE_REFERENCE: _lt("The mandate reference is inactive."),
    Status.E_INVALID_MANDATE_REFERENCE: _lt("The mandate reference is invalid."),
    Status.E_NOT_SUFFICIENT_FUNDS: _lt(
        "The myPOS account lacks funds for this operation (for a refund: top up the account "
        "balance, then retry)."
    ),
    Status.E_TRANSACTION_NOT_PERMITTED: _lt(
        "myPOS does not permit this transaction (for a refund: the payment may be too old, "
        "already refunded, or not refundable)."
    ),
    Status.E_EXCEEDED_LIMIT: _lt(
        "An account or store limit was exceeded. Check the limits in myPOS's dashboard."
    ),
    Status.E_MANDATE_ALREADY_REGISTERED: _lt("The mandate is already registered."),
    Status.E_INACTIVE_ACOUNTIDENTIFIER: _lt("The account identifier is inactive."),
    Status.E_INVALID_ACOUNTIDENTIFIER: _lt("The account identifier is invalid."),
    Status.E_EXEEDED_ACCOUNT_LIMITS: _lt("The account limits were exceeded."),
    Status.E_DUPLICATE_TRANSMISSION: _lt(
        "A payment was already made with this OrderID (duplicate). Start a new payment."
    ),
    Status.E_TRANSACTION_DECLINED: _lt("The transaction was declined."),
    Status.E_WRONG_EXPIRE_DATE: _lt("The card's expiry date is wrong."),
    Status.E_INVALID_SESSION: _lt(
        "The payment session is invalid or expired. Start a new payment."
    ),
    Status.E_3DS_AUTHENTICATION_FAILED: _lt("3-D Secure authentication failed."),
    Status.E_STORE_RESTRICTED: _lt(
        "The store is restricted: the site is not approved, the store is not enabled or "
        "verified, or the currency is not enabled for it. Check the store in myPOS's dashboard."
    ),
    Status.E_UNDEFINED_ERROR: _lt(
        "myPOS reported an undefined error. Retry later; contact myPOS support if it persists."
    ),
}

# The protocol's errors (`ipc.IPCError.code`), as an administrator reads them; the parameters are
# the error's own (`ipc.IPCError.params`). Codes without an entry are shown in English.
PROTOCOL_ERRORS = {
    # Forms (ipc/forms.py)
    'body_too_large': _lt("the body is larger than %(limit)s bytes"),
    'body_not_utf8': _lt("the body is not UTF-8"),
    'body_empty': _lt("the message has no fields"),
    'body_not_form': _lt("the body is not a valid form (%(detail)s)"),
    'too_many_fields': _lt("the message has more than %(limit)s fields"),
    'nul': _lt("the message holds a NUL character"),
    'field_repeated': _lt("the field %(name)s appears twice"),
    # Layouts (ipc/layouts.py)
    'value_format': _lt("the %(name)s is not in myPOS's format"),
    'field_misplaced': _lt("field %(position)s must be %(name)s"),
    'field_out_of_place': _lt("the field %(name)s is out of its place"),
    'nested': _lt("the message holds a nested object"),
    'method_refused': _lt("%(method)s is not accepted on this URL"),
    'answer_method': _lt("the answer is not for %(method)s"),
    'signature_missing': _lt("the message has no Signature"),
    'signature_invalid': _lt("the Signature does not verify with myPOS's certificate"),
    'live_sandbox_certificate': _lt(
        "the transaction was opened in live mode: myPOS's public sandbox certificate cannot "
        "verify its messages (configure the store's myPOS certificate)"
    ),
    # Amounts and purchases (ipc/messages.py)
    'amount_format': _lt("the amount %(amount)r is not a decimal number"),
    'amount_decimals': _lt("the amount %(amount)r has more than %(decimals)s decimals"),
    'cart_total': _lt("the cart does not add up to the amount"),
    'amount_not_positive': _lt("the amount to pay must be more than zero"),
    # Answers (ipc/answers.py)
    'answer_unreadable': _lt("the answer is neither valid XML nor valid JSON (%(detail)s)"),
    'answer_too_deep': _lt("the answer is nested deeper than %(depth)s levels"),
    # Keys and credentials (ipc/keys.py, ipc/store.py)
    'pem_missing': _lt("no PEM block (-----BEGIN ...----- / -----END ...-----) found"),
    'private_key_unreadable': _lt("the private key cannot be read (%(detail)s)"),
    'private_key_not_rsa': _lt("the private key is not an RSA key"),
    'certificate_unreadable': _lt("the certificate or public key cannot be read (%(detail)s)"),
    'certificate_not_rsa': _lt("the certificate does not hold an RSA public key"),
    'sid_format': _lt("the Store ID (SID) must be digits only (at most 15)"),
    'wallet_format': _lt("the wallet number (client number) must be digits only (at most 11)"),
    'key_index_range': _lt("the key index must be a whole number from 1 to 99"),
    'private_key_invalid': _lt("the store private key is not valid: %(reason)s"),
    'certificate_invalid': _lt("the myPOS certificate is not valid: %(reason)s"),
    'pack_not_base64_json': _lt("the configuration pack is not base64-encoded JSON"),
    'pack_not_object': _lt("the configuration pack is not a JSON object"),
    'pack_missing_keys': _lt("the configuration pack lacks %(keys)s"),
    'pack_unknown_keys': _lt("the configuration pack has unknown keys: %(keys)s"),
    'pack_key_index': _lt("the configuration pack's key index is not a number"),
    'pack_pk_invalid': _lt(
        "the configuration pack's store private key (pk) is not valid: %(reason)s"
    ),
    'pack_pc_invalid': _lt(
        "the configuration pack's myPOS certificate (pc) is not valid: %(reason)s"
    ),
    # Server-to-server calls (ipc/transport.py, ipc/answers.py: `ipc.Failure`)
    'remote_timeout': _lt("myPOS did not answer within %(seconds)s seconds (%(url)s)."),
    'remote_unreachable': _lt("myPOS cannot be reached at %(url)s (%(error)s)."),
    'remote_lost': _lt(
        "The connection to myPOS at %(url)s broke after the request was sent (%(error)s): myPOS "
        "may have acted on it."
    ),
    'remote_http': _lt("myPOS answered with HTTP error %(http_status)s at %(url)s."),
    'remote_too_large': _lt(
        "myPOS's answer is larger than %(size)s bytes: it is not an answer of myPOS."
    ),
    'remote_garbage': _lt("myPOS's answer cannot be read: %(reason)s"),
    'remote_layout': _lt("myPOS's answer is signed, but cannot be read: %(reason)s"),
    'remote_unsigned': _lt("myPOS's answer is not signed. %(status)s"),
    'remote_unclear': _lt(
        "myPOS's answer is signed, but its Status %(status)s is neither 0 nor an error code: "
        "myPOS may have acted on the call."
    ),
    'remote_signature': _lt(
        "myPOS's answer is signed, but not with the configured myPOS certificate: use the "
        "certificate of the store's current key index (or the configuration pack)."
    ),
}

# Key spaces of the advisory locks: a refund being sent (per payment), and the reservations of
# the same documents by calls that move money (`payment.mypos.outbox`).
REFUND_LOCK_SPACE = 0x6D79706F  # 'mypo'
OUTBOX_LOCK_SPACE = 0x6D796F62  # 'myob'

# The operations that charge a saved card (the shopper's one click; the back office's payment).
TOKEN_OPERATIONS = ('online_token', 'offline')

# === The status check (`IPCGetTxnStatus`) ===#
# https://developers.mypos.com/apis/checkout-api/get-payment-status

# System parameters of the status check (Settings > Technical > System Parameters).
EXPIRY_HOURS_PARAM = 'payment_mypos.status_check_expiry_hours'
MAX_CHECKS_PARAM = 'payment_mypos.status_check_max_attempts'
CONCURRENCY_PARAM = 'payment_mypos.status_check_concurrency'  # Calls open at once, 1 to 16.
DEFAULT_EXPIRY_HOURS = 24
DEFAULT_MAX_CHECKS = 12
DEFAULT_CONCURRENCY = 4
# First check this long after creation (the shopper may still be on myPOS's page), then the
# interval doubles after each check, up to the cap.
FIRST_CHECK_DELAY = datetime.timedelta(minutes=10)
MAX_CHECK_INTERVAL = datetime.timedelta(hours=12)
MAX_CHECK_DOUBLINGS = 7  # FIRST_CHECK_DELAY * 2**7 is past MAX_CHECK_INTERVAL already.
# Failures that say myPOS (or the way to it) is down, not that one answer is odd; after this many
# in a row, a run stops instead of hammering an unavailable service.
OUTAGE_FAILURES = (Failure.UNREACHABLE, Failure.LOST, Failure.TIMEOUT, Failure.HTTP)
OUTAGE_STREAK = 5
# Never checked first (they are the oldest due), then by due date.
DUE_ORDER = 'mypos_next_check asc nulls first, id asc'


class CheckOutcome(str, enum.Enum):
    """What one status check of a transaction found."""

    APPLIED = 'applied'  # myPOS's last message about it was applied.
    UNKNOWN = 'unknown'  # myPOS knows nothing usable about it yet.
    NO_ANSWER = 'no_answer'  # No signed answer.
    INVALID = 'invalid'  # A signed message that cannot apply to it.


# What a status check found, for the person who asked.
CHECK_OUTCOME_TEXTS = {
    CheckOutcome.APPLIED: _lt("myPOS's last message was applied."),
    CheckOutcome.UNKNOWN: _lt("myPOS has no payment message for it yet."),
    CheckOutcome.NO_ANSWER: _lt("myPOS gave no usable answer; see the myPOS log."),
    CheckOutcome.INVALID: _lt("myPOS's answer could not be applied; see the myPOS log."),
}

# === The myPOS log's retention ===#

# How many days the myPOS log and the record of calls sent keep what no open or recently changed
# transaction needs (system parameter; 0 or less keeps everything).
LOG_RETENTION_PARAM = 'payment_mypos.log_retention_days'
DEFAULT_LOG_RETENTION_DAYS = 400  # About 13 months: a year of disputes and chargebacks.

# === The one money path: what a person reads about a call that moves money ===#
# By IPC method, then by what became of the call; `%(error)s` is the failure explained.
_CHARGE_MESSAGES = {
    'held': _lt(
        "myPOS: Another payment of the same document (%(reference)s) is being sent to myPOS or "
        "waits for its answer. It is checked automatically; pay again only once it is settled."
    ),
    'duplicate': _lt(
        "myPOS: myPOS already received this payment (%(error)s). Its result is fetched from myPOS."
    ),
    'refused': _lt("myPOS: The saved card was declined: %(error)s"),
    'not_sent': _lt("myPOS: myPOS cannot be reached; the card was not charged (%(error)s)"),
    'unclear': _lt(
        "myPOS: No usable answer from myPOS (%(error)s). The card may have been charged: the "
        "payment will be checked with myPOS, not sent again."
    ),
    'mismatch': _lt(
        "myPOS accepted the payment but its answer does not match it (%(error)s). It will be "
        "checked with myPOS; compare with myPOS's dashboard."
    ),
}
_REFUND_MESSAGES = {
    'held': _lt(
        "myPOS: Another refund of this payment (OrderID %(order_id)s) was sent to myPOS and is "
        "not settled yet. It is checked automatically; refund again only once it is settled."
    ),
    'duplicate': _lt(
        "myPOS: myPOS already received this refund (%(error)s). Its result will be fetched from "
        "myPOS."
    ),
    'refused': _lt("myPOS: The refund was refused: %(error)s"),
    'not_sent': _lt("myPOS: The refund was refused: %(error)s"),
    'unclear': _lt(
        "myPOS: No usable answer from myPOS (%(error)s). The refund may have been made: it will "
        "be checked with myPOS, not sent again."
    ),
    'mismatch': _lt(
        "myPOS accepted the refund but its answer does not match it (%(error)s). It will be "
        "checked with myPOS; compare with myPOS's dashboard."
    ),
}
_CAPTURE_MESSAGES = {
    'held': _lt(
        "myPOS: A capture or release of this authorisation (OrderID %(order_id)s) was already "
        "sent to myPOS; it is never sent twice. Its outcome is checked with myPOS instead."
    ),
    'duplicate': _lt(
        "myPOS: myPOS already received this capture (%(error)s). Its outcome is checked with myPOS."
    ),
    'refused': _lt("myPOS: The capture was refused: %(error)s"),
    'not_sent': _lt("myPOS: myPOS cannot be reached; nothing was captured (%(error)s)"),
    'unclear': _lt(
        "myPOS: No usable answer from myPOS (%(error)s). The amount may have been captured: it "
        "will be checked with myPOS, not sent again."
    ),
    'mismatch': _lt(
        "myPOS accepted the capture but its answer does not match it (%(error)s). It will be "
        "checked with myPOS; compare with myPOS's dashboard."
    ),
}
_RELEASE_MESSAGES = {
    'held': _CAPTURE_MESSAGES['held'],
    'duplicate': _lt(
        "myPOS: myPOS already received this release (%(error)s). Its outcome is checked with myPOS."
    ),
    'refused': _lt("myPOS: The release was refused: %(error)s"),
    'not_sent': _lt("myPOS: myPOS cannot be reached; nothing was released (%(error)s)"),
    'unclear': _lt(
        "myPOS: No usable answer from myPOS (%(error)s). The authorisation may have been "
        "released: it will be checked with myPOS, not sent again."
    ),
    'mismatch': _lt(
        "myPOS accepted the release but its answer does not match it (%(error)s). It will be "
        "checked with myPOS; compare with myPOS's dashboard."
    ),
}
MONEY_CALL_MESSAGES = {
    TOKEN_PURCHASE_METHOD: _CHARGE_MESSAGES,
    REFUND_METHOD: _REFUND_MESSAGES,
    PREAUTH_COMPLETION_METHOD: _CAPTURE_MESSAGES,
    PREAUTH_CANCELLATION_METHOD: _RELEASE_MESSAGES,
}

# === Manual capture: myPOS pre-authorisation ===#
# https://developers.mypos.com/apis/checkout-api/pre-auth-status

# How often an authorisation waiting for its capture is checked with myPOS, and how long before
# it expires the salesperson is reminded of it.
PREAUTH_CHECK_INTERVAL = datetime.timedelta(days=1)
PREAUTH_WARN_BEFORE = datetime.timedelta(days=1)
# What a final `IPCPreAuthStatus` tells, on the cancelled transaction.
PREAUTH_END_MESSAGES = {
    PreAuthStatus.DECLINED: _lt("myPOS declined the pre-authorisation."),
    PreAuthStatus.REVERSED: _lt(
        "The authorisation expired (or myPOS reversed it): the hold on the customer's card was "
        "released and nothing was captured."
    ),
    PreAuthStatus.CANCELLED: _lt("The authorisation was released: nothing was captured."),
}

# === Test Connection: what a failed call puts in question ===#

# What a failed connection test means, by failure: what is wrong, then what to do. `error` is the
# failure explained, `url` the endpoint, `index` the key index.
FAILURE_HINTS = {
    Failure.TIMEOUT: _lt(
        "Endpoint timed out: %(error)s Check that this server can open https connections to "
        "%(url)s (firewall, proxy), then try again; if it persists, myPOS may be having an outage."
    ),
    Failure.LOST: _lt(
        "Connection broken: %(error)s Check that nothing between this server and %(url)s (proxy, "
        "firewall) cuts connections, then try again."
    ),
    Failure.UNREACHABLE: _lt(
        "Endpoint unreachable: %(error)s Check this server's internet access (DNS, firewall, "
        "outgoing https) and, in test mode, the system parameter payment_mypos.sandbox_url if it "
        "is set."
    ),
    Failure.HTTP: _lt(
        "Endpoint error: %(error)s The URL may be wrong (check the system parameter "
        "payment_mypos.sandbox_url if it is set) or myPOS may be having an outage; try again "
        "later."
    ),
    Failure.GARBAGE: _lt(
        "Not a myPOS answer: %(error)s The endpoint %(url)s does not lead to myPOS's API (a proxy "
        "or a wrong URL?)."
    ),
    Failure.SIGNATURE: _lt(
        "The answer's signature does not verify: the configured myPOS certificate does not match "
        "the key myPOS signs with for key index %(index)s. Download the myPOS certificate of that "
        "key index from myPOS's dashboard (Online stores > your store > Keys), or import the "
        "configuration pack again."
    ),
}
# What a refusal by myPOS puts in question, by status; `sid`, `wallet`, `index` are the store's.
_STORE_PROBLEM = _lt(
    "Wallet or store problem: wallet number %(wallet)s, or store %(sid)s's setup in myPOS's "
    "dashboard."
)
STATUS_HEADLINES = {
    Status.E_SIGNATURE_FAILED: _lt(
        "Request signature refused: the store private key or the key index (%(index)s) does not "
        "match the public key uploaded to myPOS."
    ),
    Status.E_INVALID_SID: _lt("Invalid Store ID (SID): myPOS does not know store %(sid)s."),
    Status.E_INVALID_PARAMS: _STORE_PROBLEM,
    Status.E_INVALID_REFERER: _STORE_PROBLEM,
    Status.E_STORE_RESTRICTED: _STORE_PROBLEM,
    Status.E_IPC_ERROR: _lt(
        "myPOS refused the request: the key index (%(index)s) is not the store's latest one, or "
        "the credentials belong to the other environment."
    ),
}
# Statuses that often mean credentials of the other environment (https://developers.mypos.com/apis/checkout-api/checkout-getting-started/error-messages).
ENVIRONMENT_STATUSES = {Status.E_IPC_ERROR, Status.E_INVALID_SID, Status.E_INVALID_PARAMS}
