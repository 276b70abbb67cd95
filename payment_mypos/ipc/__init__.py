# Part of payment_mypos. License LGPL-3.
"""The myPOS Checkout (IPC) protocol as plain functions, with no Odoo and nothing of ours
outside this folder (a repository test checks it).

Building the fields of a call, signing them, parsing what myPOS posts or answers, verifying its
signature and reading it by position, and the HTTP exchange. Amounts are integers in minor units
everywhere; they become decimal strings only at the wire. Protocol facts: myPOS's documentation
(https://developers.mypos.com/apis/checkout-api/...), cited by page, and the repository's
docs/mypos-protocol.md where no public page states them. myPOS's side (keys, certificates, signed
answers) is in :mod:`.testing`, which production code never imports.
"""

from . import const, layouts, transport
from .answers import (
    MAX_ANSWER_DEPTH,
    check_answer,
    flatten_values,
    parse_response,
    status_text,
    verify_response,
)
from .const import PreAuthStatus, Status
from .errors import (
    Failure,
    InvalidKey,
    InvalidSignature,
    IPCError,
    MalformedMessage,
    RemoteError,
    shown_status,
)
from .forms import MAX_FORM_BYTES, MAX_FORM_FIELDS, check_pairs, get_field, parse_form
from .keys import (
    fingerprint,
    forget_keys,
    key_bits,
    load_private_key,
    load_public_key,
    normalize_pem,
    public_key_der,
    public_key_pem,
    same_public_key,
)
from .layouts import (
    Card,
    Message,
    SignedForm,
    is_card_token,
    read_card,
    read_form,
    read_payment_method,
)
from .messages import (
    build_cart,
    build_preauthorization,
    build_purchase,
    build_request,
    cart_total,
    check_payment_method,
    token_purchase_params,
    checkout_language,
    clean_text,
    customer_fields,
    format_amount,
    make_order_id,
    parse_amount,
    split_name,
)
from .signing import sign, sign_fields, signing_payload, verify
from .store import Credentials, check_credentials, decode_configuration_pack

__all__ = [
    'MAX_ANSWER_DEPTH',
    'MAX_FORM_BYTES',
    'MAX_FORM_FIELDS',
    'Card',
    'Credentials',
    'Failure',
    'IPCError',
    'InvalidKey',
    'InvalidSignature',
    'MalformedMessage',
    'Message',
    'PreAuthStatus',
    'RemoteError',
    'SignedForm',
    'Status',
    'build_cart',
    'build_preauthorization',
    'build_purchase',
    'build_request',
    'cart_total',
    'check_credentials',
    'check_answer',
    'check_pairs',
    'check_payment_method',
    'checkout_language',
    'clean_text',
    'const',
    'customer_fields',
    'decode_configuration_pack',
    'fingerprint',
    'flatten_values',
    'forget_keys',
    'format_amount',
    'get_field',
    'is_card_token',
    'key_bits',
    'layouts',
    'load_private_key',
    'load_public_key',
    'make_order_id',
    'normalize_pem',
    'parse_amount',
    'parse_form',
    'parse_response',
    'public_key_der',
    'public_key_pem',
    'read_card',
    'read_form',
    'read_payment_method',
    'same_public_key',
    'sign',
    'shown_status',
    'sign_fields',
    'signing_payload',
    'split_name',
    'status_text',
    'token_purchase_params',
    'transport',
    'verify',
    'verify_response',
]
