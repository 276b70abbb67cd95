# Part of payment_mypos. License LGPL-3.
"""Manual capture with the emulator as a separate HTTP server: the card is authorised on its page
(IPCPreAuthorization), then captured (IPCPreAuthCompletion) or released (IPCPreAuthCancellation)
from Odoo over real sockets, and reconciled with IPCPreAuthStatus by the scheduled check.
https://developers.mypos.com/apis/checkout-api/pre-authorization
The addon's test_manual_capture.py covers every case with the in-addon fake; here only the paths
whose bytes cross a socket: capture and refund, release, a lost answer, expiry."""

import datetime
from datetime import timedelta

from odoo import fields
from odoo.exceptions import UserError
from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.payment_mypos.tests.common import CALLS_LOGGER, PEOPLE_LOGGER, refund

from integration_tests.common import MyPOSEmulatorCommon

COMPLETION, CANCELLATION, STATUS = (
    'IPCPreAuthCompletion',
    'IPCPreAuthCancellation',
    'IPCPreAuthStatus',
)
PREAUTH_LOGGER = 'odoo.addons.payment_mypos.models.payment_transaction_preauth'


def emulator_today():
    """The emulator's today: it dates holds in UTC."""
    return datetime.datetime.now(datetime.timezone.utc).date()


@tagged('mypos_integration', 'post_install', '-at_install')
class TestManualCaptureOnEmulator(MyPOSEmulatorCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.provider.write({'allow_tokenization': False, 'capture_manually': True})

    # === Helpers === #

    def _authorize(self):
        """Authorise a new transaction on the emulator's page; its notify reaches the webhook."""
        tx, result = self._pay()
        self.assertEqual((result.outcome, tx.state), ('authorized', 'authorized'), result)
        self.assertEqual(tx.provider_reference, result.ipc_trnref)
        return tx, result

    def _send(self, action, **faults):
        """Press Capture or Void on the authorisation (myPOS answers with `faults`)."""
        self.env.flush_all()
        if faults:
            self.emulator.set_faults(**faults)
        try:
            with mute_logger(CALLS_LOGGER, PREAUTH_LOGGER):
                action()
        finally:
            self.emulator.reset_faults()
        self.env.invalidate_all()

    def _children(self, tx):
        return tx.child_transaction_ids.filtered(lambda t: t.operation != 'refund').sorted('id')

    def _run_status_cron(self, tx):
        """The scheduled status check, with `tx` due."""
        tx.mypos_next_check = fields.Datetime.now() - timedelta(minutes=1)
        self.env.flush_all()
        with mute_logger(CALLS_LOGGER, PEOPLE_LOGGER, PREAUTH_LOGGER):
            self.env['payment.transaction']._cron_mypos_check_status()
        self.env.invalidate_all()

    def _methods(self):
        return [call['method'] for call in self.emulator.api_calls()]

    # === Tests === #

    def test_capture_full_then_refund_part(self):
        tx, result = self._authorize()
        held = self.emulator.order(tx.mypos_order_id)
        self.assertEqual(held['status'], 'authorized')
        # PreAuthExpDate (YYMMDD) read from the notify as the emulator dated the hold.
        self.assertEqual(str(tx.mypos_preauth_expiry), held['preauth_expiry'])
        self.assertEqual(held['preauth_expiry'], str(emulator_today() + timedelta(days=30)))

        self._send(tx.action_capture)
        capture = self._children(tx)
        self.assertEqual(len(capture), 1)
        self.assertEqual(
            (tx.state, capture.state, capture.amount, capture.provider_reference),
            ('done', 'done', 100.0, result.ipc_trnref),
        )
        self.assertFalse(tx.mypos_preauth_call)
        calls = self._api_calls(COMPLETION)
        self.assertEqual(
            [(c['order_id'], c['amount'], c['status']) for c in calls],
            [(tx.mypos_order_id, '100.00', 0)],
        )
        order = self.emulator.order(tx.mypos_order_id)
        self.assertEqual(
            (order['status'], order['captured_amount'], order['released_amount']),
            ('captured', '100.00', '0.00'),
        )

        with mute_logger(CALLS_LOGGER):
            refund(capture, 40.0)
        self.env.invalidate_all()
        refund_tx = capture.child_transaction_ids
        self.assertEqual((refund_tx.state, refund_tx.amount), ('done', -40.0))
        calls = self._api_calls('IPCRefund')
        self.assertEqual(
            [(c['ipc_trnref'], c['amount'], c['status']) for c in calls],
            [(result.ipc_trnref, '40.00', 0)],
        )
        self.assertEqual(self.emulator.order(tx.mypos_order_id)['refunded'], '40.00')
        self.assertEqual(self._methods(), [COMPLETION, 'IPCRefund'], "one call of each")

    def test_void_releases_the_hold(self):
        tx, _result = self._authorize()
        self._send(tx.action_void)
        release = self._children(tx)
        self.assertEqual(len(release), 1)
        self.assertEqual((tx.state, release.state), ('cancel', 'cancel'))
        self.assertRegex(tx.state_message, "released")
        calls = self._api_calls(CANCELLATION)
        self.assertEqual(
            [(c['order_id'], c['amount'], c['status']) for c in calls],
            [(tx.mypos_order_id, '100.00', 0)],
        )
        order = self.emulator.order(tx.mypos_order_id)
        self.assertEqual((order['status'], order['released_amount']), ('released', '100.00'))
        self.assertEqual(self._methods(), [CANCELLATION])

    def test_lost_completion_answer_settled_by_status_check(self):
        tx, _result = self._authorize()
        # myPOS captures, then the connection closes without an answer.
        self._send(tx.action_capture, api_drop_answer=True)
        capture = self._children(tx)
        self.assertEqual(len(capture), 1)
        self.assertEqual((tx.state, tx.mypos_preauth_call), ('authorized', 'capture'))
        self.assertEqual(capture.state, 'pending')
        self.assertRegex(tx.state_message, "may have been captured")
        self.assertEqual(self.emulator.order(tx.mypos_order_id)['status'], 'captured')
        calls = self._api_calls(COMPLETION)
        self.assertEqual([c['fault'] for c in calls], ['answer dropped'])
        # A second click sends nothing (its request rolls back, as the refusal makes it).
        with self.assertRaisesRegex(UserError, "never sent twice"), self.env.cr.savepoint():
            tx.action_capture()
        self.env.invalidate_all()
        self.assertEqual(self._children(tx), capture)
        self.assertEqual(self._methods(), [COMPLETION])

        self._run_status_cron(tx)
        self.assertEqual((tx.state, capture.state, tx.mypos_preauth_call), ('done', 'done', False))
        self.assertEqual(capture.provider_reference, tx.provider_reference)
        self.assertEqual(len(self._children(tx)), 1, "the recorded capture, not a second one")
        self.assertEqual(self._methods(), [COMPLETION, STATUS], "exactly one completion")
        self.assertEqual(self._api_calls(STATUS)[0]['order_id'], tx.mypos_order_id)

    def test_expired_hold_cancelled_by_status_check(self):
        tx, _result = self._authorize()
        # The status check reads the new expiry (PreAuthExpDate DD/MM/YYYY) and reminds once.
        tomorrow = emulator_today() + timedelta(days=1)
        self.emulator.set_preauth_expiry(tx.mypos_order_id, tomorrow)
        self._run_status_cron(tx)
        self.assertEqual((tx.state, tx.mypos_preauth_expiry), ('authorized', tomorrow))
        self.assertTrue(tx.mypos_preauth_warned)
        self.assertGreater(tx.mypos_next_check, fields.Datetime.now())

        self.emulator.expire_preauth(tx.mypos_order_id)
        self._run_status_cron(tx)
        self.assertEqual(tx.state, 'cancel')
        self.assertRegex(tx.state_message, "expired")
        self.assertFalse(tx.mypos_next_check)
        self.assertFalse(self._children(tx))
        self.assertEqual(self._methods(), [STATUS, STATUS], "never a capture or release")
        self.assertEqual(self.emulator.order(tx.mypos_order_id)['status'], 'expired')
