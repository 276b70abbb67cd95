"""The protocol package ``payment_mypos/ipc/``, loaded without importing Odoo: the one place the
emulator reaches into the addon.

``payment_mypos/__init__.py`` imports Odoo, so the addon is not imported as a package; its
``ipc/`` folder is loaded alone, as the package ``_mypos_ipc``, whose submodules can only be
found inside that folder.
"""

import importlib
import importlib.util
import sys
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parent.parent
ADDON_DIR = REPO_DIR / 'payment_mypos'
IPC_DIR = ADDON_DIR / 'ipc'
SANDBOX_STORE_PRIVATE_KEY_FILE = ADDON_DIR / 'data' / 'sandbox' / 'store-private-key.pem'

_NAME = '_mypos_ipc'


def _load():
    module = sys.modules.get(_NAME)
    if module is None:
        spec = importlib.util.spec_from_file_location(
            _NAME, IPC_DIR / '__init__.py', submodule_search_locations=[str(IPC_DIR)]
        )
        if spec is None or not (IPC_DIR / '__init__.py').is_file():
            raise ImportError(f"the protocol package is not found in {IPC_DIR}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[_NAME] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[_NAME]
            raise
    return module


ipc = _load()
const = ipc.const
layouts = ipc.layouts
testing = importlib.import_module(f'{_NAME}.testing')
# myPOS's own rules, shared with the addon's in-memory fake (ipc.testing.FakeMyPOS).
fake_rules = importlib.import_module(f'{_NAME}.fake_rules')
