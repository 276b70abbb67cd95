import pytest

from mypos_emulator import Emulator

from .helpers import Merchant


@pytest.fixture(scope='session')
def emulator_state_dir(tmp_path_factory):
    """One key pair for the whole session (generating a 2048-bit key takes a moment)."""
    return tmp_path_factory.mktemp('mypos-emulator-state')


@pytest.fixture
def emu(emulator_state_dir):
    emulator = Emulator(port=0, state_dir=emulator_state_dir, notify_timeout=3).start()
    yield emulator
    emulator.stop()


@pytest.fixture
def merchant(emu):
    site = Merchant(emu.certificate_pem)
    yield site
    site.stop()
