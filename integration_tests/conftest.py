# Part of payment_mypos. License LGPL-3.
"""The integration suite: payment_mypos against the myPOS emulator running as a separate HTTP
server (hosted page, browser, faults). pytest-odoo runs it (tools/test); Odoo's own runner does
not, as it needs this repository beside the addon. Every test here is marked `integration`, so
that `-m integration` / `-m "not integration"` select it."""

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_configure(config):
    config.addinivalue_line(
        'markers',
        'integration: needs the myPOS emulator of this repository as a separate server (tagged'
        ' mypos_integration for Odoo)',
    )


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.integration)
