# Part of payment_mypos. License LGPL-3.
"""Money state when answers are lost or myPOS changes its mind (docs/RELIABILITY.md): a refund
whose answer was lost is never made twice; a reversal after Odoo confirmed is booked once."""

from odoo import Command, fields
from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user, tagged
from odoo.tools import mute_logger

from odoo.addons.payment_mypos.tests.common import (
    CALLS_LOGGER,
    PEOPLE_LOGGER,
    REFUND_LOGGER,
    SALE_LINE_TAXES,
    refund,
)
from odoo.addons.payment_mypos.tests.common_fake import MyPOSFakeCommon, MyPOSPaidCommon


@tagged('post_install', '-at_install')
class TestLostAnswers(MyPOSPaidCommon):
    def _settle(self, refund_tx):
        refund_tx.mypos_next_check = fields.Datetime.now()
        with mute_logger(CALLS_LOGGER):
            self.env['payment.transaction']._cron_mypos_check_status()

    def test_lost_refund_answer_never_refunds_twice(self):
        """myPOS makes the refund, then the connection closes without an answer."""
        self.mypos.set_faults(api_drop_answer=True, api_faults_remaining=1)
        refund_tx = self._refund(10.0)
        self.assertEqual(refund_tx.state, 'pending')
        self.assertRegex(refund_tx.state_message, "broke after the request was sent")
        self.assertEqual(len(self.mypos.refunds()), 1)  # myPOS did refund.
        with self.assertRaisesRegex(UserError, "still waiting for myPOS"):
            self.tx.action_refund(amount_to_refund=10.0)
        self.assertEqual(len(self._api_calls('IPCRefund')), 1)
        self._settle(refund_tx)
        self.assertEqual(refund_tx.state, 'done')
        self._assert_outbound_payment(refund_tx, 10.0)
        self.assertEqual(len(self.mypos.refunds()), 1)

    def test_long_reference_refunds_get_distinct_order_ids(self):
        """Two refunds of a payment with a 70-character reference get different OrderIDs."""
        tx = self._create_mypos_transaction(reference='L' * 70)
        tx, _result = self._pay(tx)
        tx._post_process()
        first = refund(tx, 1.0)
        second = refund(tx, 1.0)
        self.assertEqual((first.state, second.state), ('done', 'done'))
        self.assertNotEqual(first.mypos_order_id, second.mypos_order_id)
        self.assertNotIn('-', first.mypos_order_id + second.mypos_order_id)


@tagged('post_install', '-at_install')
class TestRollbackAfterDone(MyPOSPaidCommon):
    def _rollback(self, tx):
        fields_ = self._notification_fields(tx, method='IPCPurchaseRollback')
        return self._post(self.webhook_url, self._sign(fields_))

    def _reverse(self, tx):
        """myPOS reverses the payment and posts its signed IPCPurchaseRollback to the webhook;
        return Odoo's answer (HTTP status, body)."""
        with mute_logger(PEOPLE_LOGGER, REFUND_LOGGER):  # Booked, and a person told.
            self.mypos.reverse(tx.mypos_order_id, self._deliver)
        record = self.mypos.notifications(tx.mypos_order_id, 'IPCPurchaseRollback')[-1]
        return record['http_status'], record['body']

    def test_rollback_after_done_is_booked_once(self):
        documents, order = {}, None  # The paid sales order, when sale is installed.
        if 'sale.order' in self.env:
            product = self.env['product.product'].create({'name': "Lamp", 'list_price': 100.0})
            order = self.env['sale.order'].create(
                {
                    'partner_id': self.partner.id,
                    'order_line': [Command.create({'product_id': product.id, 'price_unit': 100.0})],
                }
            )
            order.order_line[SALE_LINE_TAXES] = False
            documents = {'sale_order_ids': [Command.set(order.ids)]}
        tx, result = self._pay(self._create_mypos_transaction(**documents))
        self.assertEqual((result.outcome, tx.state), ('paid', 'done'))
        tx._post_process()
        for _attempt in range(3):  # myPOS reverses; its rollback is replayed.
            self.assertEqual(self._reverse(tx), (200, 'OK'))
        self.assertEqual(self.mypos.order(tx.mypos_order_id)['status'], 'reversed')
        reversal = tx.child_transaction_ids
        self.assertEqual(len(reversal), 1)
        self.assertEqual(
            (reversal.state, reversal.operation, reversal.amount, reversal.mypos_is_reversal),
            ('done', 'refund', -tx.amount, True),
        )
        self.assertEqual(tx.state, 'done')
        self.assertRegex(tx.state_message, "reversed this payment")
        if order:  # The salesperson's to-do on the paid order.
            activities = order.activity_ids
            self.assertEqual(len(activities), 1)
            self.assertRegex(activities.summary, tx.reference)
            self.assertFalse(activities.user_id.share)
        if self.account_payment_installed:
            reversal._post_process()
            self.assertEqual(
                (reversal.payment_id.payment_type, reversal.payment_id.amount),
                ('outbound', tx.amount),
            )
            self.assertEqual(reversal.payment_id.source_payment_id, tx.payment_id)
        with self.assertRaises(UserError):  # Nothing left to refund.
            refund(tx, 1.0)

    def test_rollback_after_a_refund_is_left_to_a_person(self):
        """Refunded in part already: the reversal is reported, once, and nothing is booked."""
        refund_tx = self._refund(10.0)
        self.assertEqual(refund_tx.state, 'done')
        for _attempt in range(2):
            self.assertEqual(self._reverse(self.tx), (200, 'OK'))
        self.assertEqual(self.tx.child_transaction_ids, refund_tx)
        self.assertRegex(self.tx.state_message, "nothing was booked automatically")

    def test_rollback_before_done_cancels(self):
        tx = self._create_mypos_transaction()
        response = self._rollback(tx)
        self.assertEqual((response.text, tx.state), ('OK', 'cancel'))
        self.assertFalse(tx.child_transaction_ids)


@tagged('post_install', '-at_install')
class TestLogAccess(MyPOSPaidCommon):
    def test_log_readable_only_with_the_transactions(self):
        self.assertTrue(self.tx.mypos_log_ids)
        employee = new_test_user(self.env, 'mypos_employee', groups='base.group_user')
        with self.assertRaises(AccessError):
            self.env['payment.mypos.log'].with_user(employee).search([])
        with self.assertRaises(AccessError):
            self.tx.mypos_log_ids.with_user(employee).read(['payload'])
        # Who may read payment transactions: invoicing users with account_payment, else only
        # administrators (payment's own access rights).
        readers = self.env.ref('account.group_account_invoice', raise_if_not_found=False)
        group = 'account.group_account_invoice' if readers else 'base.group_system'
        accountant = new_test_user(self.env, 'mypos_accountant', groups=f'base.group_user,{group}')
        logs = (
            self.env['payment.mypos.log']
            .with_user(accountant)
            .search([('transaction_id', '=', self.tx.id)])
        )
        self.assertEqual(logs, self.tx.mypos_log_ids)
        self.assertTrue(logs.read(['payload']))
        # Another company's transactions, and so their logs, stay out of reach.
        other = self.env['res.company'].create({'name': "Other Co"})
        self.env.flush_all()
        self.env.cr.execute(
            'UPDATE payment_transaction SET company_id = %s WHERE id = %s', [other.id, self.tx.id]
        )
        self.env.invalidate_all()
        self.assertFalse(
            self.env['payment.mypos.log']
            .with_user(accountant)
            .search([('transaction_id', '=', self.tx.id)])
        )

    def test_replayed_notification_counted_not_added(self):
        count = len(self.tx.mypos_log_ids)
        fields_ = self._sign(self._notification_fields(self.tx, IPC_Trnref=self.trnref))
        for _attempt in range(5):
            self.assertEqual(self._post(self.webhook_url, fields_).text, 'OK')
        self.assertEqual(len(self.tx.mypos_log_ids), count + 1)
        self.assertEqual(self.tx.mypos_log_ids.sorted('id')[-1].repeat_count, 5)


@tagged('post_install', '-at_install')
class TestHostedPageReturn(MyPOSFakeCommon):
    """The shopper comes back from myPOS's page with the message myPOS signed for the browser."""

    def _return(self, result):
        response = self._post(result.return_url, result.return_fields)
        self.assertIn(response.status_code, (302, 303))
        self.assertTrue(response.headers['Location'].endswith('/payment/status'))

    def test_return_after_the_notification_keeps_the_payment(self):
        tx, result = self._pay()
        self.assertEqual(
            (result.outcome, result.return_method, tx.state), ('paid', 'IPCPurchaseOK', 'done')
        )
        self._return(result)
        self.assertEqual((tx.state, tx.provider_reference), ('done', result.ipc_trnref))

    def test_return_before_the_notification_waits_then_the_check_pays(self):
        """myPOS's signed OK alone never pays: pending until the status check finds the payment."""
        tx, result = self._pay(notify_drop=True)
        self._return(result)
        self.assertEqual(tx.state, 'pending')
        with mute_logger(CALLS_LOGGER):
            tx.action_mypos_check_status()
        self.env.invalidate_all()
        self.assertEqual((tx.state, tx.provider_reference), ('done', result.ipc_trnref))
        self.assertEqual(len(self._api_calls('IPCGetTxnStatus')), 1)

    def test_cancel_on_the_page_cancels(self):
        tx = self._create_mypos_transaction()
        result = self.mypos.cancel(self._purchase_fields(tx))
        self.assertEqual(result.return_fields[0], ('IPCmethod', 'IPCPurchaseCancel'))
        self._return(result)
        self.assertEqual(tx.state, 'cancel')
        self.assertEqual(self.mypos.order(tx.mypos_order_id)['status'], 'cancelled')
