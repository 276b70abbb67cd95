# Part of payment_mypos. License LGPL-3.
"""The protocol of saved cards, without Odoo's flows: the purchase's CardTokenRequest, the charge
IPCIAPurchase as signed and answered, and the card read from a notification.

https://developers.mypos.com/apis/checkout-api/purchase
https://developers.mypos.com/apis/checkout-api/purchase-notify
docs/mypos-protocol.md §4.11
"""

from hypothesis import given, settings
from hypothesis import strategies as st

from odoo.tests import BaseCase, tagged

from odoo.addons.payment_mypos import ipc
from odoo.addons.payment_mypos.tests.common import SANDBOX_STORE_KEY, generate_key_pair

_MYPOS_KEY, MYPOS_CERT = generate_key_pair()
STORE = ipc.Credentials('000000000000010', '61938166610', 1, SANDBOX_STORE_KEY, MYPOS_CERT)
URLS = {
    f'url_{name}': f'https://shop.example/payment/mypos/{name}'
    for name in ('ok', 'cancel', 'notify')
}


def purchase(card_token_request):
    return ipc.build_purchase(
        STORE,
        source='tests',
        order_id='S1_ab12cd34_7',
        amount_minor=2345,
        decimals=2,
        currency='EUR',
        language='EN',
        card_token_request=card_token_request,
        **URLS,
    )


def notification(**extras):
    return ipc.Message(method='IPCPurchaseNotify', extras=tuple(extras.items()))


@tagged('post_install', '-at_install')
class TestCardTokenRequest(BaseCase):
    def test_pay_and_store_is_a_payment(self):
        fields = dict(purchase('2'))
        self.assertEqual(
            (fields['CardTokenRequest'], fields['Amount'], fields['CartItems']), ('2', '23.45', '1')
        )

    def test_store_only_posts_no_amount_and_no_cart(self):
        fields = purchase('1')
        names = [name for name, _value in fields]
        self.assertEqual(dict(fields)['CardTokenRequest'], '1')
        self.assertNotIn('Amount', names)
        self.assertFalse([name for name in names if name.startswith(('Cart', 'Article_'))])
        self.assertEqual(dict(fields)['Currency'], 'EUR')
        public = ipc.public_key_pem(SANDBOX_STORE_KEY)
        self.assertTrue(ipc.verify([v for n, v in fields[:-1]], fields[-1][1], public))

    def test_other_values_refused(self):
        for value in ('3', '', 2, None):
            with self.subTest(value=value), self.assertRaises(ipc.IPCError):
                purchase(value)


@tagged('post_install', '-at_install')
class TestTokenPurchase(BaseCase):
    def test_fields_in_order_and_signed(self):
        params = ipc.token_purchase_params(
            order_id='INV_2026_1_ab12cd34_9',
            amount_minor=10000,
            decimals=2,
            currency='EUR',
            card_token='EMU0123456789ABCDEF',
        )
        fields = ipc.build_request(STORE, ipc.const.TOKEN_PURCHASE_METHOD, params, source='tests')
        self.assertEqual(
            [name for name, _value in fields],
            [
                *('IPCmethod', 'IPCVersion', 'IPCLanguage', 'SID', 'WalletNumber', 'KeyIndex'),
                *('Source', 'OrderID', 'Amount', 'Currency', 'CardToken', 'CartItems'),
                *('Article_1', 'Quantity_1', 'Price_1', 'Currency_1', 'Amount_1'),
                *('OutputFormat', 'Signature'),
            ],
        )
        self.assertEqual(dict(fields)['Amount'], '100.00')
        public = ipc.public_key_pem(SANDBOX_STORE_KEY)
        self.assertTrue(ipc.verify([v for n, v in fields[:-1]], fields[-1][1], public))

    def test_bad_token_or_cart_refused(self):
        base = {'order_id': 'A_1', 'amount_minor': 100, 'decimals': 2, 'currency': 'EUR'}
        for token in ('', 'two words', 'x' * 51, None, 'é'):
            with self.subTest(token=token), self.assertRaises(ipc.IPCError):
                ipc.token_purchase_params(card_token=token, **base)
        cart = ipc.build_cart((), 99, 2, 'EUR', 'A_1')
        with self.assertRaises(ipc.IPCError):
            ipc.token_purchase_params(card_token='T1', cart=cart, **base)

    def test_answer_read_by_position(self):
        tree = [
            ('IPCmethod', 'IPCIAPurchase'),
            ('IPC_Trnref', '813705'),
            ('Amount', '100.00'),
            ('Currency', 'EUR'),
            ('Status', '0'),
            ('StatusMsg', 'Success'),
        ]
        message = ipc.layouts.read_answer(tree, ipc.const.TOKEN_PURCHASE_METHOD)
        self.assertEqual(
            (message.trnref, message.amount, message.currency, message.status),
            ('813705', '100.00', 'EUR', '0'),
        )
        self.assertEqual(message.sid, '')  # Answers carry no SID: the transaction skips it.
        for broken in (
            [tree[0], tree[2], tree[1], *tree[3:]],  # Amount and IPC_Trnref swapped.
            [('IPCmethod', 'IPCRefund'), *tree[1:]],  # Another call's answer.
            [tree[0], ('IPC_Trnref', '81-3705'), *tree[2:]],  # A re-cut reference.
        ):
            with self.subTest(broken=broken), self.assertRaises(ipc.MalformedMessage):
                ipc.layouts.read_answer(broken, ipc.const.TOKEN_PURCHASE_METHOD)


@tagged('post_install', '-at_install')
class TestReadCard(BaseCase):
    def test_card(self):
        card = ipc.read_card(
            notification(PAN='0007', CardToken='EMU1', ExpDate='3012', CardType='3')
        )
        self.assertEqual(card, ipc.Card(token='EMU1', last4='0007', expiry='12/30', card_type='3'))

    def test_masked_number_and_unknown_brand(self):
        card = ipc.read_card(
            notification(PAN='400609******0007', CardToken='T', ExpDate='2601', CardType='x')
        )
        self.assertEqual((card.last4, card.expiry, card.card_type), ('0007', '01/26', ''))

    def test_no_token_no_card(self):
        self.assertIsNone(ipc.read_card(notification(PAN='0007', ExpDate='3012')))

    def test_ill_formed_refused(self):
        for extras in (
            {'CardToken': 'a b', 'PAN': '0007', 'ExpDate': '3012'},
            {'CardToken': 'T', 'PAN': '007', 'ExpDate': '3012'},
            {'CardToken': 'T', 'PAN': '0007', 'ExpDate': '3013'},
            {'CardToken': 'T', 'PAN': '0007'},
        ):
            with self.subTest(extras=extras), self.assertRaises(ipc.MalformedMessage):
                ipc.read_card(notification(**extras))

    @settings(max_examples=300, deadline=None)
    @given(
        token=st.text(max_size=60),
        pan=st.text(max_size=20),
        exp=st.text(max_size=6),
        card_type=st.text(max_size=3),
    )
    def test_any_input_is_a_clean_card_or_refused(self, token, pan, exp, card_type):
        """Whatever myPOS's extras hold, the card is well formed or refused, never half read."""
        message = notification(CardToken=token, PAN=pan, ExpDate=exp, CardType=card_type)
        try:
            card = ipc.read_card(message)
        except ipc.MalformedMessage:
            return
        if card is None:
            self.assertFalse(token)
            return
        self.assertTrue(ipc.is_card_token(card.token))
        self.assertRegex(card.last4, r'^[0-9]{4}$')
        self.assertRegex(card.expiry, r'^(0[1-9]|1[0-2])/[0-9]{2}$')
        self.assertIn(card.card_type, {'', *'12345678'})
