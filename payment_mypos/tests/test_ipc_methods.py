# Part of payment_mypos. License LGPL-3.
"""The payment methods myPOS's page offers (`PaymentMethod`): what a purchase may post, what a
notification says was used, and that no shopper text or re-cut of the signed values reads as
another list of methods (docs/mypos-protocol.md §3.3a); no database involved."""

import json
import re
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from odoo.tests import BaseCase, tagged

from odoo.addons.payment_mypos import ipc
from odoo.addons.payment_mypos.ipc import testing as ipc_testing
from odoo.addons.payment_mypos.tests.common import (
    SANDBOX_STORE_KEY,
    generate_key_pair,
    read_addon_file,
    read_test_file,
)

SANDBOX_CERT = read_addon_file('data/sandbox/mypos-public-cert.pem')
VECTORS = json.loads(read_test_file('test_vectors.json'))
INCOMING = VECTORS['incoming_messages_signed_by_mypos_verify_with_mypos-public-cert.pem']
MYPOS_KEY, MYPOS_CERT = generate_key_pair()
STORE = ipc.Credentials(
    ipc.const.SANDBOX_SID, ipc.const.SANDBOX_WALLET_NUMBER, 1, SANDBOX_STORE_KEY, MYPOS_CERT
)
URLS = {
    'url_ok': 'https://my-shop.example/payment/mypos/return',
    'url_cancel': 'https://my-shop.example/payment/mypos/cancel',
    'url_notify': 'https://my-shop.example/payment/mypos/webhook',
}
NOTIFY = [
    ('IPCmethod', 'IPCPurchaseNotify'),
    ('SID', ipc.const.SANDBOX_SID),
    ('Amount', '12.50'),
    ('Currency', 'CHF'),
    ('OrderID', 'S1_ab12cd34_7'),
    ('IPC_Trnref', '410227'),
    ('RequestDateTime', '2026-12-05 01:49:48'),
]
# The merchant's own numbers: a shopper may re-label them whatever they type (the notification's
# method is checked against the purchase's list for that); no shopper text is among them.
MERCHANT_NUMBERS = re.compile(
    r'KeyIndex|CardTokenRequest|PaymentParametersRequired|CartItems|Quantity_[0-9]+|PaymentMethod'
)
# Text myPOS might take for a `PaymentMethod`, however lenient its reading.
HOSTILE = [
    '1,5',
    '2',
    ' 5 ',
    '1 , 2',
    '1;6',
    '1 2',
    '4,6',
    '1\uff0c5',  # Full-width comma.
    '\uff15',  # Full-width 5.
    '1,2,3,4,5,6',
    '12,5',
    '1\u200b,5',  # A zero-width space inside.
    '5-1',
    '1000',  # A postcode: kept, myPOS has no such method.
    '105 57',  # A Greek postcode: kept.
]


def purchase(payment_method='1', currency='EUR', customer=(), cart=(), reference='S1'):
    return ipc.build_purchase(
        STORE,
        source='tests',
        order_id=ipc.make_order_id(reference, 'ab12cd34', 7),
        amount_minor=1250,
        decimals=2,
        currency=currency,
        language='EN',
        customer=customer,
        cart=cart,
        payment_method=payment_method,
        **URLS,
    )


def message(extras):
    return ipc.read_form(ipc.sign_fields([*NOTIFY, *extras], MYPOS_KEY)).verify(MYPOS_CERT)


def methods_read(text):
    """The list of methods myPOS could read in `text` (any blanks, NFKC), or None."""
    text = re.sub(r'\s|[\u200b-\u200d\u2060\ufeff]', '', unicodedata.normalize('NFKC', text))
    parts = re.split(r'[,;]', text)
    if text and all(part in ipc.const.PAYMENT_METHODS or part == '3' for part in parts):
        return parts
    return None


@tagged('post_install', '-at_install')
class TestPurchaseMethods(BaseCase):
    def test_methods_and_their_names(self):
        self.assertEqual(
            ipc.const.PAYMENT_METHODS,
            {'1': 'card', '2': 'ideal', '4': 'satispay', '5': 'twint', '6': 'iris'},
        )
        self.assertEqual(ipc.const.PAYMENT_METHOD_CARD, '1')

    def test_the_list_is_posted_where_the_card_was(self):
        for value in ('1', '2', '5', '1,5', '1,2,5', '6,4,2,1,5'):
            with self.subTest(value):
                fields = purchase(value)
                names = [name for name, _value in fields]
                self.assertEqual(dict(fields)['PaymentMethod'], value)
                self.assertEqual(names.index('PaymentMethod'), 15)  # After the card token fields.
                self.assertEqual(names.count('PaymentMethod'), 1)
                values = [value for _name, value in fields[:-1]]
                self.assertTrue(
                    ipc.verify(values, fields[-1][1], ipc.public_key_pem(STORE.private_key))
                )

    def test_card_by_default(self):
        fields = ipc.build_purchase(
            STORE,
            source='tests',
            order_id='S1_ab12cd34_7',
            amount_minor=100,
            decimals=2,
            currency='EUR',
            language='EN',
            **URLS,
        )
        self.assertEqual(dict(fields)['PaymentMethod'], '1')

    def test_lists_not_posted(self):
        refused = ['', '3', '1,3', '7', '0', '1,1', '5,1,5', '1, 5', ' 1', '1,', ',1', '1;5',
                   '15', 'card', '\uff11', None, 1, ['1']]  # fmt: skip
        for value in refused:
            with self.subTest(value), self.assertRaises(ipc.IPCError) as caught:
                purchase(value)
            self.assertEqual(caught.exception.code, 'payment_method')

    def test_shopper_text_never_a_method(self):
        """No customer field or cart name a shopper types is posted as something myPOS could read
        as a `PaymentMethod`; postcodes stay."""
        for text in HOSTILE:
            with self.subTest(text):
                customer = ipc.customer_fields(
                    email=text, name=f'{text} {text}', city=text, zip_code=text, address=text
                )
                cart = ipc.build_cart([(text, 1, 1250)], 1250, 2, 'EUR', text)
                for name, value in [*customer, *cart]:
                    if not MERCHANT_NUMBERS.fullmatch(name) and not name.startswith(
                        ('Price_', 'Amount_', 'Currency_')
                    ):
                        self.assertIsNone(methods_read(value), f"{name}={value!r}")
        zip_codes = [dict(ipc.customer_fields(zip_code=z)).get('CustomerZIPCode') for z in
                     ('1000', '105 57', '8001')]  # fmt: skip
        self.assertEqual(zip_codes, ['1000', '105 57', '8001'])

    @settings(max_examples=300, deadline=None, database=None, derandomize=True)
    @given(
        chosen=st.lists(
            st.sampled_from(sorted(ipc.const.PAYMENT_METHODS)), min_size=1, unique=True
        ),
        texts=st.lists(st.sampled_from(HOSTILE) | st.text(max_size=12), min_size=8, max_size=8),
        quantity=st.integers(1, 9),
    )
    def test_no_recut_reads_another_list(self, chosen, texts, quantity):
        """Whatever the shopper types, the only list of methods any re-cut of the signed values
        reads is the one posted; single methods only at the merchant's own numbers."""
        posted = ','.join(chosen)
        email, name, city, zip_code, address, article, reference, phone = texts
        customer = ipc.customer_fields(
            email=email, name=name, phone=phone, city=city, zip_code=zip_code, address=address
        )
        cart = ipc.build_cart([(article, quantity, quantity * 125)], quantity * 125, 2, 'EUR', 'x')
        fields = ipc.build_purchase(
            STORE,
            source='tests',
            order_id=ipc.make_order_id(reference, 'ab12cd34', 7),
            amount_minor=quantity * 125,
            decimals=2,
            currency='EUR',
            language='EN',
            customer=customer,
            cart=cart,
            payment_method=posted,
            **URLS,
        )
        pieces = []  # (field the piece comes from, piece) for every cut at a '-'.
        for field, value in fields[:-1]:
            pieces += [(field, piece) for piece in value.split('-')]
        for start in range(len(pieces)):
            for end in range(start + 1, len(pieces) + 1):
                reading = '-'.join(piece for _field, piece in pieces[start:end])
                read = methods_read(reading)
                if read is None:
                    continue
                field = pieces[start][0]
                self.assertEqual(end - start, 1, reading)
                self.assertRegex(field, MERCHANT_NUMBERS, f"{field}={reading!r}")
                if len(read) > 1:
                    self.assertEqual((field, reading), ('PaymentMethod', posted))


@tagged('post_install', '-at_install')
class TestReadPaymentMethod(BaseCase):
    def test_sandbox_notification_says_card(self):
        """The verified sandbox notify (2024-07-30) carries `PaymentMethod=1`."""
        vector = next(v for v in INCOMING if 'raw_body' in v)
        notify = ipc.read_form(ipc.parse_form(vector['raw_body'].encode())).verify(SANDBOX_CERT)
        self.assertEqual(ipc.read_payment_method(notify), '1')

    def test_status_answer_without_method(self):
        """The sandbox status answer's nested notify names no method: None, not an error."""
        vector = next(v for v in INCOMING if 'raw_json' in v)
        tree = ipc.parse_response(vector['raw_json'])
        nested = ipc.read_form(ipc.get_field(tree, 'OrderStatus')).verify(SANDBOX_CERT)
        self.assertIsNone(ipc.read_payment_method(nested))

    def test_each_method(self):
        for value in ipc.const.PAYMENT_METHODS:
            with self.subTest(value):
                self.assertEqual(
                    ipc.read_payment_method(message([('PaymentMethod', value)])), value
                )
        self.assertEqual(ipc.read_payment_method(message([('paymentmethod', '5')])), '5')
        self.assertIsNone(ipc.read_payment_method(message([('PaymentMethod', '')])))
        self.assertIsNone(ipc.read_payment_method(message([('CardType', '1')])))

    def test_anything_else_refused(self):
        for value in ('1,5', '3', '7', 'x', ' 1', '1 ', '01', '\uff11', '2,2'):
            with self.subTest(value), self.assertRaises(ipc.MalformedMessage) as caught:
                ipc.read_payment_method(message([('PaymentMethod', value)]))
            self.assertEqual(
                (caught.exception.code, caught.exception.params.get('name')),
                ('value_format', 'PaymentMethod'),
            )

    def test_named_twice_refused(self):
        with self.assertRaises(ipc.MalformedMessage):
            message([('PaymentMethod', '1'), ('PaymentMethod', '5')])

    @settings(max_examples=300, deadline=None, database=None, derandomize=True)
    @given(value=st.sampled_from(['1', '2', '4', '5', '6', '3', '1,5', '']) | st.text(max_size=6))
    def test_read_as_one_method_or_refused(self, value):
        try:
            notify = message([('PaymentMethod', value)])
        except ipc.MalformedMessage:
            self.assertIn('\x00', value)  # Refused before anything is read.
            return
        try:
            read = ipc.read_payment_method(notify)
        except ipc.MalformedMessage as error:
            self.assertNotIn(value, ipc.const.PAYMENT_METHODS)
            self.assertNotEqual(value, '')
            self.assertIn('PaymentMethod', str(error))
        else:
            self.assertEqual(read, value or None)
            self.assertTrue(read is None or read in ipc.const.PAYMENT_METHODS)


@tagged('post_install', '-at_install')
class TestFakeMethods(BaseCase):
    """The fake myPOS's page offers the purchase's methods usable in its currency; the notify,
    the browser's OK and the status answer's nested notify say which one was used."""

    def setUp(self):
        super().setUp()
        self.mypos = ipc_testing.FakeMyPOS(SANDBOX_STORE_KEY, key_pair=(MYPOS_KEY, MYPOS_CERT))
        self.posted = []  # What myPOS posted to URL_Notify: (url, pairs).

    def deliver(self, url, pairs):
        self.posted.append((url, pairs))
        return 200, 'OK'

    def form(self, methods='1', currency='EUR', token_request='0', order_id='S1_ab12cd34_7'):
        """A signed IPCPurchase form; `methods` None: no PaymentMethod posted."""
        fields = ipc.build_purchase(
            STORE,
            source='tests',
            order_id=order_id,
            amount_minor=1250,
            decimals=2,
            currency=currency,
            language='EN',
            card_token_request=token_request,
            **URLS,
        )[:-1]
        if methods != '1':
            fields = [(k, v) for k, v in fields if k != 'PaymentMethod']
            fields += [] if methods is None else [('PaymentMethod', methods)]
        return ipc.sign_fields(fields, SANDBOX_STORE_KEY)

    def pay(self, methods='1', currency='EUR', method=None, **form):
        return self.mypos.pay(
            self.form(methods, currency, **form), method=method, deliver=self.deliver
        )

    def paid_with(self, methods, currency):
        """The methods a shopper can pay a purchase with, each on a fresh page."""
        usable = []
        for method in ('1', '2', '4', '5', '6'):
            self.mypos.reset()
            result = self.pay(methods, currency, method=method)
            if result.outcome == 'paid':
                usable.append(method)
            else:
                self.assertEqual(
                    (result.outcome, result.status), ('rejected', ipc.Status.E_INVALID_PARAMS)
                )
                self.assertIsNone(self.mypos.order('S1_ab12cd34_7'))
        return usable

    def call(self, method, params):
        fields = ipc.build_request(STORE, method, params, source='tests')
        body = self.mypos.post(self.mypos.url, fields)
        return ipc.check_answer(body, self.mypos.certificate_pem)

    def test_page_offers_the_listed_methods_of_the_currency(self):
        cases = {
            ('1', 'EUR'): ['1'],
            ('1,2,4,5,6', 'EUR'): ['1', '2', '4', '6'],
            ('1,2,4,5,6', 'CHF'): ['1', '5'],
            ('1,5', 'BGN'): ['1'],
            ('2,5', 'CHF'): ['5'],
            ('3', 'EUR'): ['1', '2'],  # Card and iDEAL, as documented.
            (None, 'EUR'): ['1', '2', '4', '6'],  # No PaymentMethod: every method.
            (None, 'CHF'): ['1', '5'],
        }
        for (methods, currency), expected in cases.items():
            with self.subTest(methods=methods, currency=currency):
                self.assertEqual(self.paid_with(methods, currency), expected)

    def test_refused_lists(self):
        cases = [
            ('2,4,6', 'CHF'),  # None usable in CHF.
            ('5', 'EUR'),
            ('7', 'EUR'),
            ('1,1', 'EUR'),
            ('3,2', 'EUR'),  # iDEAL twice.
            (' 1', 'EUR'),
            ('1;5', 'CHF'),
        ]
        for methods, currency in cases:
            with self.subTest(methods=methods, currency=currency):
                result = self.pay(methods, currency)
                self.assertEqual(
                    (result.outcome, result.status), ('rejected', ipc.Status.E_INVALID_PARAMS)
                )
                self.assertIn('PaymentMethod', result.message)
                self.assertEqual(self.posted, [])
                self.assertEqual(
                    self.mypos.cancel(self.form(methods, currency)).outcome, 'rejected'
                )

    def test_default_is_the_first_usable(self):
        result = self.pay('5,2,1', 'EUR')
        self.assertEqual((result.outcome, result.payment_method), ('paid', '2'))
        self.assertEqual(self.mypos.order('S1_ab12cd34_7')['payment_method'], '2')

    def test_other_methods_carry_no_card(self):
        for methods, currency, method in (('1,5', 'CHF', '5'), ('1,2', 'EUR', '2'),
                                          ('1,4', 'EUR', '4'), ('6,1', 'EUR', '6')):  # fmt: skip
            with self.subTest(method):
                self.mypos.reset()
                self.posted = []
                result = self.pay(methods, currency, method, token_request='2')
                self.assertEqual(result.outcome, 'paid', result.message)
                (url, notify), = self.posted  # fmt: skip
                self.assertEqual(url, URLS['url_notify'])
                for pairs in (notify, result.return_fields):
                    message = ipc.read_form(pairs).verify(MYPOS_CERT)
                    self.assertEqual(ipc.read_payment_method(message), method)
                    names = {name for name, _value in pairs}
                    self.assertFalse(names & {'PAN', 'CardType', 'ExpDate', 'CardToken'}, names)
                self.assertEqual(self.mypos.state()['tokens'], {})  # Nothing saved.
                order = self.mypos.order('S1_ab12cd34_7')
                self.assertEqual((order['payment_method'], order['pan']), (method, None))

    def test_card_keeps_its_details(self):
        result = self.pay('1,2', 'EUR', '1', token_request='2')
        notify = dict(self.posted[0][1])
        self.assertEqual(notify['PaymentMethod'], '1')
        self.assertEqual((notify['PAN'], notify['CardType']), ('0007', '3'))
        self.assertEqual(notify['CardToken'], self.mypos.card_token())
        self.assertEqual(result.payment_method, '1')

    def test_declining_cards_only(self):
        declined = '4877000000000002'
        self.assertEqual(self.mypos.pay(self.form('1,5', 'CHF'), card=declined).outcome, 'declined')
        self.mypos.reset()
        result = self.mypos.pay(self.form('1,5', 'CHF'), card=declined, method='5')
        self.assertEqual(result.outcome, 'paid')

    def test_storing_a_card_needs_the_card(self):
        for token_request in ('1', '2'):
            with self.subTest(token_request):
                result = self.pay('2,5', 'EUR', token_request=token_request)
                self.assertEqual(
                    (result.outcome, result.status), ('rejected', ipc.Status.E_INVALID_PARAMS)
                )
                self.assertIn('CardTokenRequest', result.message)
        # Storing a card only: the page offers the card alone.
        self.assertEqual(self.pay('1,2', 'EUR', '2', token_request='1').outcome, 'rejected')
        self.assertEqual(self.pay('1,2', 'EUR', '1', token_request='1').payment_method, '1')

    def test_status_answers_echo_the_method(self):
        self.pay('1,5', 'CHF', '5')
        tree = self.call('IPCGetTxnStatus', [('OrderID', 'S1_ab12cd34_7')])
        nested = ipc.read_form(ipc.get_field(tree, 'OrderStatus')).verify(MYPOS_CERT)
        self.assertEqual(
            (nested.method, ipc.read_payment_method(nested)), ('IPCPurchaseNotify', '5')
        )
        tree = self.call('IPCGetPaymentStatus', [('OrderID', 'S1_ab12cd34_7')])
        self.assertEqual(ipc.get_field(tree, 'PaymentMethod'), '5')

    def test_refund_of_any_method(self):
        for methods, currency, method in (('1,5', 'CHF', '5'), ('2', 'EUR', '2'),
                                          ('4', 'EUR', '4'), ('6', 'EUR', '6')):  # fmt: skip
            with self.subTest(method):
                self.mypos.reset()
                result = self.pay(methods, currency, method)
                params = [('IPC_Trnref', result.ipc_trnref), ('Amount', '2.50'),
                          ('Currency', currency), ('OrderID', 'R1_ab12cd34_8')]  # fmt: skip
                answer = ipc.layouts.read_answer(self.call('IPCRefund', params), 'IPCRefund')
                self.assertEqual((answer.status, answer.amount), ('0', '2.50'))
                self.assertEqual(self.mypos.order('S1_ab12cd34_7')['refunded'], '2.50')

    def test_notify_payment_method_fault(self):
        """The notify names a method the purchase did not allow; the order keeps the one used."""
        self.mypos.set_faults(notify_payment_method='2')
        result = self.pay('1', 'EUR')
        for pairs in (self.posted[0][1], result.return_fields):
            message = ipc.read_form(pairs).verify(MYPOS_CERT)
            self.assertEqual(ipc.read_payment_method(message), '2')
        self.assertEqual(dict(self.posted[0][1])['PAN'], '0007')  # Still a card payment.
        self.assertEqual(self.mypos.order('S1_ab12cd34_7')['payment_method'], '1')
        self.mypos.set_faults(notify_payment_method=5)
        self.assertEqual(self.mypos.state()['faults']['notify_payment_method'], '5')
        self.mypos.set_faults(notify_payment_method='1,5')
        self.pay('1', 'EUR', order_id='S2_ab12cd34_9')
        message = ipc.read_form(self.posted[-1][1]).verify(MYPOS_CERT)
        with self.assertRaises(ipc.MalformedMessage):
            ipc.read_payment_method(message)
        with self.assertRaises(ValueError):
            self.mypos.set_faults(notify_payment_method=['2'])
        self.mypos.reset_faults()
        self.pay('1', 'EUR', order_id='S3_ab12cd34_9')
        self.assertEqual(dict(self.posted[-1][1])['PaymentMethod'], '1')

    def test_preauthorization_by_card_only(self):
        fields = ipc.build_preauthorization(
            STORE,
            source='tests',
            order_id='S4_ab12cd34_9',
            amount_minor=1250,
            decimals=2,
            currency='EUR',
            item_name='S4',
            language='EN',
            **URLS,
        )
        result = self.mypos.pay(fields, method='2', deliver=self.deliver)
        self.assertEqual((result.outcome, result.status), ('rejected', ipc.Status.E_INVALID_PARAMS))
        self.assertEqual(self.mypos.pay(fields, deliver=self.deliver).outcome, 'authorized')
        self.assertEqual(self.mypos.order('S4_ab12cd34_9')['payment_method'], '1')
