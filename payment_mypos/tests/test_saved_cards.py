# Part of payment_mypos. License LGPL-3.
"""Saved cards against the myPOS emulator over real HTTP: saving a card (CardTokenRequest 2 at
checkout, 1 from the portal), charging it server to server (IPCIAPurchase), and every answer
that may or may not have moved money."""

import json
from unittest.mock import patch

from odoo import Command, fields
from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.payment_mypos import ipc
from odoo.addons.payment_mypos.tests.common import MUTED, USER_GROUPS, allow_callbacks
from odoo.addons.payment_mypos.tests.common_emulator import MyPOSEmulatorCommon
from odoo.addons.payment_mypos.tests.common_reliability import write_report

SHORT_TIMEOUT = 2  # Seconds: a charge's answer that is late is late after this, in these tests.
VISA = '4006090000000007'
MASTERCARD = '5500000000000004'


class MyPOSTokenCommon(MyPOSEmulatorCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.provider.allow_tokenization = True
        cls.visa = cls.env.ref('payment.payment_method_visa')

    def _portal_user(self, login, partner, password=None):
        """A portal user of `partner` (logging in with `password`, if given)."""
        values = {
            'name': login,
            'login': login,
            'partner_id': partner.id,
            USER_GROUPS: [Command.set(self.env.ref('base.group_portal').ids)],
        }
        if password:
            values['password'] = password
        return self.env['res.users'].create(values)

    def _save_card(self, card=VISA, **values):
        """Pay 100 EUR on myPOS's page asking to save the card; return the transaction."""
        tx = self._create_mypos_transaction(tokenize=True, **values)
        fields_ = self._purchase_fields(tx)
        self.env.flush_all()
        with allow_callbacks(self):
            result = self.emulator.pay(fields_, card=card)
            self.emulator.wait_idle()
        self.env.invalidate_all()
        self.assertEqual(result.outcome, 'paid')
        return tx

    def _token_tx(self, token, operation='online_token', **values):
        self._tx_serial = getattr(self, '_tx_serial', 0) + 1
        values.setdefault('reference', f'TOK-{self._tx_serial}')
        return self._create_transaction(
            'token',
            token_id=token.id,
            operation=operation,
            payment_method_id=token.payment_method_id.id,
            **values,
        )

    def _charge(self, tx, **faults):
        if faults:
            self.emulator.set_faults(**faults)
        with mute_logger(*MUTED):
            tx._send_payment_request()
        self.emulator.reset_faults()
        self.env.invalidate_all()
        return tx

    def _charges(self):
        return self._api_calls('IPCIAPurchase')

    def _charged_orders(self):
        return [
            order
            for order in self.emulator.state()['orders'].values()
            if order.get('method') == 'IPCIAPurchase' and order.get('status') == 'paid'
        ]


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
        tokens = self.emulator.state()['tokens']
        self.assertEqual(list(tokens), [token.provider_ref])
        self.assertEqual(
            (token.partner_id, token.payment_details, token.payment_method_id, token.mypos_sid),
            (self.partner, '0007 (12/30)', self.visa, ipc.const.SANDBOX_SID),
        )
        self.assertFalse(tx.tokenize)
        # myPOS repeats the notification; the status check reads it again: still one token.
        with allow_callbacks(self):
            self.emulator.resend(tx.mypos_order_id)
        self.env.invalidate_all()
        with mute_logger(*MUTED):
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
        with mute_logger(*MUTED, 'odoo.addons.payment_mypos.controllers.main'):
            response = self._post(self.webhook_url, notify)
        self.assertEqual(response.status_code, 400)
        self.assertIn('card token that Odoo never asked for', response.text)
        self.assertEqual((tx.state, tx.token_id.id), ('draft', False))

    def test_ill_formed_card_pays_without_saving(self):
        tx = self._create_mypos_transaction(tokenize=True)
        self._purchase_fields(tx)
        notify = self._sign(self._notification_fields(tx, CardToken='EMU TOKEN', ExpDate='3013'))
        with mute_logger(*MUTED):
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
        self.env.flush_all()
        with allow_callbacks(self):
            result = self.emulator.pay(list(self._purchase_fields(tx)))
            self.emulator.wait_idle()
        self.env.invalidate_all()
        self.assertEqual(result.outcome, 'paid')
        self.assertEqual(tx.state, 'done')
        self.assertEqual(tx.token_id.payment_details, '0007 (12/30)')
        notify = self.emulator.notifications(order_id=tx.mypos_order_id)[0]
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
        with mute_logger(*MUTED, 'odoo.addons.payment_mypos.controllers.main'):
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
        charged = self.emulator.order(tx.mypos_order_id)
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
        with mute_logger(*MUTED):
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
        with mute_logger(*MUTED):
            tx.action_refund(amount_to_refund=40.0)
        self.env.invalidate_all()
        refund_tx = tx.child_transaction_ids
        self.assertEqual((refund_tx.state, refund_tx.amount), ('done', -40.0))
        self.assertEqual(self.emulator.order(tx.mypos_order_id)['refunded'], '40.00')


class MyPOSBackOfficeCommon(MyPOSTokenCommon):
    """An invoice of the customer, who saved a card; the accountant's payment wizard."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if 'account.payment' not in cls.env:
            cls.skipTest(cls, "needs account_payment")
        cls.enable_post_process_patcher = False
        cls.provider.journal_id = cls.env['account.journal'].search(
            [('type', '=', 'bank'), ('company_id', '=', cls.provider.company_id.id)], limit=1
        )

    def setUp(self):
        super().setUp()
        self.token = self._save_card().token_id
        self.invoice = self.env['account.move'].create(
            {
                'move_type': 'out_invoice',
                'partner_id': self.partner.id,
                'currency_id': self.currency.id,
                'invoice_line_ids': [
                    Command.create(
                        {'name': "Gym, one year", 'quantity': 1, 'price_unit': 100.0, 'tax_ids': []}
                    )
                ],
            }
        )
        self.invoice.action_post()

    def _register_payment(self, **faults):
        line = self.provider.journal_id.inbound_payment_method_line_ids.filtered(
            lambda line: line.payment_provider_id == self.provider
        )
        wizard = (
            self.env['account.payment.register']
            .with_context(active_model='account.move', active_ids=self.invoice.ids)
            .create(
                {
                    'journal_id': self.provider.journal_id.id,
                    'payment_method_line_id': line.id,
                    'payment_token_id': self.token.id,
                }
            )
        )
        if faults:
            self.emulator.set_faults(**faults)
        with mute_logger(*MUTED):
            payments = wizard._create_payments()
        self.emulator.reset_faults()
        self.env.invalidate_all()
        return payments


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
        self.assertEqual(self.emulator.order(tx.mypos_order_id)['amount'], '100.00')
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
        with mute_logger(*MUTED):
            self.env['payment.transaction']._cron_mypos_check_status()
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
        rows = []
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
                    with mute_logger(*MUTED):
                        self.env['payment.transaction']._cron_mypos_check_status()
                sent = len([c for c in self._charges() if c['order_id'] == tx.mypos_order_id])
                row = {
                    'case': name,
                    'sent': sent,
                    'charged': self._paid_count() - before,
                    'state_at_once': state_at_once,
                    'state_after_check': tx.state,
                }
                rows.append(row)
                if tx.state == 'pending':  # Closed, as a person would in the end.
                    tx._set_canceled()
                # Shown paid (post-processed), as the shopper's status page does: a charge of
                # the same card and amount not yet shown would refuse the next case.
                tx.is_post_processed = True
                self.assertEqual(
                    (row['sent'], row['charged'], state_at_once, row['state_after_check']),
                    (1, charged, at_once, settled),
                )
        rows.append(self._replayed_case(token))
        rows.append(self._second_click_case(token))
        write_report('token_charges', {'cases': rows})

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
        with mute_logger(*MUTED):  # What the post-processing cron does (it commits: not here).
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

    def test_lost_answer_then_retry_with_the_same_card(self):
        first = self._lost_charge()
        retry = self._register_payment().payment_transaction_id
        self.assertEqual(first.state, 'done', "the earlier charge was settled first")
        self.assertEqual(retry.state, 'error')
        self.assertIn(first.reference, retry.state_message)
        self.assertIn('went through', retry.state_message)
        self._assert_paid_once()

    def test_lost_answer_then_retry_with_another_card(self):
        self._lost_charge()
        self.token = self._save_card(card=MASTERCARD).token_id
        retry = self._register_payment().payment_transaction_id
        self.assertEqual(retry.state, 'error')
        self._assert_paid_once()

    def test_retry_after_the_check_settled_it_before_post_processing(self):
        first = self._lost_charge()
        first.mypos_next_check = fields.Datetime.now()
        with mute_logger(*MUTED):
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

    def test_unknown_past_the_expiry_stays_pending_and_a_person_is_told(self):
        """Charged, the answer lost, and myPOS's status answers "unknown" past the expiry: never
        cancelled as "no payment"; the checks stop, a to-do is left, a new charge is refused."""
        first = self._lost_charge()
        self.emulator.reset()  # myPOS's status call knows nothing of it any more.
        self.env['ir.config_parameter'].sudo().set_param(
            'payment_mypos.status_check_expiry_hours', '0'
        )
        first.mypos_next_check = fields.Datetime.now()
        with mute_logger(*MUTED):
            self.env['payment.transaction']._cron_mypos_check_status()
        self.assertEqual(first.state, 'pending')
        self.assertFalse(first.mypos_next_check)
        self.assertIn('may have been charged', first.state_message)
        activity = self.invoice.activity_ids
        self.assertEqual(len(activity), 1)
        self.assertIn(first.reference, first.state_message + activity.note + first.reference)
        self.assertEqual(activity.user_id, self.env.ref('base.user_admin'))
        with mute_logger(*MUTED):  # The next scheduled runs leave it alone: told once.
            self.env['payment.transaction']._cron_mypos_check_status()
        self.assertEqual(len(self.invoice.activity_ids), 1)
        with self.assertRaisesRegex(UserError, "may have been charged and myPOS cannot tell"):
            self._register_payment()
        self.assertEqual(len(self._charges()), 0, "the emulator was reset: no new call")

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
        with mute_logger(*MUTED, 'odoo.addons.payment_mypos.status_check'):
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
        with mute_logger('odoo.http', *MUTED):
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
