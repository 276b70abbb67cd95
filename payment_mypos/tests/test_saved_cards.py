# Part of payment_mypos. License LGPL-3.
"""Saved cards against the fake myPOS, its notifications posted over Odoo's HTTP server: saving a
card (CardTokenRequest 2 at checkout, 1 from the portal), charging it server to server
(IPCIAPurchase), and every answer that may or may not have moved money."""

from unittest.mock import patch

from odoo import fields
from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.payment_mypos import ipc
from odoo.addons.payment_mypos.tests.common import CALLS_LOGGER, TOKEN_LOGGER
from odoo.addons.payment_mypos.tests.common_tokens import (
    MASTERCARD,
    MyPOSBackOfficeCommon,
    MyPOSTokenCommon,
)

SHORT_TIMEOUT = 2  # Seconds: a charge's answer that is late is late after this, in these tests.


@tagged('post_install', '-at_install')
class TestSavingCards(MyPOSTokenCommon):
    def test_support_tokenization(self):
        self.assertTrue(self.provider.support_tokenization)

    def test_checkout_without_saving_asks_no_token(self):
        tx = self._create_mypos_transaction()
        self.assertEqual(dict(self._purchase_fields(tx))['CardTokenRequest'], '0')

    def test_pay_and_save_creates_the_token_once(self):
        """CardTokenRequest=2: the payment is done and the card kept once, whatever follows."""
        tx = self._save_card()
        self.assertEqual(tx.mypos_card_token_request, '2')
        self.assertEqual(tx.state, 'done')
        token = tx.token_id
        self.assertTrue(token)
        tokens = self.mypos.state()['tokens']
        self.assertEqual(list(tokens), [token.provider_ref])
        self.assertEqual(
            (token.partner_id, token.payment_details, token.payment_method_id, token.mypos_sid),
            (self.partner, '0007 (12/30)', self.visa, ipc.const.SANDBOX_SID),
        )
        self.assertFalse(tx.tokenize)
        # myPOS repeats the notification; the status check reads it again: still one token.
        self.assertTrue(self._resend(tx.mypos_order_id)['acknowledged'])
        with mute_logger(CALLS_LOGGER):
            self.assertEqual(tx._mypos_check_status(), 'applied')
        self.assertEqual(
            self.env['payment.token'].search_count([('partner_id', '=', self.partner.id)]), 1
        )

    def test_same_card_saved_twice_is_one_token(self):
        first = self._save_card()
        second = self._save_card()
        other = self._save_card(card=MASTERCARD)
        self.assertEqual(first.token_id, second.token_id)
        self.assertNotEqual(first.token_id, other.token_id)
        self.assertEqual(other.token_id.payment_details, '0004 (12/30)')

    def test_public_partner_never_gets_a_token(self):
        public = self.env.ref('base.public_partner')
        tx = self._create_mypos_transaction(tokenize=True, partner_id=public.id)
        self.assertEqual(dict(self._purchase_fields(tx))['CardTokenRequest'], '0')
        tx.mypos_card_token_request = '2'  # Even if the purchase had asked for one.
        notify = self._sign(self._notification_fields(tx, CardToken='EMUTOKEN1', ExpDate='3012'))
        response = self._post(self.webhook_url, notify)
        self.assertEqual(response.text, 'OK')
        self.assertEqual(tx.state, 'done')
        self.assertFalse(tx.token_id)
        self.assertFalse(self.env['payment.token'].search([('partner_id', '=', public.id)]))

    def test_token_readable_by_its_customer_only(self):
        """A portal customer sees their own saved card and never another customer's."""
        token = self._save_card().token_id
        owner = self._portal_user('mypos_token_owner', self.partner)
        other = self._portal_user(
            'mypos_token_other', self.env['res.partner'].create({'name': 'Other'})
        )
        Token = self.env['payment.token']
        self.assertEqual(Token.with_user(owner).search([]), token)
        self.assertFalse(Token.with_user(other).search([]))
        with self.assertRaises(AccessError):
            token.with_user(other).read(['payment_details'])
        with self.assertRaises(AccessError):
            token.with_user(owner).read(['mypos_sid'])  # The store's SID: administrators only.

    def test_unrequested_token_refused(self):
        """A token in the notification of a purchase that asked for none is refused."""
        tx = self._create_mypos_transaction()
        self._purchase_fields(tx)
        notify = self._sign(self._notification_fields(tx, CardToken='EMUTOKEN1', ExpDate='3012'))
        with mute_logger(CALLS_LOGGER, 'odoo.addons.payment_mypos.controllers.main'):
            response = self._post(self.webhook_url, notify)
        self.assertEqual(response.status_code, 400)
        self.assertIn('card token that Odoo never asked for', response.text)
        self.assertEqual((tx.state, tx.token_id.id), ('draft', False))

    @mute_logger(TOKEN_LOGGER)
    def test_ill_formed_card_pays_without_saving(self):
        tx = self._create_mypos_transaction(tokenize=True)
        self._purchase_fields(tx)
        notify = self._sign(self._notification_fields(tx, CardToken='EMU TOKEN', ExpDate='3013'))
        with mute_logger(CALLS_LOGGER):
            response = self._post(self.webhook_url, notify)
        self.assertEqual(response.text, 'OK')
        self.assertEqual((tx.state, tx.token_id.id), ('done', False))

    def test_portal_validation_stores_the_card_only(self):
        """Adding a card from the portal: CardTokenRequest=1, no amount, no cart, no payment."""
        tx = self._create_mypos_transaction(operation='validation', tokenize=True, amount=0.0)
        purchase = dict(self._purchase_fields(tx))
        self.assertEqual(purchase['CardTokenRequest'], '1')
        self.assertNotIn('Amount', purchase)
        self.assertNotIn('CartItems', purchase)
        tx, result = self._pay(tx)
        self.assertEqual(result.outcome, 'paid')
        self.assertEqual(tx.state, 'done')
        self.assertEqual(tx.token_id.payment_details, '0007 (12/30)')
        notify = self.mypos.notifications(order_id=tx.mypos_order_id)[0]
        self.assertEqual(dict(notify['fields'])['Amount'], '0.00')
        if 'payment_id' in tx._fields:
            tx._post_process()
            self.assertFalse(tx.payment_id, "saving a card is no payment")

    def test_validation_without_token_is_an_error(self):
        tx = self._create_mypos_transaction(operation='validation', tokenize=True, amount=0.0)
        self._purchase_fields(tx)
        notify = self._sign(self._notification_fields(tx, Amount='0.00'))
        response = self._post(self.webhook_url, notify)
        self.assertEqual(response.text, 'OK')
        self.assertEqual(tx.state, 'error')
        self.assertIn('saved no card', tx.state_message)

    def test_validation_with_an_amount_refused(self):
        """A store-only notification that moved money is not the one that was asked for."""
        tx = self._create_mypos_transaction(operation='validation', tokenize=True, amount=0.0)
        self._purchase_fields(tx)
        notify = self._sign(
            self._notification_fields(tx, Amount='1.00', CardToken='EMUTOKEN1', ExpDate='3012')
        )
        with mute_logger(CALLS_LOGGER, 'odoo.addons.payment_mypos.controllers.main'):
            response = self._post(self.webhook_url, notify)
        self.assertEqual(response.status_code, 400)
        self.assertEqual((tx.state, tx.token_id.id), ('draft', False))


@tagged('post_install', '-at_install')
class TestChargingSavedCards(MyPOSTokenCommon):
    def setUp(self):
        super().setUp()
        self.token = self._save_card().token_id

    def test_one_click_payment(self):
        tx = self._charge(self._token_tx(self.token))
        self.assertEqual(tx.state, 'done')
        calls = self._charges()
        self.assertEqual(len(calls), 1)
        charged = self.mypos.order(tx.mypos_order_id)
        self.assertEqual((charged['status'], charged['amount']), ('paid', '100.00'))
        self.assertEqual(tx.provider_reference, charged['ipc_trnref'])
        logs = tx.mypos_log_ids.sorted('id')
        self.assertEqual(
            [(log.direction, log.method) for log in logs],
            [('out', 'IPCIAPurchase'), ('in', 'IPCIAPurchase')],
        )
        self.assertRegex(logs[0].payload, r'CardToken = \[\d+ characters, not shown\]')
        self.assertNotIn(self.token.provider_ref, logs[0].payload)

    def test_declined_charge_is_explained(self):
        tx = self._charge(self._token_tx(self.token), token_decline=21)
        self.assertEqual(tx.state, 'error')
        self.assertIn('declined', tx.state_message)
        self.assertIn('E_TRANSACTION_DECLINED', tx.state_message)
        self.assertEqual(self._charged_orders(), [])

    def test_declined_charge_in_bulgarian(self):
        self.env['res.lang']._activate_lang('bg_BG')
        self.env['ir.module.module']._load_module_terms(['payment_mypos'], ['bg_BG'])
        tx = self._token_tx(self.token).with_context(lang='bg_BG')
        self._charge(tx, token_decline=13)
        self.assertEqual(tx.state, 'error')
        self.assertIn('E_NOT_SUFFICIENT_FUNDS', tx.state_message)
        self.assertNotIn('The saved card was declined', tx.state_message)

    def test_unreachable_is_an_error_nothing_charged(self):
        self.env['ir.config_parameter'].sudo().set_param(
            'payment_mypos.sandbox_url', 'http://127.0.0.1:9/vmp/checkout-test'
        )
        tx = self._charge(self._token_tx(self.token))
        self.assertEqual(tx.state, 'error')
        self.assertIn('not charged', tx.state_message)

    def _assert_pending_then_settled(self, tx, charged):
        self.assertEqual(tx.state, 'pending')
        self.assertTrue(tx.mypos_next_check)
        self.assertEqual(len(self._charges()), 1)
        tx.mypos_next_check = fields.Datetime.now()
        with mute_logger(CALLS_LOGGER):
            self.env['payment.transaction']._cron_mypos_check_status()
        self.assertEqual(len(self._charges()), 1, "a charge is never sent again")
        self.assertEqual(tx.state, 'done' if charged else 'pending')
        self.assertEqual(len(self._charged_orders()), 1 if charged else 0)

    def test_lost_answer_then_status_check(self):
        tx = self._charge(self._token_tx(self.token), api_drop_answer=True, api_faults_remaining=1)
        self.assertIn('may have been charged', tx.state_message)
        self._assert_pending_then_settled(tx, charged=True)

    def test_timeout_then_status_check(self):
        with patch.object(ipc.const, 'REQUEST_TIMEOUT', SHORT_TIMEOUT):
            tx = self._charge(
                self._token_tx(self.token), api_timeout=SHORT_TIMEOUT + 2, api_faults_remaining=1
            )
        self._assert_pending_then_settled(tx, charged=True)

    def test_http_error_then_status_check_finds_nothing(self):
        tx = self._charge(self._token_tx(self.token), api_http_status=503, api_faults_remaining=1)
        self._assert_pending_then_settled(tx, charged=False)

    def test_replayed_request_does_not_charge_twice(self):
        """A request replayed after a serialization failure sends the same OrderID; myPOS
        refuses it as a duplicate and the status check finds the first charge."""
        savepoint = self.env.cr.savepoint()
        first = self._charge(self._token_tx(self.token, reference='REPLAYED'))
        self.assertEqual(first.state, 'done')
        order_id = first.mypos_order_id
        savepoint.close(rollback=True)
        self.env.invalidate_all()
        replayed = self._charge(self._token_tx(self.token, reference='REPLAYED'))
        self.assertEqual(replayed.mypos_order_id, order_id)
        self.assertEqual(replayed.state, 'done')
        self.assertEqual(len(self._charges()), 2)
        self.assertEqual(len(self._charged_orders()), 1)

    def test_new_charge_waits_for_a_pending_one(self):
        first = self._charge(
            self._token_tx(self.token), api_http_status=503, api_faults_remaining=1
        )
        self.assertEqual(first.state, 'pending')
        with self.assertRaisesRegex(UserError, "still waiting for myPOS"):
            self._charge(self._token_tx(self.token), api_http_status=503)
        self.assertEqual(len(self._charges()), 1)

    def test_draft_never_sent_holds_nothing(self):
        """A charge created but never sent (the shopper left) neither blocks a new one nor is
        said to wait for myPOS."""
        abandoned = self._token_tx(self.token)
        tx = self._charge(self._token_tx(self.token))
        self.assertEqual((abandoned.state, tx.state), ('draft', 'done'))
        self.assertEqual(len(self._charges()), 1)
        self.assertFalse(self._api_calls('IPCGetTxnStatus'), "nothing to ask about a draft")

    def test_archived_token_not_offered_nor_charged(self):
        Token = self.env['payment.token']
        self.assertIn(self.token, Token._get_available_tokens([self.provider.id], self.partner.id))
        tx = self._token_tx(self.token)  # Created just before the customer deletes the card.
        self.token.action_archive()
        self.assertNotIn(
            self.token, Token._get_available_tokens([self.provider.id], self.partner.id)
        )
        with self.assertRaisesRegex(UserError, "cannot be used any more"):
            self._charge(tx)
        self.assertEqual(self._charges(), [])

    def test_token_of_another_store_not_offered_nor_charged(self):
        self.token.mypos_sid = '000000000000099'
        Token = self.env['payment.token']
        self.assertNotIn(
            self.token, Token._get_available_tokens([self.provider.id], self.partner.id)
        )
        with self.assertRaisesRegex(UserError, "another myPOS store"):
            self._charge(self._token_tx(self.token))
        self.assertEqual(self._charges(), [])

    def test_refund_of_a_token_payment(self):
        tx = self._charge(self._token_tx(self.token))
        with mute_logger(CALLS_LOGGER):
            tx.action_refund(amount_to_refund=40.0)
        self.env.invalidate_all()
        refund_tx = tx.child_transaction_ids
        self.assertEqual((refund_tx.state, refund_tx.amount), ('done', -40.0))
        self.assertEqual(self.mypos.order(tx.mypos_order_id)['refunded'], '40.00')


@tagged('post_install', '-at_install')
class TestBackOfficeCharge(MyPOSBackOfficeCommon):
    """An accountant registers a payment of an invoice with the customer's saved card."""

    def test_charge_a_saved_card_on_an_invoice(self):
        payment = self._register_payment()
        tx = payment.payment_transaction_id
        self.assertEqual((tx.operation, tx.state, tx.amount), ('offline', 'done', 100.0))
        self.assertEqual(tx.token_id, self.token)
        self.assertIn(payment.state, ('in_process', 'paid'))
        self.assertIn(self.invoice.payment_state, ('paid', 'in_payment'))
        self.assertEqual(self.mypos.order(tx.mypos_order_id)['amount'], '100.00')
        self.assertEqual(len(self._charges()), 1)

    def test_declined_card_leaves_the_invoice_unpaid(self):
        payment = self._register_payment(token_decline=21)
        tx = payment.payment_transaction_id
        self.assertEqual(tx.state, 'error')
        self.assertIn('E_TRANSACTION_DECLINED', tx.state_message)
        self.assertEqual(payment.state, 'canceled')
        self.assertEqual(self.invoice.payment_state, 'not_paid')

    def test_lost_answer_then_the_status_check_posts_the_payment(self):
        """The answer is lost after myPOS charged the card: the invoice is paid once the status
        check has settled the charge, with one payment and one charge."""
        payment = self._register_payment(api_drop_answer=True, api_faults_remaining=1)
        tx = payment.payment_transaction_id
        self.assertEqual(tx.state, 'pending')
        self.assertEqual(self.invoice.payment_state, 'not_paid')
        tx.mypos_next_check = fields.Datetime.now()
        post_process = self.env.ref('payment.cron_post_process_payment_tx')
        triggers = self.env['ir.cron.trigger'].search_count([('cron_id', '=', post_process.id)])
        with mute_logger(CALLS_LOGGER):
            self.env['payment.transaction']._cron_mypos_check_status()
        self.assertEqual(
            self.env['ir.cron.trigger'].search_count([('cron_id', '=', post_process.id)]),
            triggers + 1,
            "a charge settled late has its post-processing triggered at once",
        )
        with mute_logger(CALLS_LOGGER):  # What the triggered cron does (it commits: not here).
            tx._post_process()
        self.env.invalidate_all()
        self.assertEqual(tx.state, 'done')
        self.assertEqual(tx.payment_id, payment)
        self.assertIn(payment.state, ('in_process', 'paid'))
        self.assertIn(self.invoice.payment_state, ('paid', 'in_payment'))
        self.assertEqual(len(self._charges()), 1)


@tagged('post_install', '-at_install')
class TestTokenChargeReliability(MyPOSTokenCommon):
    """Every answer a charge can get, tried in turn: how often the card was charged, what Odoo
    shows at once and after the status check (docs/RELIABILITY.md, section 8)."""

    CASES = [
        ('signed success', {}, 'done', 'done', 1),
        ('declined 21 E_TRANSACTION_DECLINED', {'token_decline': 21}, 'error', 'error', 0),
        ('declined 13 E_NOT_SUFFICIENT_FUNDS', {'token_decline': 13}, 'error', 'error', 0),
        ('declined 24 E_3DS_AUTHENTICATION_FAILED', {'token_decline': 24}, 'error', 'error', 0),
        ('HTTP 503, not processed', {'api_http_status': 503}, 'pending', 'pending', 0),
        ('answer lost after the charge', {'api_drop_answer': True}, 'pending', 'done', 1),
        ('answer later than the timeout', {'api_timeout': SHORT_TIMEOUT + 2}, 'pending', 'done', 1),
        ('garbage answer', {'api_garbage': True}, 'pending', 'done', 1),
        ('wrongly signed answer', {'api_bad_signature': True}, 'pending', 'done', 1),
    ]

    def _paid_count(self):
        return len(self._charged_orders())

    def test_token_charge_faults(self):
        token = self._save_card().token_id
        for name, faults, at_once, settled, charged in self.CASES:
            with self.subTest(case=name):
                before = self._paid_count()
                if faults:
                    faults = dict(faults, api_faults_remaining=1)
                with patch.object(ipc.const, 'REQUEST_TIMEOUT', SHORT_TIMEOUT):
                    tx = self._charge(self._token_tx(token), **faults)
                state_at_once = tx.state
                if tx.state == 'pending':
                    tx.mypos_next_check = fields.Datetime.now()
                    with mute_logger(CALLS_LOGGER):
                        self.env['payment.transaction']._cron_mypos_check_status()
                sent = len([c for c in self._charges() if c['order_id'] == tx.mypos_order_id])
                row = {
                    'case': name,
                    'sent': sent,
                    'charged': self._paid_count() - before,
                    'state_at_once': state_at_once,
                    'state_after_check': tx.state,
                }
                if tx.state == 'pending':  # Closed, as a person would in the end.
                    tx._set_canceled()
                # Shown paid (post-processed), as the shopper's status page does: a charge of
                # the same card and amount not yet shown would refuse the next case.
                tx.is_post_processed = True
                self.assertEqual(
                    (row['sent'], row['charged'], state_at_once, row['state_after_check']),
                    (1, charged, at_once, settled),
                )
        self._replayed_case(token)
        self._second_click_case(token)

    def _replayed_case(self, token):
        """Odoo replays the request after a serialization failure: same OrderID, refused by myPOS
        as a duplicate, settled at once by a status query."""
        before = self._paid_count()
        savepoint = self.env.cr.savepoint()
        first_order_id = self._charge(self._token_tx(token, reference='TOK-REPLAY')).mypos_order_id
        savepoint.close(rollback=True)
        self.env.invalidate_all()
        replayed = self._charge(self._token_tx(token, reference='TOK-REPLAY'))
        row = {
            'case': 'request replayed after a serialization failure',
            'sent': len([c for c in self._charges() if c['order_id'] == replayed.mypos_order_id]),
            'charged': self._paid_count() - before,
            'state_at_once': replayed.state,
            'state_after_check': replayed.state,
        }
        self.assertEqual(
            (first_order_id, row['sent'], row['charged']), (replayed.mypos_order_id, 2, 1)
        )
        self.assertEqual(replayed.state, 'done')
        replayed.is_post_processed = True  # Shown paid, as after every case above.
        return row

    def _second_click_case(self, token):
        """A second charge of the same documents while the first waits for myPOS is refused."""
        before = self._paid_count()
        first = self._charge(self._token_tx(token), api_http_status=503, api_faults_remaining=1)
        with self.assertRaises(UserError):
            self._charge(self._token_tx(token))
        row = {
            'case': 'second charge while the first is pending',
            'sent': len([c for c in self._charges() if c['order_id'] == first.mypos_order_id]),
            'charged': self._paid_count() - before,
            'state_at_once': first.state,
            'state_after_check': first.state,
        }
        self.assertEqual((row['sent'], row['charged'], first.state), (1, 0, 'pending'))
        return row
