"""The command line of the emulator.

``python -m mypos_emulator [--host H] [--port P] [--state-dir DIR] [--merchant-cert PEM]``

Run ``python -m mypos_emulator --help`` for every option; see README.md.
"""

import argparse
import contextlib
import signal
import sys

from . import keys
from .faults import EmulatorError
from .server import Emulator


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m mypos_emulator',
        description="Local emulator of myPOS Checkout (IPC API): hosted payment page, "
        "notifications, refunds, status queries and fault switches.",
    )
    parser.add_argument(
        '--host', default='127.0.0.1', help="loopback address (default %(default)s)"
    )
    parser.add_argument(
        '--port', type=int, default=8899, help="TCP port, 0 = any free port (default %(default)s)"
    )
    parser.add_argument(
        '--state-dir',
        default=str(keys.DEFAULT_STATE_DIR),
        help="where the emulator's key and certificate.pem are kept (default %(default)s)",
    )
    parser.add_argument(
        '--merchant-cert',
        metavar='PEM_FILE',
        help="merchant certificate or public key that verifies requests "
        "(default: public key of payment_mypos/data/sandbox/"
        "store-private-key.pem)",
    )
    parser.add_argument('--sid', default=None, help="accepted store ID (default sandbox SID)")
    parser.add_argument(
        '--wallet', default=None, help="accepted wallet number (default sandbox wallet)"
    )
    parser.add_argument('--key-index', type=int, default=None, help="accepted KeyIndex (default 1)")
    parser.add_argument(
        '--notify-timeout',
        type=float,
        default=10.0,
        help="timeout of each notification POST in seconds (default %(default)s)",
    )
    parser.add_argument(
        '--require-https-notify',
        action='store_true',
        help="like real myPOS: an http URL_Notify is not called and the payment "
        "is reversed (default: http is accepted)",
    )
    parser.add_argument('--quiet', action='store_true', help="don't log requests")
    args = parser.parse_args(argv)

    options = {}
    if args.sid:
        options['sid'] = args.sid
    if args.wallet:
        options['wallet_number'] = args.wallet
    if args.key_index is not None:
        options['key_index'] = args.key_index
    try:
        merchant = None
        if args.merchant_cert:
            with open(args.merchant_cert, encoding='utf-8') as handle:
                merchant = handle.read()
        emulator = Emulator(
            args.host,
            args.port,
            args.state_dir,
            merchant,
            notify_timeout=args.notify_timeout,
            verbose=not args.quiet,
            require_https_notify=args.require_https_notify,
            **options,
        )
        emulator.start()
    except (EmulatorError, OSError) as error:
        print(f"mypos_emulator: {error}", file=sys.stderr)
        return 2
    print(f"myPOS Checkout emulator listening on {emulator.base_url}", flush=True)
    print(f"  checkout endpoint (sandbox):    {emulator.url}")
    print(f"  checkout endpoint (production): {emulator.production_url}")
    print(
        f"  store: SID {emulator.store.sid}, wallet {emulator.store.wallet_number}, "
        f"KeyIndex {emulator.store.key_index}"
    )
    print(f"  control: {emulator.base_url}/_emulator/state, {emulator.base_url}/_emulator/faults")
    print(
        f"  myPOS certificate (paste it as the provider's myPOS certificate): "
        f"{emulator.certificate_path}"
    )
    print(emulator.certificate_pem, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        with contextlib.suppress(KeyboardInterrupt, SystemExit):  # Ctrl-C, SIGTERM: stop.
            emulator.serve_forever()
    finally:
        emulator.stop(timeout=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
