# Part of payment_mypos. License LGPL-3.
"""The fake myPOS (`ipc.testing.FakeMyPOS`) on pre-authorisations: the hosted page's checks, the
hold and its notify, the three calls with the choices where myPOS is silent, the test controls and
the faults; no database involved."""

import datetime

from odoo.tests import BaseCase, tagged

from odoo.addons.payment_mypos import ipc
from odoo.addons.payment_mypos.ipc import testing as ipc_testing
from odoo.addons.payment_mypos.ipc.fake_rules import today
from odoo.addons.payment_mypos.tests.common import SANDBOX_STORE_KEY, generate_key_pair

KEY_PAIR = generate_key_pair()
URLS = {
    'url_ok': 'https://shop.example/payment/mypos/return',
    'url_cancel': 'https://shop.example/payment/mypos/cancel',
    'url_notify': 'https://shop.example/payment/mypos/webhook',
}
NOTIFY_NAMES = [
    'IPCmethod',
    'SID',
    'Amount',
    'Currency',
    'OrderID',
    'IPC_Trnref',
    'RequestSTAN',
    'RequestDateTime',
    'PreAuthExpDate',
    'BillingDescriptor',
    'Signature',
]
DECLINED_CARD = '4877000000000002'


@tagged('post_install', '-at_install')
class TestFakePreAuthorization(BaseCase):
    def setUp(self):
        super().setUp()
        self.mypos = ipc_testing.FakeMyPOS(SANDBOX_STORE_KEY, key_pair=KEY_PAIR)
        self.store = ipc.Credentials(
            ipc.const.SANDBOX_SID,
            ipc.const.SANDBOX_WALLET_NUMBER,
            1,
            SANDBOX_STORE_KEY,
            self.mypos.certificate_pem,
        )
        self.posted = []  # What myPOS posted to URL_Notify: (url, pairs).
        self.answer = (200, 'OK')  # How the shop answers it.

    def deliver(self, url, pairs):
        self.posted.append((url, pairs))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    def form(self, order_id='S7_ab12cd34_9', amount_minor=15000, **changes):
        """A signed IPCPreAuthorization form; `changes` replace (None: remove, or add) fields."""
        fields = ipc.build_preauthorization(
            self.store,
            source='Odoo tests',
            order_id=order_id,
            amount_minor=amount_minor,
            decimals=2,
            currency='EUR',
            item_name='S00007',
            language='EN',
            **URLS,
        )[:-1]
        for name, value in changes.items():
            fields = [(k, v) for k, v in fields if k != name]
            if value is not None:
                fields.append((name, value))
        return ipc.sign_fields(fields, SANDBOX_STORE_KEY)

    def authorize(self, order_id='S7_ab12cd34_9', amount_minor=15000):
        result = self.mypos.pay(self.form(order_id, amount_minor), deliver=self.deliver)
        self.assertEqual(result.outcome, 'authorized', result.message)
        return result

    def call(self, method, order_id='S7_ab12cd34_9', amount=None, output_format=None):
        """A signed call as the addon makes it; the verified answer's fields, or the
        :class:`ipc.RemoteError` the addon would see."""
        params = [('OrderID', order_id)]
        if amount is not None:
            params += [('Amount', amount), ('Currency', 'EUR')]
        fields = ipc.build_request(self.store, method, params, source='Odoo tests')
        if output_format:
            fields = ipc.sign_fields(
                [*fields[:-2], ('OutputFormat', output_format)], SANDBOX_STORE_KEY
            )
        try:
            body = self.mypos.post(self.mypos.url, fields)
            tree = ipc.check_answer(body, self.mypos.certificate_pem)
        except ipc.RemoteError as error:
            return error
        return [(name, value) for name, value in tree if name != 'Signature']

    def status_of(self, order_id='S7_ab12cd34_9'):
        answer = self.call('IPCPreAuthStatus', order_id)
        if isinstance(answer, ipc.RemoteError):
            return answer.status_code
        return dict(answer)['IPCPreAuthStatus'], dict(answer)['PreAuthExpDate']

    def assertRefused(self, answer, status):
        self.assertIsInstance(answer, ipc.RemoteError)
        self.assertEqual((answer.kind, answer.status_code), (ipc.Failure.STATUS, status))

    def test_authorization_posts_the_signed_notify_then_the_ok(self):
        result = self.authorize()
        expiry = today() + datetime.timedelta(days=30)
        self.assertEqual(len(self.posted), 1)
        url, notify = self.posted[0]
        self.assertEqual(url, URLS['url_notify'])
        self.assertEqual([name for name, _value in notify], NOTIFY_NAMES)
        self.assertEqual(
            notify[:5],
            [
                ('IPCmethod', 'IPCPreAuthorizationNotify'),
                ('SID', ipc.const.SANDBOX_SID),
                ('Amount', '150.00'),
                ('Currency', 'EUR'),
                ('OrderID', 'S7_ab12cd34_9'),
            ],
        )
        self.assertEqual(dict(notify)['PreAuthExpDate'], expiry.strftime('%y%m%d'))
        message = ipc.read_form(notify).verify(self.mypos.certificate_pem)
        self.assertEqual((message.trnref, message.expiry), (result.ipc_trnref, expiry))
        self.assertEqual(
            (result.return_method, result.return_url),
            ('IPCPreAuthorizationOK', URLS['url_ok']),
        )
        ok = ipc.read_form(result.return_fields).verify(self.mypos.certificate_pem)
        self.assertEqual((ok.order_id, ok.trnref), ('S7_ab12cd34_9', result.ipc_trnref))
        order = self.mypos.order('S7_ab12cd34_9')
        self.assertEqual(
            (order['status'], order['authorized_amount'], order['captured_amount']),
            ('authorized', '150.00', '0.00'),
        )
        self.assertEqual(order['preauth_expiry'], expiry.isoformat())
        self.assertEqual(self.status_of(), ('1', expiry.strftime('%d/%m/%Y')))

    def test_form_checked_as_mypos_does(self):
        """The merchant's signature, ItemName, no cart, no saved card, version 1.4+, a positive
        amount: else refused, nothing held, nothing posted."""
        tampered = [(k, '1500.00' if k == 'Amount' else v) for k, v in self.form()]
        cases = {
            'signature': (tampered, ipc.Status.E_SIGNATURE_FAILED),
            'no ItemName': (self.form(ItemName=None), ipc.Status.E_MISSING_REQ_PARAMS),
            'a cart': (self.form(CartItems='1'), ipc.Status.E_INVALID_PARAMS),
            'a card to save': (self.form(CardTokenRequest='1'), ipc.Status.E_INVALID_PARAMS),
            'version 1.3': (self.form(IPCVersion='1.3'), ipc.Status.E_INVALID_PARAMS),
            'zero amount': (self.form(Amount='0.00'), ipc.Status.E_WRONG_AMOUNT),
            'no URL_Notify': (self.form(URL_Notify=None), ipc.Status.E_MISSING_REQ_PARAMS),
        }
        for name, (fields, status) in cases.items():
            with self.subTest(name):
                result = self.mypos.pay(fields, deliver=self.deliver)
                self.assertEqual((result.outcome, result.status), ('rejected', status))
                self.assertIsNone(self.mypos.order('S7_ab12cd34_9'))
        self.assertEqual(self.posted, [])

    def test_declined_card_posts_nothing(self):
        result = self.mypos.pay(self.form(), card=DECLINED_CARD, deliver=self.deliver)
        self.assertEqual(
            (result.outcome, result.status), ('declined', ipc.Status.E_TRANSACTION_DECLINED)
        )
        self.assertEqual(self.posted, [])
        self.assertEqual(self.status_of(), ('4', ''))
        answer = self.call('IPCPreAuthCompletion', amount='150.00')
        self.assertRefused(answer, ipc.Status.E_TRANSACTION_NOT_PERMITTED)

    def test_unacknowledged_notify_releases_the_hold(self):
        """The choice where myPOS is silent: the hold is released (5), nothing else is posted,
        the browser goes to URL_Cancel."""
        for answer in ((500, 'Internal Server Error'), (200, 'ok'), ConnectionError("down")):
            order_id = f'S7_ab12cd34_{len(self.posted)}'
            with self.subTest(answer):
                self.answer = answer
                result = self.mypos.pay(self.form(order_id), deliver=self.deliver)
                self.assertEqual(result.outcome, 'reversed')
                self.assertEqual(self.posted[-1][1][0], ('IPCmethod', 'IPCPreAuthorizationNotify'))
                self.assertEqual(
                    [n['method'] for n in self.mypos.notifications(order_id)],
                    ['IPCPreAuthorizationNotify'],
                )
                self.assertEqual(
                    (result.return_method, result.return_url),
                    ('IPCPreAuthorizationCancel', URLS['url_cancel']),
                )
                order = self.mypos.order(order_id)
                self.assertEqual(
                    (order['status'], order['released_amount']), ('reversed', '150.00')
                )
                self.assertEqual(self.status_of(order_id)[0], '5')

    def test_notify_faults(self):
        """The emulator's notify switches, as for purchases: dropped (the hold stays, nothing
        posted), sent twice, failed once (the hold released)."""
        cases = [
            ({'notify_drop': True}, 0, 'authorized'),
            ({'notify_duplicate': True}, 2, 'authorized'),
            ({'notify_fail_once': True}, 0, 'reversed'),
        ]
        for index, (switches, posted, outcome) in enumerate(cases):
            with self.subTest(switches):
                self.mypos.reset_faults()
                self.mypos.set_faults(**switches)
                before = len(self.posted)
                result = self.mypos.pay(self.form(f'N{index}_ab12cd34_1'), deliver=self.deliver)
                self.assertEqual((len(self.posted) - before, result.outcome), (posted, outcome))
                self.assertEqual(self.mypos.order(f'N{index}_ab12cd34_1')['status'], outcome)

    def test_cancel_on_the_page(self):
        result = self.mypos.cancel(self.form())
        self.assertEqual(
            [name for name, _value in result.return_fields],
            ['IPCmethod', 'SID', 'Amount', 'Currency', 'OrderID', 'Signature'],
        )
        message = ipc.read_form(result.return_fields).verify(self.mypos.certificate_pem)
        self.assertEqual(
            (message.method, message.amount, message.order_id),
            ('IPCPreAuthorizationCancel', '150.00', 'S7_ab12cd34_9'),
        )
        self.assertEqual(result.return_url, URLS['url_cancel'])
        self.assertEqual(self.status_of(), ipc.Status.E_INVALID_PARAMS)  # Nothing was held.

    def test_completion_once_at_most_the_authorised_amount(self):
        self.authorize()
        self.assertRefused(
            self.call('IPCPreAuthCompletion', amount='150.01'), ipc.Status.E_WRONG_AMOUNT
        )
        self.assertEqual(
            self.call('IPCPreAuthCompletion', amount='120.00'),
            [
                ('IPCmethod', 'IPCPreAuthCompletion'),
                ('Amount', '120.00'),
                ('Currency', 'EUR'),
                ('OrderID', 'S7_ab12cd34_9'),
                ('Status', '0'),
                ('StatusMsg', 'Success'),
            ],
        )
        order = self.mypos.order('S7_ab12cd34_9')
        self.assertEqual(
            (order['status'], order['captured_amount'], order['released_amount']),
            ('captured', '120.00', '30.00'),
        )
        for method, amount in (
            ('IPCPreAuthCompletion', '10.00'),
            ('IPCPreAuthCancellation', '150.00'),
        ):
            with self.subTest(method):
                answer = self.call(method, amount=amount)
                self.assertRefused(answer, ipc.Status.E_TRANSACTION_NOT_PERMITTED)
        self.assertEqual(self.status_of()[0], '3')
        self.assertEqual(self.mypos.order('S7_ab12cd34_9')['captured_amount'], '120.00')

    def test_cancellation_releases_the_whole_hold(self):
        self.authorize()
        answer = self.call('IPCPreAuthCancellation', amount='100.00')  # Partial: unconfirmed.
        self.assertRefused(answer, ipc.Status.E_WRONG_AMOUNT)
        self.assertEqual(
            self.call('IPCPreAuthCancellation', amount='150.00'),
            [
                ('IPCmethod', 'IPCPreAuthCancellation'),
                ('Amount', '150.00'),
                ('Currency', 'EUR'),
                ('Status', '0'),
                ('StatusMsg', 'Success'),
            ],
        )
        order = self.mypos.order('S7_ab12cd34_9')
        self.assertEqual((order['status'], order['captured_amount']), ('cancelled', '0.00'))
        self.assertEqual(self.status_of()[0], '6')
        for method in ('IPCPreAuthCompletion', 'IPCPreAuthCancellation'):
            with self.subTest(method):
                answer = self.call(method, amount='150.00')
                self.assertRefused(answer, ipc.Status.E_TRANSACTION_NOT_PERMITTED)

    def test_unknown_order_ids(self):
        """Unknown to the three calls: 5; a pre-authorisation is unknown to the payment status
        calls (what myPOS says of one is undocumented)."""
        purchase = ipc.build_purchase(
            self.store,
            source='t',
            order_id='P1_ab12cd34_1',
            amount_minor=100,
            decimals=2,
            currency='EUR',
            language='EN',
            **URLS,
        )
        self.assertEqual(self.mypos.pay(purchase, deliver=self.deliver).outcome, 'paid')
        self.authorize()
        for order_id in ('NOPE', 'P1_ab12cd34_1'):
            for method, amount in (
                ('IPCPreAuthCompletion', '1.00'),
                ('IPCPreAuthCancellation', '1.00'),
                ('IPCPreAuthStatus', None),
            ):
                with self.subTest(order_id=order_id, method=method):
                    answer = self.call(method, order_id, amount)
                    self.assertRefused(answer, ipc.Status.E_INVALID_PARAMS)
        answer = dict(self.call('IPCGetTxnStatus'))
        self.assertEqual(answer['StatusMsg'], 'Order not found')
        self.assertNotIn('OrderStatus', answer)
        self.assertEqual(dict(self.call('IPCGetPaymentStatus'))['PaymentStatus'], '0')
        self.assertEqual(self.mypos.order('S7_ab12cd34_9')['status'], 'authorized')

    def test_expiry_controls(self):
        self.authorize()
        self.authorize('S8_ab12cd34_1')
        self.mypos.set_preauth_expiry('S7_ab12cd34_9', today())
        self.assertEqual(self.status_of(), ('1', today().strftime('%d/%m/%Y')))
        yesterday = today() - datetime.timedelta(days=1)
        self.mypos.set_preauth_expiry('S7_ab12cd34_9', yesterday)
        self.assertEqual(self.mypos.order('S7_ab12cd34_9')['status'], 'reversed')
        self.assertEqual(self.status_of(), ('5', yesterday.strftime('%d/%m/%Y')))
        self.mypos.expire('S8_ab12cd34_1')
        self.assertEqual(self.status_of('S8_ab12cd34_1')[0], '5')
        for order_id in ('S7_ab12cd34_9', 'S8_ab12cd34_1'):
            with self.subTest(order_id):
                answer = self.call('IPCPreAuthCompletion', order_id, '150.00')
                self.assertRefused(answer, ipc.Status.E_TRANSACTION_NOT_PERMITTED)
                self.assertEqual(self.mypos.order(order_id)['captured_amount'], '0.00')

    def test_refund_after_capture_with_the_preauthorisation_reference(self):
        trnref = self.authorize().ipc_trnref

        def refund(amount, order_id):
            params = [('IPC_Trnref', trnref), ('Amount', amount), ('Currency', 'EUR')]
            fields = ipc.build_request(
                self.store, 'IPCRefund', [*params, ('OrderID', order_id)], source='t'
            )
            try:
                return ipc.check_answer(
                    self.mypos.post(self.mypos.url, fields), self.mypos.certificate_pem
                )
            except ipc.RemoteError as error:
                return error

        self.assertRefused(refund('10.00', 'R1'), ipc.Status.E_TRANSACTION_NOT_PERMITTED)
        self.call('IPCPreAuthCompletion', amount='120.00')
        self.assertRefused(refund('120.01', 'R2'), ipc.Status.E_WRONG_AMOUNT)
        self.assertEqual(ipc.get_field(refund('120.00', 'R3'), 'Status'), '0')
        self.assertEqual(self.mypos.order('S7_ab12cd34_9')['refunded'], '120.00')

    def test_held_order_id_refuses_another_payment(self):
        self.authorize()
        purchase = ipc.build_purchase(
            self.store,
            source='t',
            order_id='S7_ab12cd34_9',
            amount_minor=100,
            decimals=2,
            currency='EUR',
            language='EN',
            **URLS,
        )
        for fields in (purchase, self.form()):
            result = self.mypos.pay(fields, deliver=self.deliver)
            self.assertEqual(
                (result.outcome, result.status), ('rejected', ipc.Status.E_DUPLICATE_TRANSMISSION)
            )
        self.assertEqual(len(self.posted), 1)

    def test_answers_in_the_requested_format(self):
        self.authorize()
        fields = ipc.build_request(
            self.store, 'IPCPreAuthStatus', [('OrderID', 'S7_ab12cd34_9')], source='t'
        )
        self.assertTrue(self.mypos.post(self.mypos.url, fields).startswith(b'{'))
        answer = self.call('IPCPreAuthStatus', output_format='xml')
        self.assertEqual(dict(answer)['IPCPreAuthStatus'], '1')

    def test_faults_apply_to_the_calls(self):
        """Each api_* fault on a completion: what the addon sees, whether myPOS captured, and the
        call as recorded."""
        cases = [
            ({'api_http_status': 503}, ipc.Failure.HTTP, False),
            ({'api_drop_answer': True}, ipc.Failure.LOST, True),
            ({'api_timeout': ipc.const.REQUEST_TIMEOUT}, ipc.Failure.TIMEOUT, True),
            ({'api_garbage': True}, ipc.Failure.GARBAGE, True),
            ({'api_unsigned': True}, ipc.Failure.UNSIGNED, True),
            ({'api_bad_signature': True}, ipc.Failure.SIGNATURE, True),
            ({'api_status_text': '00'}, ipc.Failure.UNCLEAR, True),
        ]
        for index, (switches, kind, processed) in enumerate(cases):
            order_id = f'F{index}_ab12cd34_1'
            with self.subTest(switches):
                self.authorize(order_id)
                self.mypos.set_faults(**switches, api_faults_remaining=1)
                answer = self.call('IPCPreAuthCompletion', order_id, '150.00')
                self.assertIsInstance(answer, ipc.RemoteError)
                self.assertEqual(answer.kind, kind)
                status = self.mypos.order(order_id)['status']
                self.assertEqual(status, 'captured' if processed else 'authorized')
                call = self.mypos.api_calls()[-1]
                self.assertEqual(
                    (call['method'], call['order_id'], call['amount'], call['status']),
                    ('IPCPreAuthCompletion', order_id, '150.00', 0 if processed else None),
                )
                self.assertTrue(call['fault'])
                self.assertEqual(self.status_of(order_id)[0], '3' if processed else '1')
