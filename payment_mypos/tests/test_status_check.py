# Part of payment_mypos. License LGPL-3.

from datetime import timedelta
from unittest.mock import patch

from odoo import fields
from odoo.tests import tagged
from odoo.tools import config, mute_logger

from odoo.addons.payment_mypos import ipc
from odoo.addons.payment_mypos.const import (
    EXPIRY_HOURS_PARAM,
    MAX_CHECKS_PARAM,
)
from odoo.addons.payment_mypos.tests.common import CALLS_LOGGER, PEOPLE_LOGGER, STATUS_LOGGER
from odoo.addons.payment_mypos.tests.common_fake import MyPOSFakeCommon


@tagged('post_install', '-at_install')
class TestStatusCheck(MyPOSFakeCommon):
    def _age(self, tx, **delta):
        """Pretend `tx` was created `delta` ago."""
        self.env.flush_all()
        self.env.cr.execute(
            'UPDATE payment_transaction SET create_date = %s WHERE id = %s',
            [fields.Datetime.now() - timedelta(**delta), tx.id],
        )
        self.env.invalidate_all()

    def _run_cron(self, **kwargs):
        with mute_logger(CALLS_LOGGER):
            self.env['payment.transaction']._cron_mypos_check_status(**kwargs)
        self.env.invalidate_all()

    def _button(self, tx):
        with mute_logger(CALLS_LOGGER):
            action = tx.action_mypos_check_status()
        self.env.invalidate_all()
        return action

    # === The button === #

    def test_lost_notification_found_by_button(self):
        """Paid on myPOS, notification lost: the check makes the transaction done."""
        tx, result = self._pay(notify_drop=True)
        self.assertEqual((result.outcome, tx.state), ('paid', 'draft'))
        action = self._button(tx)
        self.assertEqual((tx.state, tx.provider_reference), ('done', result.ipc_trnref))
        self.assertEqual(action['params']['title'], "Status checked with myPOS")
        self.assertIn("applied", action['params']['message'])

    def test_rollback_found_by_cron(self):
        """myPOS reversed a payment whose messages never reached Odoo: the check cancels it."""
        tx = self._create_mypos_transaction()
        self.env['ir.config_parameter'].sudo().set_param('web.base.url', 'http://127.0.0.1:9')
        tx, result = self._pay(tx)  # Notify and rollback both fail to reach Odoo.
        self.assertEqual((result.outcome, tx.state), ('reversed', 'draft'))
        self._age(tx, minutes=11)
        self._run_cron()
        self.assertEqual(tx.state, 'cancel')
        self.assertFalse(tx.mypos_next_check)

    def test_unknown_order_stays_draft(self):
        """An order myPOS does not know yet changes nothing."""
        tx = self._create_mypos_transaction()
        self._button(tx)
        self.assertEqual(tx.state, 'draft')
        self.assertEqual(len(self._api_calls('IPCGetTxnStatus')), 1)

    def test_wrongly_signed_status_not_applied(self):
        tx, _result = self._pay(notify_drop=True)
        self.mypos.set_faults(api_bad_signature=True)
        self._button(tx)
        self.assertEqual(tx.state, 'draft')
        self.assertRegex(tx.mypos_log_ids[:1].outcome, "^signature:")

    @mute_logger(STATUS_LOGGER)
    def test_amount_mismatch_not_applied(self):
        """The check applies the webhook's rules: a notify for another amount is not a payment."""
        tx, _result = self._pay(notify_drop=True)
        tx.amount = 99.0
        self._button(tx)
        self.assertEqual(tx.state, 'draft')
        self.assertIn("does not match", tx.mypos_log_ids[:1].outcome)

    # === The scheduled action === #

    def test_cron_finds_lost_notification(self):
        tx, _result = self._pay(notify_drop=True)
        self._run_cron()
        self.assertEqual(tx.state, 'draft', "not checked before the first delay")
        self._age(tx, minutes=11)
        self._run_cron()
        self.assertEqual(tx.state, 'done')
        self.assertEqual(tx.mypos_check_count, 1)
        self.assertFalse(tx.mypos_next_check)

    @mute_logger(PEOPLE_LOGGER)
    def test_cron_interval_grows_and_stops(self):
        self.env['ir.config_parameter'].sudo().set_param(MAX_CHECKS_PARAM, '3')
        tx = self._create_mypos_transaction()
        self._age(tx, hours=1)
        intervals = []
        for _check in range(3):
            before = fields.Datetime.now()
            self._run_cron()
            if tx.mypos_next_check:
                intervals.append(round((tx.mypos_next_check - before).total_seconds() / 60))
                tx.mypos_next_check = before - timedelta(seconds=1)  # Due again now.
        self.assertEqual(intervals, [20, 40])
        self.assertEqual((tx.mypos_check_count, tx.mypos_next_check), (3, False))
        self._run_cron()  # The limit is reached: not checked anymore.
        self.assertEqual(tx.mypos_check_count, 3)
        self.assertEqual(len(self._api_calls('IPCGetTxnStatus')), 3)
        self.assertEqual(tx.state, 'draft')

    def test_cron_batch_is_bounded(self):
        txs = self._create_mypos_transaction() | self._create_mypos_transaction(reference='T2')
        for tx in txs:
            self._age(tx, hours=1)
        self._run_cron(batch_size=1)
        self.assertEqual(sorted(txs.mapped('mypos_check_count')), [0, 1])

    def test_run_stops_launching_calls_past_its_time_budget(self):
        """myPOS answers slowly: the run stops launching calls under the cron's real-time limit
        and leaves the rest to the next run (reported as remaining)."""
        txs = self.env['payment.transaction']
        for index in range(5):
            tx = self._create_mypos_transaction(reference=f'SLOW-{index}')
            self._age(tx, hours=1)
            txs |= tx
        self.env['ir.config_parameter'].sudo().set_param(
            'payment_mypos.status_check_concurrency', '1'
        )
        self.mypos.set_faults(api_timeout=0.6)
        progress = []
        Cron = type(self.env['ir.cron'])
        self.addCleanup(config.__setitem__, 'limit_time_real_cron', config['limit_time_real_cron'])
        config['limit_time_real_cron'] = 4  # Seconds: a run may launch calls for 1 s.
        with (
            patch.object(ipc.const, 'REQUEST_TIMEOUT', 1),
            patch.object(Cron, '_notify_progress', lambda _self, **kw: progress.append(kw)),
        ):
            self._run_cron()
        checked = len(txs.filtered('mypos_check_count'))
        self.assertGreaterEqual(checked, 1)
        self.assertLess(checked, 5)
        self.assertEqual(progress, [{'done': checked, 'remaining': 5 - checked}])
        self.assertEqual(len(self._api_calls('IPCGetTxnStatus')), checked)

    def test_quiet_expiry(self):
        """Unpaid past the configured age: cancelled without messages or e-mails."""
        self.env['ir.config_parameter'].sudo().set_param(EXPIRY_HOURS_PARAM, '2')
        unpaid = self._create_mypos_transaction()
        paid, _result = self._pay(notify_drop=True)
        recent = self._create_mypos_transaction(reference='recent')
        for tx in unpaid | paid:
            self._age(tx, hours=3)
        self._age(recent, hours=1)
        messages = self.env['mail.message'].search_count([])
        mails = self.env['mail.mail'].search_count([])
        self._run_cron()
        self.assertEqual(unpaid.state, 'cancel')
        self.assertRegex(unpaid.state_message, "cancelled automatically")
        self.assertTrue(unpaid.is_post_processed)
        self.assertEqual(paid.state, 'done', "checked before expiring: the payment is found")
        self.assertEqual(recent.state, 'draft')
        self.assertEqual(self.env['mail.message'].search_count([]), messages)
        self.assertEqual(self.env['mail.mail'].search_count([]), mails)

    def test_no_expiry_without_an_answer(self):
        """When myPOS cannot be asked, nothing is cancelled."""
        self.env['ir.config_parameter'].sudo().set_param(EXPIRY_HOURS_PARAM, '2')
        tx, _result = self._pay(notify_drop=True)
        self._age(tx, hours=3)
        self.mypos.set_faults(api_http_status=502)
        self._run_cron()
        self.assertEqual(tx.state, 'draft')
        self.assertTrue(tx.mypos_next_check)

    def test_status_calls_logged(self):
        tx, _result = self._pay(notify_drop=True)
        self._button(tx)
        methods = tx.mypos_log_ids.sorted('id').mapped(lambda log: (log.direction, log.method))
        self.assertEqual(methods[:2], [('out', 'IPCGetTxnStatus'), ('in', 'IPCGetTxnStatus')])
        answer = tx.mypos_log_ids.sorted('id')[1].payload
        self.assertIn('OrderStatus:', answer)
        self.assertIn('    IPCmethod = IPCPurchaseNotify', answer)
        self.assertNotRegex(answer, r'\d{12,}')
