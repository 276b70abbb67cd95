# Part of payment_mypos. License LGPL-3.
"""The myPOS log forgets in time, as Odoo's own logs do, and the addon leaves the models it
shares with every other provider as it found them."""

from datetime import timedelta

from odoo import fields
from odoo.tests import tagged

from odoo.addons.payment_mypos import const
from odoo.addons.payment_mypos.tests.common import MyPOSCommon


@tagged('post_install', '-at_install')
class TestLogRetention(MyPOSCommon):
    def _logged(self, reference, state, age_days):
        """A transaction in `state`, last changed `age_days` ago, with one exchange that old."""
        tx = self._create_mypos_transaction(reference=reference, state=state)
        log = self.env['payment.mypos.log']._mypos_add(tx, 'in', 'IPCPurchaseNotify', [('A', '1')])
        self.env.flush_all()
        past = fields.Datetime.now() - timedelta(days=age_days)
        self.env.cr.execute(
            'UPDATE payment_transaction SET write_date = %s WHERE id = %s', [past, tx.id]
        )
        self.env.cr.execute(
            'UPDATE payment_mypos_log SET create_date = %s WHERE id = %s', [past, log.id]
        )
        self.env.invalidate_all()
        return log

    def test_old_exchanges_of_final_transactions_are_forgotten(self):
        """Past the retention, the exchanges of done, cancelled and failed transactions go; those
        of a transaction still open, or changed recently, stay."""
        forgotten = (
            self._logged('OLD-DONE', 'done', 500)
            + self._logged('OLD-CANCEL', 'cancel', 401)
            + self._logged('OLD-ERROR', 'error', 900)
        )
        kept = (
            self._logged('OLD-PENDING', 'pending', 500)
            + self._logged('OLD-DRAFT', 'draft', 500)
            + self._logged('RECENT-DONE', 'done', 399)
        )
        self.env['payment.mypos.log']._gc_mypos_log()
        self.assertFalse(forgotten.exists())
        self.assertEqual(kept.exists(), kept)

    def test_retention_is_a_system_parameter(self):
        """The administrator sets the days; zero keeps everything."""
        log = self._logged('DONE-100', 'done', 100)
        params = self.env['ir.config_parameter'].sudo()
        params.set_param(const.LOG_RETENTION_PARAM, '0')
        self.env['payment.mypos.log']._gc_mypos_log()
        self.assertTrue(log.exists())
        params.set_param(const.LOG_RETENTION_PARAM, '90')
        self.env['payment.mypos.log']._gc_mypos_log()
        self.assertFalse(log.exists())

    def test_settled_calls_are_forgotten_unsettled_kept(self):
        """The record of calls sent forgets the settled ones past the retention; a call still
        waiting for its status check is never forgotten."""
        Outbox = self.env['payment.mypos.outbox']
        with Outbox._mypos_cursor() as cr:
            for order_id, state in (('GC_SENT', 'sent'), ('GC_DONE', 'recorded')):
                cr.execute(
                    "INSERT INTO payment_mypos_outbox (order_id, method, state, check_count, "
                    "create_date, write_date) VALUES (%s, 'IPCRefund', %s, 0, "
                    "now() - interval '500 days', now() - interval '500 days')",
                    [order_id, state],
                )
        Outbox._gc_mypos_settled_calls()
        with Outbox._mypos_cursor() as cr:
            cr.execute("SELECT order_id FROM payment_mypos_outbox WHERE order_id LIKE 'GC\\_%%'")
            left = [row[0] for row in cr.fetchall()]
            cr.execute("DELETE FROM payment_mypos_outbox WHERE order_id LIKE 'GC\\_%%'")
        self.assertEqual(left, ['GC_SENT'])


@tagged('post_install', '-at_install')
class TestSharedModelsLeftAlone(MyPOSCommon):
    def test_no_chatter_added_to_every_provider(self):
        """payment.provider is every provider's model: myPOS adds no mail.thread to it."""
        self.assertNotIn('message_ids', self.env['payment.provider']._fields)

    def test_payment_method_writes_keep_the_caches(self):
        """Renaming or archiving a payment method clears none of Odoo's caches."""
        method = self.env.ref('payment.payment_method_visa')
        self.registry.cache_invalidated.clear()
        method.write({'name': "Visa (renamed)"})
        method.active = False
        self.env.flush_all()
        self.assertFalse(self.registry.cache_invalidated)
