# Part of payment_mypos. License LGPL-3.
"""Manual capture: the card is authorised on myPOS's page (IPCPreAuthorization), then captured
(IPCPreAuthCompletion) or released (IPCPreAuthCancellation) from Odoo at most once, and reconciled
with IPCPreAuthStatus. myPOS is the in-addon fake; its messages reach Odoo's real HTTP server."""

from datetime import date, timedelta

from odoo import Command, fields
from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.payment_mypos import ipc
from odoo.addons.payment_mypos.tests.common import (
    CALLS_LOGGER,
    SANDBOX_STORE_KEY,
    refund,
)
from odoo.addons.payment_mypos.tests.common_preauth import (
    CANCELLATION,
    COMPLETION,
    PREAUTH_LOGGER,
    MyPOSPreAuthCommon,
)


@tagged('post_install', '-at_install')
class TestManualCapture(MyPOSPreAuthCommon):
    # === Declaration and form === #

    def test_declares_full_capture_only(self):
        self.assertEqual(self.provider.support_manual_capture, 'full_only')

    def test_saved_cards_and_manual_capture_refused_together(self):
        with self.assertRaisesRegex(ValidationError, "cannot save the card"):
            self.provider.allow_tokenization = True

    def test_form_is_a_signed_pre_authorisation_without_cart(self):
        tx = self._create_mypos_transaction()
        fields_ = self._purchase_fields(tx)
        self.assertEqual(
            [name for name, _value in fields_],
            [
                'IPCmethod',
                'IPCVersion',
                'IPCLanguage',
                'SID',
                'WalletNumber',
                'KeyIndex',
                'Source',
                'ItemName',
                'Currency',
                'Amount',
                'OrderID',
                'URL_OK',
                'URL_Cancel',
                'URL_Notify',
                'Note',
                'Signature',
            ],
        )
        values = dict(fields_)
        self.assertEqual(
            (values['IPCmethod'], values['ItemName'], values['Amount'], values['OrderID']),
            ('IPCPreAuthorization', ipc.clean_text(tx.reference), '100.00', tx.mypos_order_id),
        )
        self.assertEqual(
            values['ItemName'], tx.reference.replace('-', '\u2010'), "no '-' to re-cut"
        )
        self.assertTrue(tx.mypos_preauth)
        signed = [value for _name, value in fields_[:-1]]
        store_key = ipc.public_key_pem(SANDBOX_STORE_KEY)
        self.assertTrue(ipc.verify(signed, values['Signature'], store_key))

    def test_card_validation_stays_a_purchase(self):
        tx = self._create_mypos_transaction(operation='validation', amount=0.0)
        self.assertEqual(dict(self._purchase_fields(tx))['IPCmethod'], 'IPCPurchase')
        self.assertFalse(tx.mypos_preauth)

    # === Authorisation === #

    def test_notification_authorizes_and_confirms_the_order(self):
        order, documents = self._order()
        tx, result = self._authorize(**documents)
        self.assertEqual(tx.provider_reference, result.ipc_trnref)
        self.assertEqual(tx.mypos_preauth_expiry, date.today() + timedelta(days=30))
        notify = self.mypos.notifications(tx.mypos_order_id, 'IPCPreAuthorizationNotify')
        self.assertEqual([(n['http_status'], n['body']) for n in notify], [(200, 'OK')])
        self.assertFalse(self._api_calls(COMPLETION))
        if order:
            tx._post_process()
            self.assertEqual(order.state, 'sale', "confirmed on authorisation, as for Stripe")

    def test_cancel_on_the_page_cancels(self):
        tx = self._create_mypos_transaction()
        fields_ = self._purchase_fields(tx)
        self.env.flush_all()
        result = self.mypos.cancel(fields_)
        self.assertEqual(result.return_method, 'IPCPreAuthorizationCancel')
        status, _body = self._deliver(result.return_url, result.return_fields)
        self.assertEqual(status, 303)
        self.assertEqual(tx.state, 'cancel')

    def test_saved_card_charge_refused_with_manual_capture(self):
        token = self._create_token(provider_id=self.provider.id)
        tx = self._create_transaction('direct', operation='online_token', token_id=token.id)
        with self.assertRaisesRegex(UserError, "cannot be pre-authorised"):
            tx._send_payment_request()
        self.assertFalse(self.mypos.api_calls())

    # === Capture === #

    def test_capture_full_amount_once(self):
        order, documents = self._order()
        tx, result = self._authorize(**documents)
        capture = self._capture(tx)
        self.assertEqual(len(capture), 1)
        self.assertEqual(
            (capture.state, capture.amount, capture.provider_reference),
            ('done', 100.0, result.ipc_trnref),
        )
        self.assertEqual(tx.state, 'done')
        calls = self._api_calls(COMPLETION)
        self.assertEqual(
            [(c['order_id'], c['amount'], c['status']) for c in calls],
            [(tx.mypos_order_id, '100.00', 0)],
        )
        self.assertEqual(self.mypos.order(tx.mypos_order_id)['status'], 'captured')
        self.assertEqual([row['method'] for row in self._outbox()], [COMPLETION])
        with mute_logger(CALLS_LOGGER, PREAUTH_LOGGER):
            tx.action_capture()  # Captured already: Odoo's button skips it.
            with self.assertRaisesRegex(ValidationError, "Only authorized transactions"):
                tx.action_void()
        self.assertEqual(len(self.mypos.api_calls()), 1, "one call to myPOS in all")

    def test_capture_pays_the_invoice(self):
        if not self.account_payment_installed:
            self.skipTest("needs account_payment")
        invoice = self.env['account.move'].create(
            {
                'move_type': 'out_invoice',
                'partner_id': self.partner.id,
                'currency_id': self.currency.id,
                'invoice_line_ids': [
                    Command.create({'name': "Deposit", 'price_unit': 100.0, 'tax_ids': []})
                ],
            }
        )
        invoice.action_post()
        tx, _result = self._authorize(invoice_ids=[Command.set(invoice.ids)])
        tx._post_process()
        self.assertEqual(invoice.payment_state, 'not_paid', "authorised is not paid")
        capture = self._capture(tx)
        capture._post_process()
        tx._post_process()
        self.assertEqual(capture.payment_id.amount, 100.0)
        self.assertFalse(tx.payment_id, "one payment: the capture's, not the authorisation's")
        payments = self.env['account.payment'].search(
            [('payment_transaction_id', 'in', (tx | capture).ids)]
        )
        self.assertEqual(payments, capture.payment_id)
        self.assertIn(invoice.payment_state, ('paid', 'in_payment'))

    def test_refund_after_capture(self):
        tx, result = self._authorize()
        capture = self._capture(tx)
        with mute_logger(CALLS_LOGGER):
            refund(capture, 40.0)
        self.env.invalidate_all()
        refund_tx = capture.child_transaction_ids
        self.assertEqual((refund_tx.state, refund_tx.amount), ('done', -40.0))
        calls = self._api_calls('IPCRefund')
        self.assertEqual(
            [(c['ipc_trnref'], c['amount']) for c in calls], [(result.ipc_trnref, '40.00')]
        )

    # === Release === #

    def test_void_releases(self):
        tx, _result = self._authorize()
        release = self._void(tx)
        self.assertEqual(tx.state, 'cancel')
        self.assertEqual(release.state, 'cancel')
        calls = self._api_calls(CANCELLATION)
        self.assertEqual(
            [(c['order_id'], c['amount'], c['status']) for c in calls],
            [(tx.mypos_order_id, '100.00', 0)],
        )
        self.assertEqual(self.mypos.order(tx.mypos_order_id)['status'], 'cancelled')
        self.assertFalse(self._api_calls(COMPLETION))

    # === Expiry and reconciliation === #

    def test_reminder_a_day_before_expiry_once(self):
        order, documents = self._order()
        tx, _result = self._authorize(**documents)
        tomorrow = date.today() + timedelta(days=1)
        self.mypos.set_preauth_expiry(tx.mypos_order_id, tomorrow)
        self._run_status_cron(tx)
        self.assertEqual((tx.state, tx.mypos_preauth_expiry), ('authorized', tomorrow))
        self.assertTrue(tx.mypos_preauth_warned)
        records = order or tx.partner_id
        activities = records.activity_ids.filtered(lambda a: 'expires' in (a.summary or ''))
        self.assertEqual(len(activities), 1)
        self.assertIn(tx.reference, str(activities.note))
        self._run_status_cron(tx)
        activities = records.activity_ids.filtered(lambda a: 'expires' in (a.summary or ''))
        self.assertEqual(len(activities), 1, "reminded once")
        self.assertGreater(tx.mypos_next_check, fields.Datetime.now())

    def test_expired_authorisation_cancelled_with_the_reason(self):
        tx, _result = self._authorize()
        self.mypos.expire(tx.mypos_order_id)
        self._run_status_cron(tx)
        self.assertEqual(tx.state, 'cancel')
        self.assertRegex(tx.state_message, "expired")
        self.assertFalse(tx.mypos_next_check)

    def test_released_in_mypos_cancelled(self):
        tx, _result = self._authorize()
        self.mypos.set_faults()  # myPOS's own dashboard releases it.
        with mute_logger(CALLS_LOGGER):
            self.mypos.post(
                self.mypos.url,
                ipc.build_request(
                    self.provider._mypos_get_credentials(),
                    CANCELLATION,
                    [('OrderID', tx.mypos_order_id), ('Amount', '100.00'), ('Currency', 'EUR')],
                    source='test',
                ),
            )
        self._run_status_cron(tx)
        self.assertEqual(tx.state, 'cancel')
        self.assertRegex(tx.state_message, "released")

    def test_captured_outside_odoo_is_for_a_person(self):
        tx, _result = self._authorize()
        with mute_logger(CALLS_LOGGER):
            self.mypos.post(
                self.mypos.url,
                ipc.build_request(
                    self.provider._mypos_get_credentials(),
                    COMPLETION,
                    [('OrderID', tx.mypos_order_id), ('Amount', '60.00'), ('Currency', 'EUR')],
                    source='test',
                ),
            )
        self._run_status_cron(tx)
        self.assertEqual(tx.state, 'authorized', "the amount captured is unknown: no state")
        self.assertRegex(tx.state_message, "Odoo sent no capture")
        self.assertFalse(tx.mypos_next_check)

    def test_notification_lost_authorized_by_status_check(self):
        tx = self._create_mypos_transaction()
        self._pay(tx, notify_drop=True)
        self.assertEqual(tx.state, 'draft')
        self._age(tx, timedelta(minutes=11))
        self._run_status_cron(tx)
        self.assertEqual(tx.state, 'authorized')
        self.assertFalse(
            self.env['payment.transaction'].search([('id', '=', tx.id)]).provider_reference
        )
        self.assertEqual(self._api_calls('IPCGetTxnStatus'), [], "never asked about a pre-auth")

    # === Messages that do not belong === #

    def test_purchase_notification_cannot_pay_a_pre_authorisation(self):
        tx = self._create_mypos_transaction()
        self._purchase_fields(tx)  # Rendered as a pre-authorisation.
        signed = self._sign(self._notification_fields(tx))
        self.env.flush_all()
        response = self._post(self.webhook_url, signed)
        self.assertEqual(response.status_code, 400)
        self.assertIn("is a purchase's message", response.text)
        self.assertEqual(tx.state, 'draft')
