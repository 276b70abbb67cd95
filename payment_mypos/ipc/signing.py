# Part of payment_mypos. License LGPL-3.
"""The signature rule: RSA PKCS#1 v1.5 with SHA-256 over the values joined with '-'.

https://developers.mypos.com/apis/checkout-api/checkout-getting-started/authentication
"""

import base64
import binascii

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from .keys import load_private_key, load_public_key


def signing_payload(values):
    """Return the bytes that are signed: base64 of the values joined with '-'."""
    return base64.b64encode('-'.join(str(value) for value in values).encode('utf-8'))


def sign(values, private_key_pem):
    """Sign values in posted order with the store's key.

    :param list values: The raw (unescaped) values, in the order they will be posted.
    :param str private_key_pem: The store's private key.
    :return: The base64 signature.
    :rtype: str
    """
    key = load_private_key(private_key_pem)
    signature = key.sign(signing_payload(values), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode('ascii')


def verify(values, signature, public_key_pem):
    """Tell whether `signature` signs `values` (in received order) with myPOS's key.

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
    """Return `fields` with a `Signature` field appended last, where myPOS requires it.

    :param list fields: (name, value) pairs in posting order.
    :rtype: list
    """
    fields = [(name, str(value)) for name, value in fields]
    return fields + [('Signature', sign([value for _name, value in fields], private_key_pem))]
