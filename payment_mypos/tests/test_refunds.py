# Part of payment_mypos. License LGPL-3.

from odoo import fields, sql_db
from odoo.exceptions import UserError
from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.payment_mypos import ipc
from odoo.addons.payment_mypos.const import REFUND_LOCK_SPACE
from odoo.addons.payment_mypos.tests.common import CALLS_LOGGER, PEOPLE_LOGGER
from odoo.addons.payment_mypos.tests.common_fake import MyPOSPaidCommon


@tagged('post_install', '-at_install')
class TestRefunds(MyPOSPaidCommon):
    # === Success === #

    def test_support_refund_is_partial(self):
        self.assertEqual(self.provider.support_refund, 'partial')

    def test_full_refund_through_the_refund_wizard(self):
        """Odoo's Refund wizard sends one signed IPCRefund; the refund is done and paid out."""
        if not self.account_payment_installed:
            self.skipTest("account_payment is not installed")
        wizard = (
            self.env['payment.refund.wizard']
            .with_context(
                active_model='account.payment',
                active_id=self.tx.payment_id.id,
            )
            .create({})
        )
        self.assertEqual(wizard.amount_available_for_refund, 100.0)
        with mute_logger(CALLS_LOGGER):
            wizard.action_refund()
        self.env.invalidate_all()
        refund_tx = self.tx.child_transaction_ids
        self.assertEqual((refund_tx.state, refund_tx.amount), ('done', -100.0))
        self.assertEqual(refund_tx.provider_reference, self.trnref)
        calls = self._api_calls('IPCRefund')
        self.assertEqual(len(calls), 1)
        self.assertEqual(
            (calls[0]['ipc_trnref'], calls[0]['order_id'], calls[0]['amount']),
            (self.trnref, refund_tx.mypos_order_id, '100.00'),
        )
        self.assertNotEqual(refund_tx.mypos_order_id, self.tx.mypos_order_id)
        self.assertEqual(self.mypos.order(self.tx.mypos_order_id)['refunded'], '100.00')
        self._assert_outbound_payment(refund_tx, 100.0)

    def test_refund_done_triggers_post_processing(self):
        cron = self.env.ref('payment.cron_post_process_payment_tx')
        triggers = self.env['ir.cron.trigger'].search_count([('cron_id', '=', cron.id)])
        self._refund(30.0)
        self.assertGreater(
            self.env['ir.cron.trigger'].search_count([('cron_id', '=', cron.id)]),
            triggers,
        )

    def test_two_partial_refunds(self):
        """Two partial refunds up to the amount paid are each sent once and done."""
        first = self._refund(40.0)
        second = self._refund(60.0)
        self.assertEqual((first.state, first.amount), ('done', -40.0))
        self.assertEqual((second.state, second.amount), ('done', -60.0))
        self.assertNotEqual(first.mypos_order_id, second.mypos_order_id)
        self.assertEqual([c['amount'] for c in self._api_calls('IPCRefund')], ['40.00', '60.00'])
        self.assertEqual(self.mypos.order(self.tx.mypos_order_id)['refunded'], '100.00')
        self._assert_outbound_payment(first, 40.0)
        self._assert_outbound_payment(second, 60.0)

    def test_over_refund_refused(self):
        """More than what is left to refund is refused by Odoo and nothing is sent."""
        self._refund(70.0)
        with self.assertRaisesRegex(UserError, "exceeds what is left"):
            self.tx.action_refund(amount_to_refund=30.01)
        with self.assertRaisesRegex(UserError, "exceeds what is left"):
            self.tx.action_refund()  # The full amount.
        self.assertEqual(len(self._api_calls('IPCRefund')), 1)
        self.assertEqual(len(self.tx.child_transaction_ids), 1)

    # === Failures: error, and nothing else changes === #

    def _assert_refund_error(self, refund_tx, pattern):
        self.assertEqual(refund_tx.state, 'error')
        self.assertRegex(refund_tx.state_message, pattern)
        self.assertFalse(refund_tx.mypos_next_check)
        self.assertEqual(self.tx.state, 'done')
        self.assertEqual(self.tx.provider_reference, self.trnref)
        if self.account_payment_installed:
            refund_tx._post_process()
            self.assertFalse(refund_tx.payment_id)

    def test_insufficient_balance(self):
        self.mypos.set_faults(refund_insufficient_funds=True)
        refund_tx = self._refund(10.0)
        self._assert_refund_error(refund_tx, r"Error 13 E_NOT_SUFFICIENT_FUNDS.*top up")
        self.assertEqual(self.mypos.refunds(), [])
        # An error does not block the next refund.
        self.mypos.reset_faults()
        self.assertEqual(self._refund(10.0).state, 'done')

    def test_refund_not_permitted(self):
        """myPOS refuses to refund a purchase it reversed: the refund is in error (14)."""
        reversed_tx, result = self._pay(notify_fail_once=True)
        self.assertEqual((result.outcome, reversed_tx.state), ('reversed', 'cancel'))
        reversed_tx.write({'state': 'done', 'provider_reference': result.ipc_trnref})
        with mute_logger(CALLS_LOGGER):
            reversed_tx.action_refund(amount_to_refund=5.0)
        refund_tx = reversed_tx.child_transaction_ids
        self.assertEqual(refund_tx.state, 'error')
        self.assertRegex(refund_tx.state_message, "E_TRANSACTION_NOT_PERMITTED")

    def test_invalid_parameters(self):
        self.tx.provider_reference = '999999999'
        refund_tx = self._refund(10.0)
        self.assertEqual(refund_tx.state, 'error')
        self.assertRegex(refund_tx.state_message, "Error 5 E_INVALID_PARAMS")
        self.assertEqual(self.mypos.refunds(), [])

    def test_network_error_before_sending(self):
        """myPOS unreachable (connection refused): the refund was not sent, so it is in error."""
        self.env['ir.config_parameter'].sudo().set_param(
            'payment_mypos.sandbox_url', 'http://127.0.0.1:9/vmp/checkout-test'
        )
        refund_tx = self._refund(10.0)
        self._assert_refund_error(refund_tx, "cannot be reached")

    # === Uncertain answers: pending, never re-sent, settled by the status check === #

    def _assert_pending_then_settled(self, refund_tx, processed):
        self.assertEqual(refund_tx.state, 'pending')
        self.assertTrue(refund_tx.mypos_next_check)
        self.assertEqual(len(self._api_calls('IPCRefund')), 1)
        # The scheduled action later asks myPOS instead of sending the refund again.
        refund_tx.mypos_next_check = fields.Datetime.now()
        with mute_logger(CALLS_LOGGER):
            self.env['payment.transaction']._cron_mypos_check_status()
        self.assertEqual(len(self._api_calls('IPCRefund')), 1)
        if processed:
            self.assertEqual(refund_tx.state, 'done')
            self.assertFalse(refund_tx.mypos_next_check)
            self._assert_outbound_payment(refund_tx, 10.0)
        else:
            self.assertEqual(refund_tx.state, 'pending')
            self.assertEqual(refund_tx.mypos_check_count, 1)
            self.assertTrue(refund_tx.mypos_next_check)

    def test_http_5xx_leaves_pending(self):
        self.mypos.set_faults(api_http_status=503, api_faults_remaining=1)
        self._assert_pending_then_settled(self._refund(10.0), processed=False)

    def test_garbage_answer_leaves_pending(self):
        self.mypos.set_faults(api_garbage=True, api_faults_remaining=1)
        self._assert_pending_then_settled(self._refund(10.0), processed=True)

    def test_wrongly_signed_answer_leaves_pending(self):
        self.mypos.set_faults(api_bad_signature=True, api_faults_remaining=1)
        self._assert_pending_then_settled(self._refund(10.0), processed=True)

    def test_unsigned_answer_leaves_pending(self):
        self.mypos.set_faults(api_unsigned=True, api_faults_remaining=1)
        self._assert_pending_then_settled(self._refund(10.0), processed=True)

    def test_timeout_then_status_check(self):
        """A timeout leaves the refund pending; the status check finds it made and settles it."""
        self.mypos.set_faults(api_timeout=ipc.const.REQUEST_TIMEOUT + 2, api_faults_remaining=1)
        refund_tx = self._refund(10.0)
        self.assertRegex(refund_tx.state_message, "not sent again")
        self._assert_pending_then_settled(refund_tx, processed=True)

    def test_zero_written_otherwise_is_unclear_not_a_refusal(self):
        """A signed Status of '00' or ' 0' after myPOS made the refund: pending and checked,
        never "refused"; a second refund is refused meanwhile; one refund reached myPOS."""
        for status in ('00', ' 0'):
            with self.subTest(status=status):
                self.mypos.reset_faults()
                self.mypos.set_faults(api_status_text=status, api_faults_remaining=1)
                refund_tx = self._refund(10.0)
                self.assertEqual(refund_tx.state, 'pending')
                self.assertTrue(refund_tx.mypos_next_check)
                with self.assertRaisesRegex(UserError, 'still waiting'):
                    self._refund(10.0)
                refund_tx.mypos_next_check = fields.Datetime.now()
                with mute_logger(CALLS_LOGGER):
                    self.env['payment.transaction']._cron_mypos_check_status()
                self.assertEqual(refund_tx.state, 'done')
        self.assertEqual(len(self.mypos.refunds(self.tx.mypos_order_id)), 2)
        self.assertEqual(len(self._api_calls('IPCRefund')), 2)

    # === Never twice === #

    def test_double_click_sends_once(self):
        """While a refund waits for myPOS, another refund of the payment is refused."""
        self.mypos.set_faults(api_http_status=503, api_faults_remaining=1)
        refund_tx = self._refund(10.0)
        self.assertEqual(refund_tx.state, 'pending')
        with self.assertRaisesRegex(UserError, "still waiting for myPOS"):
            self.tx.action_refund(amount_to_refund=10.0)
        self.assertEqual(len(self._api_calls('IPCRefund')), 1)
        self.assertEqual(len(self.tx.child_transaction_ids), 1)

    def test_concurrent_refund_refused(self):
        """A refund of the same payment being sent by another request is refused at once."""
        other = sql_db.db_connect(self.env.cr.dbname).cursor()
        try:
            other.execute('SELECT pg_advisory_lock(%s, %s)', [REFUND_LOCK_SPACE, self.tx.id])
            with self.assertRaisesRegex(UserError, "being sent to myPOS right now"):
                self.tx.action_refund(amount_to_refund=10.0)
        finally:
            other.execute('SELECT pg_advisory_unlock_all()')
            other.close()
        self.assertEqual(self._api_calls('IPCRefund'), [])
        self.assertEqual(self._refund(10.0).state, 'done')

    def test_replayed_request_does_not_refund_twice(self):
        """A request replayed after a serialization failure re-sends the same OrderID, which
        myPOS refuses as a duplicate: the money moves once and a status check settles it at
        once, as for a saved card's charge (the one money path)."""
        savepoint = self.env.cr.savepoint()
        first = self._refund(10.0)
        self.assertEqual(first.state, 'done')
        order_id = first.mypos_order_id
        savepoint.close(rollback=True)  # What Odoo does before replaying the request.
        self.env.invalidate_all()
        replayed = self._refund(10.0)
        self.assertEqual(replayed.mypos_order_id, order_id)
        self.assertEqual((replayed.state, replayed.mypos_next_check), ('done', False))
        self.assertEqual(len(self.mypos.refunds()), 1)
        self.assertEqual(
            [call['method'] for call in self.mypos.api_calls()[-2:]],
            ['IPCRefund', 'IPCGetTxnStatus'],
        )
        self.assertEqual(self.mypos.order(self.tx.mypos_order_id)['refunded'], '10.00')

    @mute_logger(PEOPLE_LOGGER)
    def test_rollback_after_the_refund_is_found_and_booked(self):
        """The request that made the refund fails afterwards and rolls back: the call recorded
        before sending is found by the next status check and booked as a done refund, which the
        next refund counts."""
        savepoint = self.env.cr.savepoint()
        order_id = self._refund(40.0).mypos_order_id
        savepoint.close(rollback=True)
        self.env.invalidate_all()
        Tx = self.env['payment.transaction']
        self.assertFalse(Tx.search([('mypos_order_id', '=', order_id)]))
        self.assertFalse(self.tx.child_transaction_ids)
        self.assertEqual(self.mypos.order(self.tx.mypos_order_id)['refunded'], '40.00')
        with self.env['payment.mypos.outbox']._mypos_cursor() as cr:  # 11 minutes later.
            cr.execute(
                "UPDATE payment_mypos_outbox SET create_date = create_date - interval '11 min' "
                "WHERE order_id = %s",
                [order_id],
            )
        with mute_logger(CALLS_LOGGER):
            Tx._cron_mypos_check_status()
        found = Tx.search([('mypos_order_id', '=', order_id)])
        self.assertEqual(
            (found.state, found.operation, found.amount, found.source_transaction_id),
            ('done', 'refund', -40.0, self.tx),
        )
        self.assertIn('lost its record', found.state_message)
        self.assertEqual([row['state'] for row in self._outbox()], ['recovered'])
        self._assert_outbound_payment(found, 40.0)
        with self.assertRaisesRegex(UserError, 'exceeds what is left'):
            self._refund(70.0)
        self.assertEqual(len(self._api_calls('IPCRefund')), 1)

    # === The log === #

    def test_calls_are_logged_redacted(self):
        refund_tx = self._refund(10.0)
        logs = refund_tx.mypos_log_ids.sorted('id')
        self.assertEqual(
            [(log.direction, log.method) for log in logs],
            [('out', 'IPCRefund'), ('in', 'IPCRefund')],
        )
        self.assertIn(f'IPC_Trnref = {self.trnref}', logs[0].payload)
        self.assertIn('Amount = 10.00', logs[1].payload)
        for log in logs:
            self.assertRegex(log.payload, r'Signature = \[\d+ characters, not shown\]')
        self.assertEqual(refund_tx.mypos_log_count, 2)
        # The purchase's notification is in its own log.
        self.assertIn('IPCPurchaseNotify', self.tx.mypos_log_ids.mapped('method'))
