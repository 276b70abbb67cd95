"""pytest plugin loaded by tools/test (``-p pytest_mypos``, tools/ on PYTHONPATH).

It keeps the test output readable, and runs the tests in a thread set up as Odoo's own test
runner sets up its thread; it changes no test's behaviour.

* pytest-odoo imports ``odoo.tests`` before any test module is active, and Odoo 18
  then logs "Importing test framework, avoid importing from business modules ..."
  at ERROR level with a full stack trace. That is expected under pytest-odoo
  (test_enable must stay off while the registry loads, or Odoo would run every
  installed module's at_install tests), so that single record is dropped.

* Odoo's runner names the database on the thread that runs the tests
  (``threading.current_thread().dbname``, odoo/service/server.py); pytest-odoo does not. Odoo
  19.0's QWeb reads it when it renders a report (a sale order's PDF in its confirmation e-mail):
  without it, an AttributeError there recurses until Python's limit. The same name is set here.
"""

import logging
import threading


class _DropImportFrameworkError(logging.Filter):
    def filter(self, record):
        return not (
            record.levelno == logging.ERROR
            and str(record.msg).startswith("Importing test framework")
        )


# Installed at plugin import time, i.e. before pytest-odoo's pytest_cmdline_main.
logging.getLogger("odoo.tests.common").addFilter(_DropImportFrameworkError())


def pytest_configure(config):
    database = config.getoption('odoo_database', default=None)
    if database:
        threading.current_thread().dbname = database
