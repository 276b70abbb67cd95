# Part of payment_mypos. License LGPL-3.

import re
from unittest.mock import patch

import requests
from lxml import html

from odoo import release
from odoo.modules.module import get_manifest
from odoo.tests import tagged

from odoo.addons.payment_mypos import ipc
from odoo.addons.payment_mypos.tests.common import (
    SALE_LINE_TAXES,
    SANDBOX_STORE_KEY,
    MyPOSCommon,
    public_key_pem,
)

BASE_URL = 'http://shop.example.com'
# The addon's version without the series Odoo prefixes (18.0.1.3.0 -> 1.3.0), as Odoo reads it.
ADDON_VERSION = get_manifest('payment_mypos')['version'].removeprefix(f'{release.series}.')


@tagged('post_install', '-at_install')
class TestPaymentTransaction(MyPOSCommon):
    def setUp(self):
        super().setUp()
        self.startPatcher(
            patch(
                'odoo.addons.payment.models.payment_provider.PaymentProvider.get_base_url',
                return_value=BASE_URL,
            )
        )

    def _render(self, tx):
        return tx._get_specific_rendering_values(None)

    def test_rendering_values(self):
        """The purchase carries the store, amount, URLs and customer, signed in posted order."""
        tx = self._create_mypos_transaction(reference='S00042-1')
        values = self._render(tx)
        self.assertEqual(values['api_url'], ipc.const.SANDBOX_URL)
        fields = values['fields']
        self.assertEqual(
            fields[:-1],
            [
                ('IPCmethod', 'IPCPurchase'),
                ('IPCVersion', '1.4'),
                ('IPCLanguage', 'EN'),
                ('SID', '000000000000010'),
                ('WalletNumber', '61938166610'),
                ('KeyIndex', '1'),
                ('Source', f'odoo{release.version_info[0]}_payment_mypos {ADDON_VERSION}'),
                ('Amount', '1111.11'),
                ('Currency', 'EUR'),
                ('OrderID', tx.mypos_order_id),
                ('URL_OK', f'{BASE_URL}/payment/mypos/return'),
                ('URL_Cancel', f'{BASE_URL}/payment/mypos/cancel'),
                ('URL_Notify', f'{BASE_URL}/payment/mypos/webhook'),
                ('CardTokenRequest', '0'),
                ('PaymentParametersRequired', '2'),
                ('PaymentMethod', '1'),
                ('CustomerEmail', 'norbert.buyer@example.com'),
                ('CustomerFirstNames', 'Norbert'),
                ('CustomerFamilyName', 'Buyer'),
                ('CustomerPhone', '+3212345678'),
                ('CustomerCountry', 'BEL'),
                ('CustomerCity', 'Sin City'),
                ('CustomerZIPCode', '1000'),
                ('CustomerAddress', 'Huge Street 2/543'),
                ('CartItems', '1'),
                ('Article_1', 'S00042\u20101'),  # No '-' a re-cut could use.
                ('Quantity_1', '1'),
                ('Price_1', '1111.11'),
                ('Currency_1', 'EUR'),
                ('Amount_1', '1111.11'),
            ],
        )
        name, signature = fields[-1]
        self.assertEqual(name, 'Signature')
        self.assertTrue(
            ipc.verify(
                [value for _name, value in fields[:-1]],
                signature,
                public_key_pem(SANDBOX_STORE_KEY),
            )
        )

    def test_order_id_unique_per_attempt_and_database(self):
        """Each attempt gets its own OrderID, tagged with this database, at most 80 characters."""
        db_uuid = self.env['ir.config_parameter'].get_param('database.uuid')
        tx1 = self._create_mypos_transaction(reference='INV/2026/00001-1')
        tx2 = self._create_mypos_transaction(reference='INV/2026/00001-2')
        for tx in (tx1, tx2):
            self.assertRegex(tx.mypos_order_id, rf'^INV_2026_00001_\d_[0-9a-f]{{8}}_{tx.id}$')
        self.assertNotEqual(tx1.mypos_order_id, tx2.mypos_order_id)
        tag = tx1.mypos_order_id.split('_')[-2]
        self.env['ir.config_parameter'].set_param('database.uuid', db_uuid + 'x')
        tx3 = self._create_mypos_transaction(reference='INV/2026/00001-3')
        self.assertNotEqual(tx3.mypos_order_id.split('_')[-2], tag)
        self.assertEqual(tx1._mypos_get_order_id(), tx1.mypos_order_id)  # Stable once given.
        tx4 = self._create_mypos_transaction(reference='X' * 120)
        self.assertEqual(len(tx4.mypos_order_id), 80)

    def test_language_from_partner(self):
        self.env['res.lang']._activate_lang('bg_BG')
        self.env['res.lang']._activate_lang('ja_JP')
        for lang, expected in (('bg_BG', 'BG'), ('ja_JP', 'EN'), ('fr_FR', 'FR')):
            self.env['res.lang']._activate_lang(lang)
            with self.subTest(lang=lang):
                self.partner.lang = lang
                tx = self._create_mypos_transaction(reference=f'lang-{lang}')
                self.assertEqual(dict(self._render(tx)['fields'])['IPCLanguage'], expected)

    def test_sandbox_url_used_in_test_state(self):
        self.env['ir.config_parameter'].set_param(
            'payment_mypos.sandbox_url', 'http://127.0.0.1:8899/vmp/checkout-test'
        )
        tx = self._create_mypos_transaction()
        self.assertEqual(self._render(tx)['api_url'], 'http://127.0.0.1:8899/vmp/checkout-test')

    def test_server_call_names_the_series_and_version(self):
        """A server-to-server call tells myPOS which Odoo series and addon version send it, in
        its User-Agent header (which myPOS requires) and its `Source` field."""
        sent = []

        def refuse(url, data, headers, **_options):
            sent.append((dict(data), headers))
            raise requests.exceptions.InvalidURL("not sent")

        with (
            patch('odoo.addons.payment_mypos.ipc.transport.requests.post', side_effect=refuse),
            self.assertRaises(ipc.RemoteError),
        ):
            self.provider._mypos_make_request('IPCGetTxnStatus', [('OrderID', 'X')])
        [(fields, headers)] = sent
        self.assertEqual(
            headers['User-Agent'], f'Odoo/{release.series} payment_mypos/{ADDON_VERSION}'
        )
        self.assertEqual(
            fields['Source'], f'odoo{release.version_info[0]}_payment_mypos {ADDON_VERSION}'
        )

    def test_redirect_form_escapes_only_in_html(self):
        """The form posts the raw signed values in order: '&' and Cyrillic survive the HTML."""
        self.partner.name = 'Иван & <Петров>'
        tx = self._create_mypos_transaction(reference='S00043-1')
        processing_values = tx._get_processing_values()
        form_html = processing_values['redirect_form_html']
        self.assertNotIn('<Петров>', form_html)
        form = html.fromstring(form_html)
        self.assertEqual(form.get('method'), 'post')
        self.assertEqual(form.get('action'), ipc.const.SANDBOX_URL)
        posted = [(element.get('name'), element.get('value')) for element in form.iter('input')]
        self.assertEqual(posted, self._render(tx)['fields'][:-1] + [posted[-1]])
        self.assertEqual(dict(posted)['CustomerFirstNames'], 'Иван &')
        self.assertEqual(posted[-1][0], 'Signature')
        self.assertTrue(
            ipc.verify(
                [value for _name, value in posted[:-1]],
                posted[-1][1],
                public_key_pem(SANDBOX_STORE_KEY),
            )
        )

    def test_private_key_not_in_redirect_form(self):
        tx = self._create_mypos_transaction()
        form_html = tx._get_processing_values()['redirect_form_html']
        key_body = re.sub(r'-----[^-]+-----|\s', '', SANDBOX_STORE_KEY)
        self.assertNotIn(key_body[:40], form_html.replace('\n', ''))
        self.assertNotIn('PRIVATE', form_html)

    def test_cart_rows_from_sale_order(self):
        """A sales order whose lines add up becomes cart rows; otherwise one row."""
        if 'sale.order' not in self.env:
            self.skipTest("needs the sale module")
        product = self.env['product.product'].create(
            {'name': 'Oak chair', 'list_price': 10.0, 'taxes_id': [], 'type': 'consu'}
        )
        delivery = self.env['product.product'].create(
            {'name': 'Delivery', 'list_price': 3.45, 'taxes_id': [], 'type': 'service'}
        )
        pricelist = self.env['product.pricelist'].create(
            {'name': "EUR", 'currency_id': self.currency.id}
        )
        order = self.env['sale.order'].create(
            {
                'partner_id': self.partner.id,
                'pricelist_id': pricelist.id,
                'order_line': [
                    (
                        0,
                        0,
                        {
                            'product_id': product.id,
                            'product_uom_qty': 2,
                            'price_unit': 10.0,
                            SALE_LINE_TAXES: [],
                        },
                    ),
                    (
                        0,
                        0,
                        {
                            'product_id': delivery.id,
                            'product_uom_qty': 1,
                            'price_unit': 3.45,
                            SALE_LINE_TAXES: [],
                        },
                    ),
                ],
            }
        )
        self.assertEqual(order.currency_id, self.currency)
        tx = self._create_mypos_transaction(
            reference='S-cart-1', amount=order.amount_total, sale_order_ids=[(6, 0, order.ids)]
        )
        fields = dict(self._render(tx)['fields'])
        self.assertEqual(fields['Amount'], '23.45')
        self.assertEqual(
            [
                fields[f'{n}_{i}']
                for i in (1, 2)
                for n in ('Article', 'Quantity', 'Price', 'Amount')
            ],
            ['Oak chair', '2', '10.00', '20.00', 'Delivery', '1', '3.45', '3.45'],
        )
        # A partial payment of the same order is one row for the amount paid.
        tx_partial = self._create_mypos_transaction(
            reference='S-cart-2', amount=10.0, sale_order_ids=[(6, 0, order.ids)]
        )
        fields = dict(self._render(tx_partial)['fields'])
        self.assertEqual(
            (fields['CartItems'], fields['Article_1'], fields['Amount_1']),
            ('1', 'S\u2010cart\u20102', '10.00'),  # The reference, without '-'.
        )
