"""The protocol functions timed in-process: ipc.sign / ipc.verify and the key cache."""

import timeit


def generate_key_pair(bits):
    """Return (private key PEM, self-signed certificate PEM) of a throw-away RSA pair."""
    # The protocol functions without booting Odoo; tools/bench puts the repository on PYTHONPATH.
    from mypos_emulator._ipc import testing

    return testing.generate_key_pair(bits, 'Throw-away myPOS (bench)')


def per_op(function, min_time=0.4):
    timer = timeit.Timer(function)
    number, _elapsed = timer.autorange()
    number = max(number, int(number * min_time / 0.2))
    best = min(timer.repeat(repeat=3, number=number))
    return best / number


def bench_protocol():
    from odoo.addons.payment_mypos import ipc

    keys = getattr(ipc, 'keys', ipc)  # The key cache: ipc/keys.py, or ipc.py before it.

    values = [
        'IPCPurchaseNotify',
        '000000000000010',
        '23.45',
        'EUR',
        'S00042-1_0a1b2c3d_42',
        '410227',
        '083107',
        '2026-11-24 14:49:48',
        '1',
        'myPOS  * TESTSTORE',
        '0007',
        '3',
    ]

    def measure(bits):
        """Time signing, verifying and key parsing with a fresh key pair of `bits`."""
        private_pem, certificate = generate_key_pair(bits)
        signature = ipc.sign(values, private_pem)
        assert ipc.verify(values, signature, certificate)

        def sign_uncached():
            keys._load_private_key.cache_clear()
            ipc.sign(values, private_pem)

        def verify_uncached():
            keys._load_public_key.cache_clear()
            ipc.verify(values, signature, certificate)

        def parse_private_uncached():
            keys._load_private_key.cache_clear()
            ipc.load_private_key(private_pem)

        def parse_public_uncached():
            keys._load_public_key.cache_clear()
            ipc.load_public_key(certificate)

        row = {
            'bits': bits,
            'sign': per_op(lambda: ipc.sign(values, private_pem)),
            'verify': per_op(lambda: ipc.verify(values, signature, certificate)),
            'sign_uncached': per_op(sign_uncached),
            'verify_uncached': per_op(verify_uncached),
            'parse_private': per_op(parse_private_uncached),
            'parse_private_cached': per_op(lambda: ipc.load_private_key(private_pem)),
            'parse_public': per_op(parse_public_uncached),
            'parse_public_cached': per_op(lambda: ipc.load_public_key(certificate)),
        }
        return row

    rows = [measure(bits) for bits in (1024, 2048)]
    # Cached by content: another content (changed credentials) is parsed anew, once.
    keys._load_public_key.cache_clear()
    first_pem, first_cert = generate_key_pair(1024)
    _second_pem, second_cert = generate_key_pair(1024)
    signature = ipc.sign(values, first_pem)
    for _repeat in range(100):
        ipc.verify(values, signature, first_cert)
    after_first = keys._load_public_key.cache_info()
    for _repeat in range(100):
        ipc.verify(values, signature, second_cert)
    after_second = keys._load_public_key.cache_info()
    cache = {
        'misses_first': after_first.misses,
        'hits_first': after_first.hits,
        'misses_second': after_second.misses - after_first.misses,
        'second_rejects_old_signature': not ipc.verify(values, signature, second_cert),
    }
    return rows, cache
