# Part of payment_mypos. License LGPL-3.
"""Keys and certificates: the store's private key, myPOS's certificate.

https://developers.mypos.com/apis/checkout-api/checkout-getting-started/authentication
"""

import base64
import binascii
import functools
import hashlib
import re

from asn1crypto import pem as asn1_pem
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .errors import InvalidKey

_PEM_RE = re.compile(r'-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----', re.DOTALL)


def normalize_pem(text):
    """Return the first PEM block of `text`, re-wrapped in 64-character lines.

    Accepts what an administrator pastes: CRLF line ends, surrounding text, or a block whose line
    breaks were lost (a single-line password input drops them).

    :param str text: The pasted text.
    :rtype: str
    :raise InvalidKey: If no PEM block is found.
    """
    match = _PEM_RE.search(text or '')
    if not match:
        raise InvalidKey(
            "no PEM block (-----BEGIN ...----- / -----END ...-----) found", code='pem_missing'
        )
    label, body = match.group(1), re.sub(r'\s+', '', match.group(2))
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return '\n'.join([f'-----BEGIN {label}-----', *lines, f'-----END {label}-----', ''])


def _is_private(pem):
    label = _PEM_RE.search(pem or '')
    return bool(label and 'PRIVATE' in label.group(1))


@functools.lru_cache(maxsize=32)
def _load_private_key(pem):
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as error:
        raise InvalidKey(
            f"the private key cannot be read ({error})",
            code='private_key_unreadable',
            detail=str(error),
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise InvalidKey("the private key is not an RSA key", code='private_key_not_rsa')
    return key


def load_private_key(pem):
    """Return the RSA private key of a PEM text, parsed once per distinct content.

    :param str pem: A PKCS#1 or PKCS#8 PEM, unencrypted.
    :rtype: rsa.RSAPrivateKey
    :raise InvalidKey: If it is not an unencrypted RSA private key.
    """
    return _load_private_key(normalize_pem(pem))


def _spki_of_certificate(pem):
    """Return the DER SubjectPublicKeyInfo of a certificate, reading nothing else of it.

    myPOS's legacy test certificates have an empty serial number, which `cryptography` refuses
    (docs/mypos-protocol.md §3.4); asn1crypto parses lazily, so their public key is still read.
    """
    _label, _headers, der = asn1_pem.unarmor(pem.encode('ascii'))
    certificate = asn1_x509.Certificate.load(der)
    return certificate['tbs_certificate']['subject_public_key_info'].dump()


@functools.lru_cache(maxsize=32)
def _load_public_key(pem):
    label = _PEM_RE.search(pem).group(1)
    try:
        if label == 'CERTIFICATE':
            key = serialization.load_der_public_key(_spki_of_certificate(pem))
        else:  # PUBLIC KEY (SubjectPublicKeyInfo) or RSA PUBLIC KEY (PKCS#1)
            key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError, IndexError, KeyError, binascii.Error) as error:
        raise InvalidKey(
            f"the certificate or public key cannot be read ({error})",
            code='certificate_unreadable',
            detail=str(error),
        ) from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise InvalidKey(
            "the certificate does not hold an RSA public key", code='certificate_not_rsa'
        )
    return key


def load_public_key(pem):
    """Return the RSA public key of a certificate or public-key PEM, parsed once per content.

    :param str pem: An X.509 certificate, a SubjectPublicKeyInfo or a PKCS#1 RSA public key.
    :rtype: rsa.RSAPublicKey
    :raise InvalidKey: If no RSA public key can be read from it.
    """
    return _load_public_key(normalize_pem(pem))


def _public_key(pem):
    return load_private_key(pem).public_key() if _is_private(pem) else load_public_key(pem)


def public_key_der(pem):
    """Return the DER SubjectPublicKeyInfo of a private key, public key or certificate PEM."""
    return _public_key(pem).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_key_pem(pem):
    """Return the bare public key (SubjectPublicKeyInfo PEM) of a private key, public key or
    certificate PEM."""
    der = base64.b64encode(public_key_der(pem)).decode('ascii')
    return normalize_pem(f'-----BEGIN PUBLIC KEY-----{der}-----END PUBLIC KEY-----')


def fingerprint(pem):
    """Return the SHA-256 of the DER SubjectPublicKeyInfo, in hex: the same as
    `openssl pkey -pubout -outform DER | sha256sum` prints for the key."""
    return hashlib.sha256(public_key_der(pem)).hexdigest()


def same_public_key(pem, other_pem):
    """Tell whether two PEMs (key or certificate) hold the same public key; unreadable: no."""
    try:
        return public_key_der(pem) == public_key_der(other_pem)
    except InvalidKey:
        return False


def forget_keys():
    """Drop every parsed key of this process; they are parsed again, once, on next use.

    Keys are cached by content, so a changed key is never confused with the old one; this only
    keeps replaced credentials from lingering in memory.
    """
    _load_private_key.cache_clear()
    _load_public_key.cache_clear()


def key_bits(key_or_pem):
    """Return the size in bits of a key, or of the key in a PEM (private or public)."""
    if isinstance(key_or_pem, str):
        return _public_key(key_or_pem).key_size
    return key_or_pem.key_size
