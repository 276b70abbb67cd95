# Part of payment_mypos. License LGPL-3.
"""A saved card is charged at most once per document, only by its owner, only for what is owed:
lost answers then retries, a charge in flight in another worker, a rollback after myPOS acted,
checks that stop, link holders over Odoo's own payment routes."""

import json
import threading

from odoo import Command, fields, sql_db
from odoo.exceptions import UserError
from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.payment_mypos.const import OUTBOX_LOCK_SPACE
from odoo.addons.payment_mypos.tests.common import CALLS_LOGGER, PEOPLE_LOGGER, TOKEN_LOGGER
from odoo.addons.payment_mypos.tests.common_tokens import (
    MASTERCARD,
    MyPOSBackOfficeCommon,
    MyPOSTokenCommon,
)


@tagged('post_install', '-at_install')
class TestChargeAtMostOnce(MyPOSBackOfficeCommon):
    """A saved card is charged at most once per invoice, whatever is lost, retried or rolled
    back: the earlier charge is settled first, the call is recorded before it is sent."""

    def _posted_payments(self):
        return self.env['account.payment'].search(
            [
                ('payment_transaction_id.invoice_ids', 'in', self.invoice.ids),
                ('state', 'in', ('in_process', 'paid')),
            ]
        )

    def _assert_paid_once(self):
        # What the post-processing cron does (it commits: not here).
        with mute_logger(CALLS_LOGGER):
            self.env['payment.transaction'].search(
                [
                    ('invoice_ids', 'in', self.invoice.ids),
                    ('state', '=', 'done'),
                    ('is_post_processed', '=', False),
                ]
            )._post_process()
        self.env.invalidate_all()
        self.assertEqual(len(self._charges()), 1, "exactly one IPCIAPurchase reached myPOS")
        self.assertEqual(len(self._charged_orders()), 1)
        self.assertEqual(self.invoice.amount_residual, 0.0)
        self.assertEqual(len(self._posted_payments()), 1)

    def _lost_charge(self):
        payment = self._register_payment(api_drop_answer=True, api_faults_remaining=1)
        tx = payment.payment_transaction_id
        self.assertEqual(tx.state, 'pending')
        self.assertEqual(self.invoice.payment_state, 'not_paid')
        return tx

    @mute_logger(TOKEN_LOGGER)
    def test_lost_answer_then_retry_with_the_same_card(self):
        first = self._lost_charge()
        retry = self._register_payment().payment_transaction_id
        self.assertEqual(first.state, 'done', "the earlier charge was settled first")
        self.assertEqual(retry.state, 'error')
        self.assertIn(first.reference, retry.state_message)
        self.assertIn('went through', retry.state_message)
        self._assert_paid_once()

    @mute_logger(TOKEN_LOGGER)
    def test_lost_answer_then_retry_with_another_card(self):
        self._lost_charge()
        self.token = self._save_card(card=MASTERCARD).token_id
        retry = self._register_payment().payment_transaction_id
        self.assertEqual(retry.state, 'error')
        self._assert_paid_once()

    def test_retry_after_the_check_settled_it_before_post_processing(self):
        first = self._lost_charge()
        first.mypos_next_check = fields.Datetime.now()
        with mute_logger(CALLS_LOGGER):
            self.env['payment.transaction']._cron_mypos_check_status()
        self.assertEqual((first.state, first.is_post_processed), ('done', False))
        retry = self._register_payment().payment_transaction_id
        self.assertEqual(retry.state, 'error')
        self.assertTrue(first.is_post_processed, "the refusal post-processes the earlier one")
        self._assert_paid_once()

    def test_charge_in_flight_in_another_request_holds_the_invoice(self):
        """Another worker recorded a charge of the invoice and has not committed yet (its
        transaction is invisible here): a second charge is refused, nothing is sent."""
        with self.env['payment.mypos.outbox']._mypos_cursor() as cr:
            cr.execute(
                """INSERT INTO payment_mypos_outbox (order_id, method, reference, amount,
                       currency_name, lock_keys, state, check_count, create_date)
                   VALUES ('OTHER-WORKER-1', 'IPCIAPurchase', 'INV-OTHER', 100, 'EUR', %s,
                           'sent', 0, now() AT TIME ZONE 'UTC')""",
                [f' inv:{self.invoice.id} '],
            )
        with self.assertRaisesRegex(UserError, "being sent to myPOS"):
            self._register_payment()
        self.assertEqual(self._charges(), [])

    def test_charge_committed_while_this_one_waited_holds_the_invoice(self):
        """Two workers charge the invoice at the same instant: the second waits for the first's
        lock on the invoice, then sees the call the first committed meanwhile and sends nothing
        (system_tests/test_saved_card_charges.py shows it with two Odoo processes)."""
        other = sql_db.db_connect(self.env.cr.dbname).cursor()
        self.addCleanup(other.close)
        other.execute(
            'SELECT pg_advisory_xact_lock(%s, hashtext(%s))',
            [OUTBOX_LOCK_SPACE, f'inv:{self.invoice.id}'],
        )
        other.execute(
            """INSERT INTO payment_mypos_outbox (order_id, method, reference, amount,
                   currency_name, lock_keys, state, check_count, create_date)
               VALUES ('OTHER-WORKER-2', 'IPCIAPurchase', 'INV-OTHER', 100, 'EUR', %s,
                       'sent', 0, now() AT TIME ZONE 'UTC')""",
            [f' inv:{self.invoice.id} '],
        )
        committer = threading.Timer(1.0, other.commit)  # Once this worker waits for the lock.
        committer.start()
        self.addCleanup(committer.cancel)
        with self.assertRaisesRegex(UserError, "being sent to myPOS"):
            self._register_payment()
        self.assertEqual(self._charges(), [])
        with self.env['payment.mypos.outbox']._mypos_cursor() as cr:
            cr.execute("DELETE FROM payment_mypos_outbox WHERE order_id = 'OTHER-WORKER-2'")

    def test_unknown_past_the_expiry_stays_pending_and_a_person_is_told(self):
        """Charged, the answer lost, and myPOS's status answers "unknown" past the expiry: never
        cancelled as "no payment"; the checks stop, a to-do is left, a new charge is refused."""
        first = self._lost_charge()
        self.mypos.reset()  # myPOS's status call knows nothing of it any more.
        self.env['ir.config_parameter'].sudo().set_param(
            'payment_mypos.status_check_expiry_hours', '0'
        )
        first.mypos_next_check = fields.Datetime.now()
        with mute_logger(CALLS_LOGGER):
            self.env['payment.transaction']._cron_mypos_check_status()
        self.assertEqual(first.state, 'pending')
        self.assertFalse(first.mypos_next_check)
        self.assertIn('may have been charged', first.state_message)
        activity = self.invoice.activity_ids
        self.assertEqual(len(activity), 1)
        self.assertIn(first.reference, first.state_message + activity.note + first.reference)
        self.assertEqual(activity.user_id, self.env.ref('base.user_admin'))
        with mute_logger(CALLS_LOGGER):  # The next scheduled runs leave it alone: told once.
            self.env['payment.transaction']._cron_mypos_check_status()
        self.assertEqual(len(self.invoice.activity_ids), 1)
        with self.assertRaisesRegex(UserError, "may have been charged and myPOS cannot tell"):
            self._register_payment()
        self.assertEqual(len(self._charges()), 0, "myPOS forgot it (reset): no new call")

    @mute_logger(PEOPLE_LOGGER)
    def test_rollback_after_the_charge_is_found_and_booked(self):
        """The request that charged the card fails afterwards and rolls back: the call recorded
        before sending is found by the next status check, booked, and a person told."""
        savepoint = self.env.cr.savepoint()
        tx = self._register_payment().payment_transaction_id
        order_id = tx.mypos_order_id
        self.assertEqual(tx.state, 'done')
        savepoint.close(rollback=True)
        self.env.invalidate_all()
        Tx = self.env['payment.transaction']
        self.assertFalse(Tx.search([('mypos_order_id', '=', order_id)]))
        self.assertEqual(self.invoice.payment_state, 'not_paid')
        self.assertEqual([row['order_id'] for row in self._outbox()], [order_id])
        with self.env['payment.mypos.outbox']._mypos_cursor() as cr:  # 11 minutes later.
            cr.execute(
                "UPDATE payment_mypos_outbox SET create_date = create_date - interval '11 min'"
            )
        with mute_logger(
            CALLS_LOGGER, 'odoo.addons.payment_mypos.models.payment_transaction_status'
        ):
            Tx._cron_mypos_check_status()
        found = Tx.search([('mypos_order_id', '=', order_id)])
        self.assertEqual((found.state, found.amount, found.token_id), ('done', 100.0, self.token))
        self.assertEqual(found.invoice_ids, self.invoice)
        self.assertIn('lost its record', found.state_message)
        self.assertEqual(self._outbox()[0]['state'], 'recovered')
        self.assertTrue(self.invoice.activity_ids)
        self._assert_paid_once()


@tagged('post_install', '-at_install')
class TestChargeOwnerAndAmount(MyPOSTokenCommon):
    """Only the customer who saved the card charges it online, never for more than owed, and
    never for zero or less."""

    def setUp(self):
        super().setUp()
        self.token = self._save_card().token_id
        self.colleague = self.env['res.partner'].create(
            {'name': 'Colleague', 'parent_id': self.partner.commercial_partner_id.id}
        )
        self.owner_user = self._portal_user('mypos_owner', self.partner)
        self.colleague_user = self._portal_user('mypos_colleague', self.colleague)

    def _charge_as(self, user, amount=100.0):
        tx = self._token_tx(self.token, amount=amount)
        return self._charge(tx.with_user(user).sudo())

    def test_owner_charges_their_card(self):
        self.assertEqual(self._charge_as(self.owner_user).state, 'done')
        self.assertEqual(len(self._charges()), 1)

    def test_logged_out_link_holder_is_refused(self):
        with self.assertRaisesRegex(UserError, "only be used by the customer who saved it"):
            self._charge_as(self.env.ref('base.public_user'), amount=7.0)
        self.assertEqual(self._charges(), [])

    def test_colleague_of_the_same_company_is_refused(self):
        with self.assertRaisesRegex(UserError, "only be used by the customer who saved it"):
            self._charge_as(self.colleague_user)
        self.assertEqual(self._charges(), [])

    def test_other_customers_cards_are_not_offered_to_a_link_holder(self):
        Token = self.env['payment.token']
        for user in (self.env.ref('base.public_user'), self.colleague_user):
            offered = (
                Token.with_user(user)
                .sudo()
                ._get_available_tokens([self.provider.id], self.partner.id)
            )
            self.assertNotIn(self.token, offered)
        offered = (
            Token.with_user(self.owner_user)
            .sudo()
            ._get_available_tokens([self.provider.id], self.partner.id)
        )
        self.assertIn(self.token, offered)

    def test_never_more_than_the_invoice_owes(self):
        if 'account.move' not in self.env:
            self.skipTest("needs account")
        invoice = self.env['account.move'].create(
            {
                'move_type': 'out_invoice',
                'partner_id': self.partner.id,
                'currency_id': self.currency.id,
                'invoice_line_ids': [
                    Command.create(
                        {'name': "Gym", 'quantity': 1, 'price_unit': 60.0, 'tax_ids': []}
                    )
                ],
            }
        )
        invoice.action_post()
        tx = self._token_tx(self.token, amount=100.0, invoice_ids=[Command.set(invoice.ids)])
        with self.assertRaisesRegex(UserError, "more than the"):
            self._charge(tx.with_user(self.owner_user).sudo())
        self.assertEqual(self._charges(), [])

    def test_zero_and_negative_charges_are_errors_nothing_sent(self):
        for amount in (0.0, -5.0):
            with self.subTest(amount=amount):
                tx = self._charge(self._token_tx(self.token, amount=amount))
                self.assertEqual(tx.state, 'error')
                self.assertIn('more than zero', tx.state_message)
        self.assertEqual(self._charges(), [])

    def test_link_holder_saves_no_card_and_gets_no_customer_data(self):
        """A logged-out holder of the customer's payment link who ticks "save": myPOS is asked
        for no token, and the signed form carries none of the customer's details."""
        tx = self._create_mypos_transaction(tokenize=True)
        public = self.env.ref('base.public_user')
        purchase = dict(tx.with_user(public).sudo()._get_specific_rendering_values(None)['fields'])
        self.assertEqual(purchase['CardTokenRequest'], '0')
        self.assertFalse(tx.tokenize)
        for name in ('CustomerEmail', 'CustomerPhone', 'CustomerAddress', 'CustomerCity'):
            self.assertNotIn(name, purchase)
        own = self._create_mypos_transaction(tokenize=True)
        purchase = dict(
            own.with_user(self.owner_user).sudo()._get_specific_rendering_values(None)['fields']
        )
        self.assertEqual(purchase['CardTokenRequest'], '2')
        self.assertEqual(purchase['CustomerEmail'], self.partner.email)


@tagged('post_install', '-at_install')
class TestChargeThroughThePortal(MyPOSBackOfficeCommon):
    """Odoo's own invoice payment route, over HTTP: whoever holds the invoice's link reaches the
    customer's saved card; only the customer, logged in, charges it, never for more than owed."""

    def setUp(self):
        super().setUp()
        self._portal_user('mypos_portal_owner', self.partner, password='mypos_portal_owner')

    def _pay_invoice_with_the_card(self, amount):
        """What the invoice's payment form posts; returns (result, error message)."""
        params = {
            'provider_id': self.provider.id,
            'payment_method_id': self.token.payment_method_id.id,
            'token_id': self.token.id,
            'amount': amount,
            'flow': 'token',
            'tokenization_requested': False,
            'landing_route': '/my/invoices',
            'access_token': self.invoice._portal_ensure_token(),
        }
        self.env.flush_all()
        body = {'id': 0, 'jsonrpc': '2.0', 'method': 'call', 'params': params}
        with mute_logger('odoo.http', *CALLS_LOGGER):
            response = self.url_open(
                f'/invoice/transaction/{self.invoice.id}',
                data=json.dumps(body),
                headers={'Content-Type': 'application/json'},
            )
        self.env.invalidate_all()
        answer = response.json()
        return answer.get('result'), answer.get('error', {}).get('data', {}).get('message')

    def _online_charges(self):
        return self.env['payment.transaction'].search(
            [('token_id', '=', self.token.id), ('operation', '=', 'online_token')]
        )

    def test_logged_out_link_holder_cannot_charge_the_card(self):
        result, error = self._pay_invoice_with_the_card(7.0)
        self.assertIsNone(result)
        self.assertIn("can only be used by the customer who saved it", error)
        self.assertEqual(self._charges(), [])
        self.assertFalse(self._online_charges(), "nothing is left behind")

    def test_customer_never_charged_more_than_owed(self):
        self.authenticate('mypos_portal_owner', 'mypos_portal_owner')
        result, error = self._pay_invoice_with_the_card(150.0)
        self.assertIsNone(result)
        self.assertIn("150.00\xa0€ is more than the 100.00\xa0€ still owed", error)
        self.assertEqual(self._charges(), [])
        result, error = self._pay_invoice_with_the_card(100.0)
        self.assertIsNone(error)
        self.assertEqual(self._online_charges().state, 'done')
        self.assertEqual(len(self._charges()), 1)

    def test_negative_amount_is_an_error_nothing_sent(self):
        self.authenticate('mypos_portal_owner', 'mypos_portal_owner')
        self._pay_invoice_with_the_card(-5.0)
        self.assertEqual(self._online_charges().state, 'error')
        self.assertIn('more than zero', self._online_charges().state_message)
        self.assertEqual(self._charges(), [])
