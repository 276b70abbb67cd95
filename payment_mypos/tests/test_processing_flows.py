# Part of payment_mypos. License LGPL-3.

import logging
from urllib.parse import urlencode

from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.payment_mypos.tests.common import MyPOSCommon, generate_key_pair

CONTROLLER_LOGGER = 'odoo.addons.payment_mypos.controllers.main'
# Warns of each reversal (formerly odoo.addons.payment_mypos.reversals).
REVERSAL_LOGGER = 'odoo.addons.payment_mypos.models.payment_transaction_refund'


@tagged('post_install', '-at_install')
class TestWebhook(MyPOSCommon):
    def setUp(self):
        super().setUp()
        self.tx = self._create_mypos_transaction()

    def _assert_refused(self, data, reason, state='draft', **kwargs):
        """POST `data` to the webhook: refused with `reason`, logged, and nothing changed."""
        with self.assertLogs(CONTROLLER_LOGGER, 'WARNING') as logs:
            response = self._post(self.webhook_url, data, **kwargs)
        self.assertEqual(response.status_code, 400)
        self.assertNotEqual(response.text, 'OK')
        self.assertRegex(response.text, reason)
        self.assertRegex('\n'.join(logs.output), reason)
        self.assertEqual(self.tx.state, state)
        self.assertFalse(self.tx.provider_reference if state == 'draft' else False)
        return response

    def test_notify_sets_done(self):
        """A signed IPCPurchaseNotify makes the transaction done with myPOS's reference."""
        response = self._post(self.webhook_url, self._sign(self._notification_fields(self.tx)))
        self.assertEqual((response.status_code, response.text), (200, 'OK'))
        self.assertEqual(response.headers['Content-Type'], 'text/plain; charset=utf-8')
        self.assertEqual(self.tx.state, 'done')
        self.assertEqual(self.tx.provider_reference, '410227')
        self.assertEqual(self.tx.mypos_card_brand, 'visa')
        self.assertEqual(self.tx.payment_method_id, self.payment_method)  # Not looked up yet.
        self.tx._mypos_show_card_brand()  # What post-processing does (tested on the fake's flows).
        self.assertEqual(self.tx.payment_method_id.code, 'visa')

    def test_card_brand_follows_payment_method_changes(self):
        """The brand shown follows payment methods archived in the meantime; an unknown one, or
        one Odoo has no active method for, leaves the method the shopper chose."""
        visa = self.env.ref('payment.payment_method_visa')
        first = self._post(self.webhook_url, self._sign(self._notification_fields(self.tx)))
        self.assertEqual(first.text, 'OK')
        self.tx._mypos_show_card_brand()
        self.assertEqual(self.tx.payment_method_id, visa)
        visa.active = False
        self.env.flush_all()
        archived = self._create_mypos_transaction(reference='BRAND-ARCHIVED')
        unknown = self._create_mypos_transaction(reference='BRAND-UNKNOWN')
        for tx, card_type in ((archived, '3'), (unknown, '99')):
            fields = self._notification_fields(tx, CardType=card_type)
            self.assertEqual(self._post(self.webhook_url, self._sign(fields)).text, 'OK')
            tx._mypos_show_card_brand()
            self.assertEqual((tx.state, tx.payment_method_id), ('done', self.payment_method))

    def test_signed_refusal_recorded_forged_one_not(self):
        """A signed notification that does not fit is kept in the log; a forged one leaves none."""
        wrong_amount = self._sign(self._notification_fields(self.tx, Amount='1111.10'))
        self._assert_refused(wrong_amount, "does not match")
        (log,) = self.tx.mypos_log_ids
        self.assertEqual((log.direction, log.method), ('in', 'IPCPurchaseNotify'))
        self.assertRegex(log.outcome, r"^Refused .*amount 1111\.10 does not match")
        self.assertIn('Amount = 1111.10', log.payload)
        self.assertNotIn(wrong_amount[-1][1], log.payload)  # The signature is not kept.

        forged = self._sign(self._notification_fields(self.tx), generate_key_pair()[0])
        self._assert_refused(forged, "does not verify")
        self.assertEqual(len(self.tx.mypos_log_ids), 1)

    def test_rollback_cancels(self):
        """A signed IPCPurchaseRollback cancels the transaction and is acknowledged."""
        fields = self._notification_fields(self.tx, method='IPCPurchaseRollback')
        response = self._post(self.webhook_url, self._sign(fields))
        self.assertEqual((response.status_code, response.text), (200, 'OK'))
        self.assertEqual(self.tx.state, 'cancel')

    def test_notify_with_certificate_or_bare_key_and_2048_bits(self):
        """The certificate field may hold a 2048-bit certificate or just its public key."""
        private_key, certificate = generate_key_pair(2048)
        self.provider.mypos_public_certificate = certificate
        response = self._post(
            self.webhook_url, self._sign(self._notification_fields(self.tx), private_key)
        )
        self.assertEqual((response.text, self.tx.state), ('OK', 'done'))

    def test_signed_form_accepted_whatever_its_content_type(self):
        """A correctly signed form is read as a form even when sent as text/plain."""
        data = urlencode(self._sign(self._notification_fields(self.tx))).encode()
        response = self._post(self.webhook_url, data, headers={'Content-Type': 'text/plain'})
        self.assertEqual((response.status_code, response.text), (200, 'OK'))
        self.assertEqual((self.tx.state, self.tx.provider_reference), ('done', '410227'))

    @mute_logger(REVERSAL_LOGGER)
    def test_rollback_after_done_keeps_state(self):
        """A rollback of a confirmed payment is recorded for a person, the state stays done."""
        self._post(self.webhook_url, self._sign(self._notification_fields(self.tx)))
        fields = self._notification_fields(self.tx, method='IPCPurchaseRollback')
        response = self._post(self.webhook_url, self._sign(fields))
        self.assertEqual(response.text, 'OK')
        self.assertEqual(self.tx.state, 'done')
        self.assertIn("reversed", self.tx.state_message)

    @mute_logger(REVERSAL_LOGGER)
    def test_rollback_of_a_saved_card_books_no_refund(self):
        """Saving a card moved no money: its reversal books no refund of 0."""
        tx = self._create_mypos_transaction(operation='validation', amount=0.0, reference='VAL-1')
        tx._set_done()
        fields = self._notification_fields(tx, method='IPCPurchaseRollback', Amount='0.00')
        response = self._post(self.webhook_url, self._sign(fields))
        self.assertEqual(response.text, 'OK')
        self.assertEqual(tx.state, 'done')
        self.assertFalse(tx.child_transaction_ids)


@tagged('post_install', '-at_install')
class TestPostProcessing(MyPOSCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.enable_post_process_patcher = False  # Odoo's post-processing, for real.

    def test_post_processing_shows_the_card_brand(self):
        """The brand myPOS reported becomes the payment method shown once the paid transaction
        is post-processed (the webhook itself spends no query on it)."""
        tx = self._create_mypos_transaction()
        fields = self._notification_fields(tx, CardType='1')
        self.assertEqual(self._post(self.webhook_url, self._sign(fields)).text, 'OK')
        self.assertEqual((tx.state, tx.mypos_card_brand), ('done', 'mastercard'))
        tx._post_process()
        self.assertEqual(tx.payment_method_id.code, 'mastercard')


@tagged('post_install', '-at_install')
class TestBrowserReturn(MyPOSCommon):
    def setUp(self):
        super().setUp()
        self.tx = self._create_mypos_transaction()

    def _assert_lands_on_status_page(self, response):
        self.assertIn(response.status_code, (302, 303))
        self.assertTrue(response.headers['Location'].endswith('/payment/status'))

    def test_ok_return_never_pays(self):
        """A signed IPCPurchaseOK (POST or GET) lands on the status page and leaves it unpaid."""
        data = self._sign(self._notification_fields(self.tx, method='IPCPurchaseOK'))
        self._assert_lands_on_status_page(self._post(self.return_url, data))
        self.assertEqual(self.tx.state, 'pending')
        response = self.url_open(f'{self.return_url}?{urlencode(data)}', allow_redirects=False)
        self._assert_lands_on_status_page(response)
        self.env.invalidate_all()
        self.assertEqual(self.tx.state, 'pending')

    def test_notify_posted_to_return_never_pays(self):
        data = self._sign(self._notification_fields(self.tx))
        with self.assertLogs(CONTROLLER_LOGGER, 'WARNING'):
            self._assert_lands_on_status_page(self._post(self.return_url, data))
        self.assertEqual(self.tx.state, 'draft')

    def test_signed_cancel_cancels(self):
        data = self._sign(self._notification_fields(self.tx, method='IPCPurchaseCancel'))
        self._assert_lands_on_status_page(self._post(self.cancel_url, data))
        self.assertEqual(self.tx.state, 'cancel')

    def test_signed_cancel_by_get_cancels_draft_only(self):
        """A browser cancel cancels the draft it names; a pending one (past myPOS's OK) stays."""
        data = self._sign(self._notification_fields(self.tx, method='IPCPurchaseCancel'))
        self.tx._set_pending()
        response = self.url_open(f'{self.cancel_url}?{urlencode(data)}', allow_redirects=False)
        self._assert_lands_on_status_page(response)
        self.env.invalidate_all()
        self.assertEqual(self.tx.state, 'pending')
        draft = self._create_mypos_transaction(reference='DRAFT-GET')
        data = self._sign(self._notification_fields(draft, method='IPCPurchaseCancel'))
        response = self.url_open(f'{self.cancel_url}?{urlencode(data)}', allow_redirects=False)
        self._assert_lands_on_status_page(response)
        self.env.invalidate_all()
        self.assertEqual(draft.state, 'cancel')

    def test_cancel_does_not_undo_payment(self):
        self._post(self.webhook_url, self._sign(self._notification_fields(self.tx)))
        data = self._sign(self._notification_fields(self.tx, method='IPCPurchaseCancel'))
        self._assert_lands_on_status_page(self._post(self.cancel_url, data))
        self.assertEqual(self.tx.state, 'done')

    def test_unsigned_or_forged_cancel_ignored(self):
        other_key, _certificate = generate_key_pair()
        fields = self._notification_fields(self.tx, method='IPCPurchaseCancel')
        for data in (fields, self._sign(fields, other_key)):
            with self.assertLogs(CONTROLLER_LOGGER, 'WARNING'):
                self._assert_lands_on_status_page(self._post(self.cancel_url, data))
            self.assertEqual(self.tx.state, 'draft')

    def test_get_return_keeps_card_token_and_customer_out_of_the_access_log(self):
        """myPOS may bring the shopper back by GET with the signed OK in the query string: the
        access log (werkzeug's request line) keeps the path only."""
        self.tx.mypos_card_token_request = '2'
        data = self._sign(
            self._notification_fields(
                self.tx,
                method='IPCPurchaseOK',
                CardToken='EMUSECRETTOKEN1',
                CustomerEmail='norbert.buyer@example.com',
            )
        )
        access_log = logging.getLogger('werkzeug')
        captured = []
        handler = logging.Handler(logging.INFO)
        handler.emit = lambda record: captured.append(record.getMessage())
        level = access_log.level
        access_log.addHandler(handler)
        access_log.setLevel(logging.INFO)
        try:
            response = self.url_open(f'{self.return_url}?{urlencode(data)}', allow_redirects=False)
        finally:
            access_log.removeHandler(handler)
            access_log.setLevel(level)
        self._assert_lands_on_status_page(response)
        lines = '\n'.join(captured)
        self.assertIn('"GET /payment/mypos/return?[not logged] HTTP/1.1" 303', lines)
        for secret in ('EMUSECRETTOKEN1', 'norbert.buyer', 'CardToken'):
            self.assertNotIn(secret, lines)

    def test_plain_return_redirects(self):
        response = self.url_open(self.cancel_url, allow_redirects=False)
        self._assert_lands_on_status_page(response)
        self.assertEqual(self.tx.state, 'draft')
