"""Key material, merchant key configuration, loopback-only listening and the command line."""

import os
import subprocess
import sys
import time

import pytest
from cryptography import x509
from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mypos_emulator import Emulator, EmulatorError, http_request
from mypos_emulator._ipc import REPO_DIR

from .helpers import purchase_fields


def test_key_pair_persists_in_the_state_dir(emulator_state_dir, tmp_path):
    first = Emulator(port=0, state_dir=emulator_state_dir)
    second = Emulator(port=0, state_dir=emulator_state_dir)
    assert first.certificate_pem == second.certificate_pem
    assert (emulator_state_dir / 'certificate.pem').read_text() == first.certificate_pem
    assert oct((emulator_state_dir / 'private-key.pem').stat().st_mode & 0o777) == '0o600'
    certificate = x509.load_pem_x509_certificate(first.certificate_pem.encode(), default_backend())
    assert certificate.public_key().key_size == 2048
    other = Emulator(port=0, state_dir=tmp_path / 'new' / 'dir')
    assert other.certificate_pem != first.certificate_pem
    assert (tmp_path / 'new' / 'dir' / 'certificate.pem').is_file()


def test_configured_merchant_key(emulator_state_dir, tmp_path):
    key = rsa.generate_private_key(65537, 1024, default_backend())
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    with Emulator(
        port=0,
        state_dir=emulator_state_dir,
        merchant_public_key_pem=public_pem,
        sid='000000000012345',
        wallet_number='40000000001',
        key_index=3,
    ) as emu:
        fields = purchase_fields(
            'http://127.0.0.1:9',
            'KEY-1',
            key=private_pem,
            overrides={'SID': '000000000012345', 'WalletNumber': '40000000001', 'KeyIndex': '3'},
        )
        assert emu.submit(fields)[0] == 0
        # The sandbox store key is not this merchant's key any more.
        sandbox = purchase_fields(
            'http://127.0.0.1:9',
            'KEY-2',
            overrides={'SID': '000000000012345', 'WalletNumber': '40000000001', 'KeyIndex': '3'},
        )
        assert emu.submit(sandbox)[0] == 2


def test_loopback_only(emulator_state_dir):
    with pytest.raises(EmulatorError):
        Emulator(host='0.0.0.0', port=0, state_dir=emulator_state_dir)


def test_command_line(emulator_state_dir):
    process = subprocess.Popen(
        [
            sys.executable,
            '-m',
            'mypos_emulator',
            '--port',
            '0',
            '--state-dir',
            str(emulator_state_dir),
            '--quiet',
        ],
        cwd=REPO_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, 'PYTHONPATH': str(REPO_DIR)},
    )
    try:
        lines = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith('-----END CERTIFICATE-----'):
                break
        output = ''.join(lines)
        assert 'listening on http://127.0.0.1:' in output, output + process.stderr.read()
        assert str(emulator_state_dir / 'certificate.pem') in output
        base_url = output.split('listening on ', 1)[1].split()[0]
        status, _headers, body = http_request('GET', base_url + '/_emulator/certificate')
        assert status == 200 and body.decode() in output
    finally:
        process.terminate()
        process.wait(10)


def test_require_https_notify(emulator_state_dir):
    from .helpers import Merchant

    with Emulator(port=0, state_dir=emulator_state_dir, require_https_notify=True) as emu:
        merchant = Merchant(emu.certificate_pem)
        try:
            result = emu.pay(purchase_fields(merchant.url, 'HTTPS-1'))
            assert result.outcome == 'reversed' and result.return_method == 'IPCPurchaseCancel'
            assert merchant.requests == []
            assert all('not https' in n['error'] for n in emu.notifications('HTTPS-1'))
        finally:
            merchant.stop()
