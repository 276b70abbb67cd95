"""Access to the protocol functions of ``payment_mypos/ipc.py`` without importing Odoo.

``payment_mypos/__init__.py`` imports Odoo, so the addon cannot be imported as a package here.
Instead a bare package module named ``_mypos_emulator_payment_mypos`` whose ``__path__`` is the
addon directory is registered in ``sys.modules``; ``ipc`` and ``const`` are then imported as its
submodules (``ipc.py`` and ``layouts.py`` do ``from . import const``, which resolves inside
that bare package).
The addon's own ``__init__.py`` is never executed.
"""

import importlib
import sys
import types
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parent.parent
ADDON_DIR = REPO_DIR / 'payment_mypos'
SANDBOX_STORE_PRIVATE_KEY_FILE = ADDON_DIR / 'data' / 'sandbox' / 'store-private-key.pem'

_PACKAGE = '_mypos_emulator_payment_mypos'


def _load():
    package = sys.modules.get(_PACKAGE)
    if package is None:
        if not (ADDON_DIR / 'ipc.py').is_file():
            raise ImportError(f"payment_mypos/ipc.py not found in {ADDON_DIR}")
        package = types.ModuleType(_PACKAGE, "payment_mypos protocol modules (no Odoo)")
        package.__path__ = [str(ADDON_DIR)]
        package.__package__ = _PACKAGE
        sys.modules[_PACKAGE] = package
    return tuple(
        importlib.import_module(f'{_PACKAGE}.{name}') for name in ('ipc', 'const', 'layouts')
    )


ipc, const, layouts = _load()
