# Part of payment_mypos. License LGPL-3.
"""Manual capture: the card is authorised on myPOS's page (IPCPreAuthorization), then captured
(IPCPreAuthCompletion) or released (IPCPreAuthCancellation) from Odoo at most once, and reconciled
with IPCPreAuthStatus. myPOS is the in-addon fake; its messages reach Odoo's real HTTP server."""

from datetime import date, timedelta

from odoo import Command, fields
from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.payment_mypos import compat, const, ipc
from odoo.addons.payment_mypos.tests.common import (
    CALLS_LOGGER,
    PEOPLE_LOGGER,
    SALE_LINE_TAXES,
    SANDBOX_STORE_KEY,
    refund,
)
from odoo.addons.payment_mypos.tests.common_fake import MyPOSFakeCommon
from odoo.addons.payment_mypos.tests.common_reliability import CONTROLLER_LOGGER

COMPLETION, CANCELLATION, STATUS = (
    'IPCPreAuthCompletion',
    'IPCPreAuthCancellation',
    'IPCPreAuthStatus',
)
PREAUTH_LOGGER = 'odoo.addons.payment_mypos.models.payment_transaction_preauth'


@tagged('post_install', '-at_install')
class TestManualCapture(MyPOSFakeCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.enable_post_process_patcher = False
        cls.provider.write({'allow_tokenization': False, 'capture_manually': True})
        cls.account_payment_installed = 'account.payment' in cls.env
        if cls.account_payment_installed:
            cls.provider.journal_id = cls.env['account.journal'].search(
                [('type', '=', 'bank'), ('company_id', '=', cls.provider.company_id.id)], limit=1
            )

    # === Helpers === #

    def _order(self):
        """A quotation of the transaction's amount, when sale is installed: {} otherwise."""
        if 'sale.order' not in self.env:
            return None, {}
        product = self.env['product.product'].create({'name': "Room, 2 nights", 'list_price': 100})
        order = self.env['sale.order'].create(
            {
                'partner_id': self.partner.id,
                'order_line': [Command.create({'product_id': product.id, 'price_unit': 100.0})],
            }
        )
        order.order_line[SALE_LINE_TAXES] = False
        return order, {'sale_order_ids': [Command.set(order.ids)]}

    def _authorize(self, **values):
        """Authorise a new transaction on myPOS's page; myPOS notifies Odoo's webhook."""
        tx, result = self._pay(self._create_mypos_transaction(**values))
        self.assertEqual((result.outcome, tx.state), ('authorized', 'authorized'), result)
        return tx, result

    def _capture(self, tx, **faults):
        if faults:
            self.mypos.set_faults(**faults)
        try:
            with mute_logger(CALLS_LOGGER, PREAUTH_LOGGER):
                tx.action_capture()
        finally:
            self.mypos.reset_faults()
        self.env.invalidate_all()
        return self._children(tx)

    def _void(self, tx, **faults):
        if faults:
            self.mypos.set_faults(**faults)
        try:
            with mute_logger(CALLS_LOGGER, PREAUTH_LOGGER):
                tx.action_void()
        finally:
            self.mypos.reset_faults()
        self.env.invalidate_all()
        return self._children(tx)

    def _children(self, tx):
        return tx.child_transaction_ids.filtered(lambda t: t.operation != 'refund').sorted('id')

    def _age_outbox(self, minutes=11):
        """Make the calls this test recorded look sent `minutes` ago."""
        with self.env['payment.mypos.outbox']._mypos_cursor() as cr:
            cr.execute(
                "UPDATE payment_mypos_outbox SET create_date = create_date - %s WHERE id > %s",
                [timedelta(minutes=minutes), self._outbox_before],
            )

    def _age(self, tx, delta):
        """Make `tx` look created `delta` ago (the ORM does not write `create_date`)."""
        self.env.flush_all()
        self.env.cr.execute(
            'UPDATE payment_transaction SET create_date = create_date - %s WHERE id = %s',
            [delta, tx.id],
        )
        self.env.invalidate_all()

    def _run_status_cron(self, tx):
        """The scheduled status check, with `tx` due."""
        tx.mypos_next_check = fields.Datetime.now() - timedelta(minutes=1)
        self.env.flush_all()
        with mute_logger(CALLS_LOGGER, PEOPLE_LOGGER, PREAUTH_LOGGER):
            self.env['payment.transaction']._cron_mypos_check_status()
        self.env.invalidate_all()

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

    # === Answers lost, requests rolled back === #

    def test_lost_completion_answer_settled_by_status_check(self):
        tx, _result = self._authorize()
        capture = self._capture(tx, api_drop_answer=True)
        self.assertEqual((tx.state, tx.mypos_preauth_call), ('authorized', 'capture'))
        self.assertEqual(capture.state, 'pending')
        self.assertRegex(tx.state_message, "may have been captured")
        # A second click sends nothing.
        with self.assertRaisesRegex(UserError, "never sent twice"):
            tx.action_capture()
        self.assertEqual(self._children(tx), capture, "the second click left nothing behind")
        self._run_status_cron(tx)
        self.assertEqual((tx.state, capture.state, tx.mypos_preauth_call), ('done', 'done', False))
        self.assertEqual(len(self._api_calls(COMPLETION)), 1, "one completion at myPOS")
        self.assertEqual(len(self._api_calls(STATUS)), 1)

    def test_lost_release_answer_settled_by_status_check(self):
        tx, _result = self._authorize()
        release = self._void(tx, api_drop_answer=True)
        self.assertEqual(
            (tx.state, tx.mypos_preauth_call, release.state), ('authorized', 'void', 'pending')
        )
        self.assertRegex(tx.state_message, "may have been released")
        with self.assertRaisesRegex(UserError, "never sent twice"):
            tx.action_void()
        self._run_status_cron(tx)
        self.assertEqual(
            (tx.state, release.state, tx.mypos_preauth_call), ('cancel', 'cancel', False)
        )
        self.assertEqual(len(self._api_calls(CANCELLATION)), 1, "one cancellation at myPOS")
        self.assertFalse(self._api_calls(COMPLETION))

    def test_rolled_back_capture_is_never_sent_again(self):
        tx, _result = self._authorize()
        self.env.flush_all()
        with self.assertRaises(RuntimeError):  # The request fails after myPOS captured.
            with self.env.cr.savepoint():
                self._capture(tx)
                self.assertEqual(tx.state, 'done')
                raise RuntimeError("the request rolls back")
        self.env.invalidate_all()
        self.assertEqual((tx.state, len(self._children(tx))), ('authorized', 0))
        capture = self._capture(tx)  # Odoo replays it, or the user clicks again.
        self.assertEqual(len(self._api_calls(COMPLETION)), 1, "never a second completion")
        self.assertEqual(self._api_calls(STATUS)[-1]['order_id'], tx.mypos_order_id)
        self.assertEqual((tx.state, capture.state, capture.amount), ('done', 'done', 100.0))

    def test_unsent_capture_reopened_after_status_says_pending(self):
        """An HTTP error before myPOS: the capture waits; myPOS still holds the authorisation
        some minutes later, so the capture is closed and may be sent again."""
        tx, _result = self._authorize()
        first = self._capture(tx, api_http_status=502)
        self.assertEqual((first.state, tx.mypos_preauth_call), ('pending', 'capture'))
        self._run_status_cron(tx)  # Too soon to tell: still waiting.
        self.assertEqual((first.state, tx.mypos_preauth_call), ('pending', 'capture'))
        self._age_outbox()
        self._run_status_cron(tx)
        self.assertEqual(
            (tx.state, first.state, tx.mypos_preauth_call), ('authorized', 'error', False)
        )
        self.assertRegex(first.state_message, "did not make the capture")
        second = self._capture(tx) - first
        self.assertEqual((tx.state, second.state), ('done', 'done'))
        self.assertEqual([c['status'] for c in self._api_calls(COMPLETION)], [None, 0])

    def test_refused_capture_leaves_the_authorisation(self):
        tx, _result = self._authorize()
        self.mypos.expire(tx.mypos_order_id)
        capture = self._capture(tx)
        self.assertEqual((capture.state, tx.state), ('error', 'authorized'))
        self.assertRegex(capture.state_message, "The capture was refused")
        self._run_status_cron(tx)
        self.assertEqual(tx.state, 'cancel')
        self.assertRegex(tx.state_message, "expired")

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

    # === Guards === #

    def test_partial_capture_refused_before_anything_is_sent(self):
        tx, _result = self._authorize()
        with self.assertRaisesRegex(UserError, "Only the full authorised amount"):
            if compat.ODOO_19:
                tx._capture(amount_to_capture=60.0)
            else:
                tx._send_capture_request(amount_to_capture=60.0)
        self.assertFalse(self._children(tx))
        self.assertFalse(self.mypos.api_calls())

    def test_a_paid_purchase_is_no_authorisation_to_capture(self):
        tx = self._create_mypos_transaction()
        tx._set_authorized()  # Authorised, but never by a pre-authorisation.
        with self.assertRaisesRegex(UserError, "is not an authorisation"):
            tx.action_capture()
        self.assertFalse(self.mypos.api_calls())

    def test_answer_about_another_order_is_not_a_capture(self):
        tx, _result = self._authorize()
        capture = tx._create_child_transaction(tx.amount)
        answer = ipc.Message(
            method=COMPLETION, amount='100.00', currency='EUR', order_id='OTHER_1', status='0'
        )
        with self.assertRaisesRegex(ValidationError, "is not about"):
            compat.process_message(capture, answer)
        self.assertEqual((tx.state, capture.state), ('authorized', 'draft'))

    def test_order_capture_refused_before_sending_when_one_authorisation_waits(self):
        order, documents = self._order()
        if not order:
            self.skipTest("needs sale")  # pragma: no cover - sale is installed by odoo-tests
        waiting, _result = self._authorize(**documents)
        other, _result = self._authorize(**documents)  # Odoo's loop takes it first (id desc).
        self._capture(waiting, api_http_status=502)
        calls = len(self.mypos.api_calls())
        with self.assertRaisesRegex(UserError, "never sent twice"):
            order.payment_action_capture()
        self.assertEqual(len(self.mypos.api_calls()), calls, "nothing sent for the other")
        self.assertEqual(other.state, 'authorized')

    def test_capture_from_the_sales_order(self):
        order, documents = self._order()
        if not order:
            self.skipTest("needs sale")  # pragma: no cover - sale is installed by odoo-tests
        tx, _result = self._authorize(**documents)
        with mute_logger(CALLS_LOGGER, PREAUTH_LOGGER):
            order.payment_action_capture()
        self.env.invalidate_all()
        self.assertEqual(tx.state, 'done')
        self.assertEqual(len(self._api_calls(COMPLETION)), 1)

    def test_unsignable_capture_is_neither_recorded_nor_sent(self):
        tx, _result = self._authorize()
        self.env.cr.execute(
            "UPDATE payment_provider SET mypos_private_key_pem = 'not a key' WHERE id = %s",
            [self.provider.id],
        )
        self.env.invalidate_all()
        with self.assertRaisesRegex(UserError, "cannot be signed; nothing was sent"):
            tx.action_capture()
        self.assertFalse(self._outbox(), "nothing recorded: a later capture is not held")
        self.assertFalse(self.mypos.api_calls())

    # === Doubts settled, and people told === #

    def test_capture_answered_as_already_received_is_settled_at_once(self):
        tx, _result = self._authorize()
        capture = self._capture(tx, api_status_text='20', api_faults_remaining=1)
        self.assertEqual((tx.state, capture.state, tx.mypos_preauth_call), ('done', 'done', False))
        self.assertEqual(
            [c['method'] for c in self.mypos.api_calls()], [COMPLETION, STATUS], "asked, not resent"
        )

    def test_capture_check_asks_about_its_authorisation(self):
        tx, _result = self._authorize()
        capture = self._capture(tx, api_drop_answer=True)
        with mute_logger(CALLS_LOGGER, PREAUTH_LOGGER):
            capture.action_mypos_check_status()
        self.env.invalidate_all()
        self.assertEqual((tx.state, capture.state), ('done', 'done'))
        self.assertEqual([c['order_id'] for c in self._api_calls(STATUS)], [tx.mypos_order_id])

    def test_rolled_back_capture_booked_by_the_scheduled_check(self):
        tx, _result = self._authorize()
        self.env.flush_all()
        with self.assertRaises(RuntimeError):
            with self.env.cr.savepoint():
                self._capture(tx)
                raise RuntimeError("the request rolls back")
        self.env.invalidate_all()
        self._run_status_cron(tx)
        capture = self._children(tx)
        self.assertEqual((tx.state, capture.state, capture.amount), ('done', 'done', 100.0))
        self.assertEqual(len(self._api_calls(COMPLETION)), 1)

    def test_waiting_capture_is_never_expired_on_its_own(self):
        tx, _result = self._authorize()
        capture = self._capture(tx, api_http_status=502)
        self._age(capture, timedelta(days=2))
        tx.mypos_next_check = fields.Datetime.now() + timedelta(hours=1)  # Not due.
        self.env.flush_all()
        with mute_logger(CALLS_LOGGER, PEOPLE_LOGGER, PREAUTH_LOGGER):
            self.env['payment.transaction']._cron_mypos_check_status()
        self.env.invalidate_all()
        self.assertEqual(capture.state, 'pending')
        self.assertFalse(self.mypos.api_calls()[1:], "nothing asked: its authorisation is not due")

    def test_forgotten_call_record_reopens_the_authorisation(self):
        """A check voided the record of a capture myPOS never made, then rolled back: the next
        check still closes the capture, so that the authorisation can be captured again."""
        tx, _result = self._authorize()
        first = self._capture(tx, api_http_status=502)
        with self.env['payment.mypos.outbox']._mypos_cursor() as cr:
            cr.execute(
                "UPDATE payment_mypos_outbox SET state = 'void' WHERE order_id = %s",
                [tx.mypos_order_id],
            )
        self._run_status_cron(tx)
        self.assertEqual((first.state, tx.mypos_preauth_call), ('error', False))
        self.assertRegex(tx.state_message, "did not make the capture")
        second = self._capture(tx) - first
        self.assertEqual((tx.state, second.state), ('done', 'done'))

    def test_status_refusal_never_expires_a_held_authorisation(self):
        """A signed refusal other than "unknown order" says nothing of the hold: an unconfirmed
        pre-authorisation is not cancelled as unpaid."""
        tx = self._create_mypos_transaction()
        self._pay(tx, notify_drop=True)
        self._age(tx, timedelta(hours=25))
        self.mypos.set_faults(api_status_text='3')
        try:
            self._run_status_cron(tx)
        finally:
            self.mypos.reset_faults()
        self.assertEqual(tx.state, 'draft')
        self._run_status_cron(tx)
        self.assertEqual(tx.state, 'authorized')

    def test_checks_stop_and_tell_a_person_without_usable_answers(self):
        self.env['ir.config_parameter'].sudo().set_param(const.MAX_CHECKS_PARAM, '2')
        order, documents = self._order()
        tx, _result = self._authorize(**documents)
        self._capture(tx, api_drop_answer=True)
        self.mypos.set_faults(api_http_status=502)
        try:
            for _attempt in range(3):
                if tx.mypos_next_check:
                    self._run_status_cron(tx)
        finally:
            self.mypos.reset_faults()
        self.assertFalse(tx.mypos_next_check, "checks stopped")
        self.assertEqual(len(self._api_calls(STATUS)), 2)
        self.assertRegex(tx.state_message, "no usable status")
        records = order or tx.partner_id
        self.assertTrue(records.activity_ids.filtered(lambda a: 'usable status' in str(a.note)))

    def test_refused_authorisation_is_told_to_a_person(self):
        order, documents = self._order()
        tx = self._create_mypos_transaction(**documents)
        tx._set_canceled()
        with mute_logger(CONTROLLER_LOGGER, PEOPLE_LOGGER):
            _tx, result = self._pay(tx)
        self.assertEqual((result.outcome, tx.state), ('reversed', 'cancel'))
        self.assertRegex(tx.state_message, "Check in myPOS's dashboard that the hold was released")
        records = order or tx.partner_id
        self.assertTrue(records.activity_ids)
