# Part of payment_mypos. License LGPL-3.
"""Real sockets between Odoo and the myPOS emulator: what the addon's tests, on the in-memory
fake, cannot show. An answer trickling in is cut at the call's deadline, a redirect is never
followed, a silent endpoint is given up within the request timeout."""

import time
from unittest.mock import patch

from odoo import fields
from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.payment_mypos import ipc

from integration_tests.common import MyPOSEmulatorCommon, MyPOSEmulatorPaidCommon

PROVIDER_LOGGER = 'odoo.addons.payment_mypos.models.payment_provider'


@tagged('post_install', '-at_install', 'mypos_integration')
class TestAnswerDeadlines(MyPOSEmulatorPaidCommon):
    def _settle(self, refund_tx):
        refund_tx.mypos_next_check = fields.Datetime.now()
        with mute_logger(PROVIDER_LOGGER):
            self.env['payment.transaction']._cron_mypos_check_status()

    def test_slow_drip_answer_keeps_the_deadline(self):
        """An answer trickling in a byte at a time ends the call at its deadline: pending."""
        self.emulator.set_faults(api_drip=0.2, api_faults_remaining=1)
        started = time.monotonic()
        with patch.object(ipc.const, 'REQUEST_TIMEOUT', 2):
            refund_tx = self._refund(10.0)
        elapsed = time.monotonic() - started
        self.assertLess(elapsed, 2 + 1, "the whole call stays within its deadline")
        self.assertEqual(refund_tx.state, 'pending')
        self.assertRegex(refund_tx.state_message, "did not answer within")
        self._settle(refund_tx)
        self.assertEqual(refund_tx.state, 'done')

    def test_slow_bytes_keep_the_deadline(self):
        """Bytes spaced just under the read timeout still cannot stretch the call."""
        self.emulator.set_faults(api_drip=0.9, api_faults_remaining=1)
        started = time.monotonic()
        with patch.object(ipc.const, 'REQUEST_TIMEOUT', 2):  # 1 s to connect, reads of 1 s at most.
            refund_tx = self._refund(10.0)
        # Without a per-read bound the third byte (2.7 s) would end it, not the deadline.
        self.assertLess(time.monotonic() - started, 2 + 0.5)
        self.assertEqual(refund_tx.state, 'pending')

    def test_redirect_not_followed(self):
        """A redirect (307 would post the refund again) is never followed: pending, sent once."""
        self.emulator.set_faults(api_redirect=307, api_faults_remaining=1)
        refund_tx = self._refund(10.0)
        self.assertEqual(refund_tx.state, 'pending')
        self.assertRegex(refund_tx.state_message, "HTTP error 307")
        self.assertEqual(len(self._api_calls('IPCRefund')), 1)
        self.assertEqual(self.emulator.refunds(), [])


@tagged('post_install', '-at_install', 'mypos_integration')
class TestSilentEndpoint(MyPOSEmulatorCommon):
    def test_test_connection_gives_up_within_the_request_timeout(self):
        """Test Connection against an endpoint that does not answer: given up at the deadline,
        reported as a timeout."""
        self.emulator.set_faults(api_timeout=4, api_faults_remaining=1)
        started = time.monotonic()
        with patch.object(ipc.const, 'REQUEST_TIMEOUT', 2):
            self.provider.action_mypos_test_connection()
        self.assertLess(time.monotonic() - started, 2 + 1)
        self.assertFalse(self.provider.mypos_last_test_success)
        self.assertIn("Endpoint timed out", self.provider.mypos_last_test_result)
