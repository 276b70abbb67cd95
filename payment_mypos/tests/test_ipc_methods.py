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
