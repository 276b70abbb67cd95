# Part of payment_mypos. License LGPL-3.
"""myPOS's side of the protocol, for the emulator and the tests: key pairs, self-signed
certificates, signed answers, and :class:`FakeMyPOS` (:mod:`.fake`), an in-memory myPOS that the
addon's tests put in place of the HTTP exchange. Production code never imports this module."""

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from .answers import flatten_values
from .fake import VISA, FakeMyPOS, PaymentResult
from .keys import load_private_key
from .signing import sign

__all__ = [
    'VISA',
    'FakeMyPOS',
    'PaymentResult',
    'generate_key_pair',
    'self_signed_certificate',
    'sign_tree',
]


def self_signed_certificate(private_key_pem, organization, days=365):
    """Return a self-signed X.509 certificate (PEM) for a private key."""
    key = load_private_key(private_key_pem)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, 'BG'),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
        ]
    )
    now = datetime.datetime.utcnow().replace(microsecond=0)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode('ascii')


def generate_key_pair(bits=2048, organization='Throw-away myPOS'):
    """Return (private key PEM, self-signed certificate PEM) of a new RSA key pair."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode('ascii')
    return private_pem, self_signed_certificate(private_pem, organization)


def sign_tree(tree, private_key_pem):
    """Return an answer tree with its top-level `Signature` appended, as myPOS signs it.

    Nested objects must already carry their own signature.
    """
    return list(tree) + [('Signature', sign(flatten_values(tree), private_key_pem))]
