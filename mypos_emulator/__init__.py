"""A local, protocol-faithful emulator of myPOS Checkout (IPC API, hosted payment page).

Run it with ``python -m mypos_emulator`` from the repository root, or in-process::

    from mypos_emulator import Emulator
    emu = Emulator(port=0, state_dir=tmp).start()
    ...
    emu.stop()

See README.md.
"""

from .faults import EmulatorError, Faults
from .messages import DECLINED_CARDS, Reject
from .server import Emulator
from .shopper import PaymentResult
from .wire import http_request

__all__ = [
    'DECLINED_CARDS',
    'Emulator',
    'EmulatorError',
    'Faults',
    'PaymentResult',
    'Reject',
    'http_request',
]
