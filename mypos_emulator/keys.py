"""The emulator's own RSA key pair and self-signed certificate, persisted in the state directory.

myPOS signs notifications and answers with its key; merchants verify them with "the myPOS
certificate" (https://developers.mypos.com/apis/checkout-api/checkout-getting-started/authentication).
The emulator plays myPOS, so it needs a key pair of its own whose certificate the Odoo provider is
configured with. It is kept in ``--state-dir`` so that the certificate pasted into Odoo stays valid
between runs.

Only APIs present in cryptography 3.4.8 (Odoo 18's pin on Python 3.11) are used, with an explicit
``default_backend()`` where 3.4.8 still accepts or needs one.
"""

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ._ipc import REPO_DIR, ipc, testing

DEFAULT_STATE_DIR = REPO_DIR / '.odoo-run' / 'emulator'
PRIVATE_KEY_FILE = 'private-key.pem'
CERTIFICATE_FILE = 'certificate.pem'
KEY_BITS = 2048


@dataclass(frozen=True)
class KeyMaterial:
    private_key_pem: str
    certificate_pem: str
    private_key_path: Path
    certificate_path: Path


def _write(path, data, mode):
    tmp = path.with_name(path.name + '.tmp')
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, 'w') as handle:
        handle.write(data)
    os.replace(tmp, path)


def load_or_create(state_dir=None):
    """Return the emulator's key material, creating and saving it on first use.

    :param state_dir: Directory holding ``private-key.pem`` and ``certificate.pem``; created if
                      missing. Default: ``<repo>/.odoo-run/emulator``.
    :rtype: KeyMaterial
    """
    state_dir = Path(state_dir) if state_dir else DEFAULT_STATE_DIR
    state_dir.mkdir(parents=True, exist_ok=True)
    key_path, cert_path = state_dir / PRIVATE_KEY_FILE, state_dir / CERTIFICATE_FILE
    if key_path.is_file():
        key = serialization.load_pem_private_key(
            key_path.read_bytes(), password=None, backend=default_backend()
        )
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{key_path} does not hold an RSA private key")
    else:
        key = rsa.generate_private_key(
            public_exponent=65537, key_size=KEY_BITS, backend=default_backend()
        )
        _write(
            key_path,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode('ascii'),
            0o600,
        )
    certificate_pem = None
    if cert_path.is_file():
        certificate_pem = cert_path.read_text()
        try:
            certificate = x509.load_pem_x509_certificate(
                certificate_pem.encode(), default_backend()
            )
            if certificate.public_key().public_numbers() != key.public_key().public_numbers():
                certificate_pem = None  # Belongs to another key: make a new one.
        except ValueError:
            certificate_pem = None
    if certificate_pem is None:
        certificate_pem = testing.self_signed_certificate(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode('ascii'),
            'myPOS emulator (payment_mypos tests)',
            days=3650,
        )
        _write(cert_path, certificate_pem, 0o644)
    private_key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode('ascii')
    return KeyMaterial(private_key_pem, certificate_pem, key_path, cert_path)


def public_key_pem(pem):
    """Return the SubjectPublicKeyInfo PEM of a certificate, public key or private key PEM."""
    return ipc.public_key_pem(pem)
