"""The repository's integration suite: Odoo against a second, real server (the myPOS emulator of
mypos_emulator/, a browser), over real sockets. Every test here carries the `integration` marker
(`pytest -m 'not integration'` leaves them out) and the Odoo test tag `mypos_integration`."""

import pathlib

import pytest

HERE = pathlib.Path(__file__).parent


def pytest_configure(config):
    config.addinivalue_line(
        'markers', "integration: needs a second real server (the myPOS emulator, a browser)"
    )


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in pathlib.Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)
