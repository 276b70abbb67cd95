# Part of payment_mypos. License LGPL-3.
"""Reconciliation at scale: the status check drains a backlog run after run, overlaps a bounded
number of calls, never lets one broken transaction stop the others, and backs off when myPOS is
down. Against the fake myPOS, its notifications over Odoo's HTTP server; the cron's progress is
read as Odoo's runner reads it."""

from datetime import timedelta
from unittest.mock import patch

from odoo import fields
from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.payment_mypos.const import CONCURRENCY_PARAM, OUTAGE_STREAK
from odoo.addons.payment_mypos.tests.common import CALLS_LOGGER, STATUS_LOGGER
from odoo.addons.payment_mypos.tests.common_fake import MyPOSFakeCommon


@tagged('post_install', '-at_install')
class TestReconciliation(MyPOSFakeCommon):
    def _lost_payments(self, count):
        """`count` payments made on myPOS whose notifications never reached Odoo, old enough
        to be checked."""
        txs = self.env['payment.transaction']
        for _index in range(count):
            tx, result = self._pay(notify_drop=True)
            self.assertEqual((result.outcome, tx.state), ('paid', 'draft'))
            txs |= tx
        self.env.flush_all()
        self.env.cr.execute(
            'UPDATE payment_transaction SET create_date = %s WHERE id IN %s',
            [fields.Datetime.now() - timedelta(minutes=11), tuple(txs.ids)],
        )
        self.env.invalidate_all()
        return txs

    def _run(self, batch_size=50):
        """One run of the scheduled action, with the progress record Odoo's runner gives it."""
        cron = self.env.ref('payment_mypos.cron_mypos_check_status')
        progress = self.env['ir.cron.progress'].create({'cron_id': cron.id})
        with mute_logger(CALLS_LOGGER):
            self.env['payment.transaction'].with_context(
                ir_cron_progress_id=progress.id,
                cron_id=cron.id,  # As the cron runner does.
            )._cron_mypos_check_status(batch_size=batch_size)
        self.env.invalidate_all()
        return progress.done, progress.remaining

    def test_backlog_drains_run_after_run(self):
        """The run reports what remains, so that Odoo runs it again at once, until none does;
        one status call per transaction."""
        txs = self._lost_payments(5)
        self.assertEqual(self._run(batch_size=2), (2, 3))
        self.assertEqual(self._run(batch_size=2), (2, 1))
        self.assertEqual(self._run(batch_size=2), (1, 0))
        self.assertEqual(set(txs.mapped('state')), {'done'})
        self.assertEqual(self._run(batch_size=2), (0, 0))
        calls = [call['order_id'] for call in self._api_calls('IPCGetTxnStatus')]
        self.assertEqual(sorted(calls), sorted(txs.mapped('mypos_order_id')))

    @mute_logger(STATUS_LOGGER)
    def test_broken_transaction_pushed_back(self):
        """A transaction whose check raises is pushed back to its next check; the others are
        checked, and the next run does not take it again."""
        txs = self._lost_payments(3)
        broken = txs[1]
        model = type(self.env['payment.transaction'])
        set_done = model._set_done

        def failing_set_done(records, **kwargs):  # A faulty override elsewhere, say.
            if broken in records:
                raise RuntimeError("an error in another module's _set_done")
            return set_done(records, **kwargs)

        with patch.object(model, '_set_done', failing_set_done):
            self.assertEqual(self._run(), (3, 0))
        self.assertEqual((txs - broken).mapped('state'), ['done', 'done'])
        self.assertEqual((broken.state, broken.mypos_check_count), ('draft', 1))
        self.assertGreater(broken.mypos_next_check, fields.Datetime.now())
        self.assertEqual(self._run(), (0, 0))  # Not retried in a loop.

    def test_concurrent_calls_are_bounded(self):
        """The calls of a run overlap, never more than the system parameter allows."""
        self.env['ir.config_parameter'].sudo().set_param(CONCURRENCY_PARAM, '3')
        txs = self._lost_payments(7)
        self.mypos.set_faults(api_timeout=0.3)  # Each answer takes 300 ms.
        self.assertEqual(self._run(), (7, 0))
        self.assertEqual(set(txs.mapped('state')), {'done'})
        self.assertEqual(self.mypos.max_concurrent_api_calls(), 3)

    @mute_logger(STATUS_LOGGER)
    def test_outage_backs_off(self):
        """myPOS answering errors for several transactions in a row: the run stops, reports
        nothing left for now, and the next scheduled run settles everything once it is back."""
        self.env['ir.config_parameter'].sudo().set_param(CONCURRENCY_PARAM, '1')
        txs = self._lost_payments(OUTAGE_STREAK + 3)
        self.mypos.set_faults(api_http_status=503)
        self.assertEqual(self._run(), (OUTAGE_STREAK, 0))
        self.assertEqual(len(self._api_calls('IPCGetTxnStatus')), OUTAGE_STREAK)
        self.assertEqual(txs.mapped('mypos_check_count').count(0), 3)
        self.assertEqual(set(txs.mapped('state')), {'draft'})
        self.mypos.reset_faults()
        self.env.cr.execute(  # The next scheduled run comes when their next checks are due.
            'UPDATE payment_transaction SET mypos_next_check = %s WHERE id IN %s',
            [fields.Datetime.now() - timedelta(seconds=1), tuple(txs.ids)],
        )
        self.env.invalidate_all()
        self.assertEqual(self._run(), (OUTAGE_STREAK + 3, 0))
        self.assertEqual(set(txs.mapped('state')), {'done'})
