"""pytest plugin loaded by tools/test (``-p pytest_mypos``, tools/ on PYTHONPATH).

Only cosmetic: it keeps the test output readable. It changes no test behaviour.

* pytest-odoo imports ``odoo.tests`` before any test module is active, and Odoo 18
  then logs "Importing test framework, avoid importing from business modules ..."
  at ERROR level with a full stack trace. That is expected under pytest-odoo
  (test_enable must stay off while the registry loads, or Odoo would run every
  installed module's at_install tests), so that single record is dropped.
"""

import logging


class _DropImportFrameworkError(logging.Filter):
    def filter(self, record):
        return not (
            record.levelno == logging.ERROR
            and str(record.msg).startswith("Importing test framework")
        )


# Installed at plugin import time, i.e. before pytest-odoo's pytest_cmdline_main.
logging.getLogger("odoo.tests.common").addFilter(_DropImportFrameworkError())
