# Part of payment_mypos. License LGPL-3.

from odoo.exceptions import ValidationError
from odoo.tests import tagged

from odoo.addons.payment_mypos import const, ipc
from odoo.addons.payment_mypos.tests.common import (
    SANDBOX_STORE_KEY,
    MyPOSCommon,
    generate_key_pair,
    public_key_pem,
)


@tagged('post_install', '-at_install')
class TestPaymentProvider(MyPOSCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.store_key, _store_certificate = generate_key_pair(2048)
        cls.live_values = {
            'mypos_sid': '000000000012345',
            'mypos_wallet_number': '40012345678',
            'mypos_key_index': 3,
            'mypos_private_key': cls.store_key,
            'mypos_public_certificate': cls.mypos_certificate,
        }

    def test_provider_record(self):
        """The addon creates the myPOS provider, disabled, with cards and their brands."""
        provider = self.env.ref('payment_mypos.payment_provider_mypos')
        self.assertEqual((provider.code, provider.name), ('mypos', "myPOS"))
        self.assertTrue(provider.image_128)
        self.assertEqual(provider.payment_method_ids, self.env.ref('payment.payment_method_card'))
        self.assertEqual(
            set(provider._get_default_payment_method_codes()), const.DEFAULT_PAYMENT_METHOD_CODES
        )
        self.assertEqual(
            provider.redirect_form_view_id, self.env.ref('payment_mypos.redirect_form')
        )

    def test_test_state_falls_back_to_sandbox(self):
        """In test state with empty credentials, the public sandbox store is used."""
        self.provider.write({'mypos_public_certificate': False})
        credentials = self.provider._mypos_get_credentials()
        self.assertEqual(
            (credentials.sid, credentials.wallet_number, credentials.key_index),
            (ipc.const.SANDBOX_SID, ipc.const.SANDBOX_WALLET_NUMBER, ipc.const.SANDBOX_KEY_INDEX),
        )
        self.assertEqual(
            ipc.normalize_pem(credentials.private_key), ipc.normalize_pem(SANDBOX_STORE_KEY)
        )
        self.assertIn('BEGIN CERTIFICATE', credentials.certificate)
        self.assertEqual(self.provider._mypos_get_api_url(), ipc.const.SANDBOX_URL)

    def test_own_values_win_in_test_state(self):
        self.provider.write({'mypos_sid': '000000000099999', 'mypos_key_index': 7})
        credentials = self.provider._mypos_get_credentials()
        self.assertEqual((credentials.sid, credentials.key_index), ('000000000099999', 7))
        self.assertEqual(credentials.wallet_number, ipc.const.SANDBOX_WALLET_NUMBER)

    def test_enabled_requires_all_credentials(self):
        """Going live without credentials is refused, naming what is missing."""
        with self.assertRaisesRegex(ValidationError, "Store ID.*Wallet Number.*Key Index"):
            self.provider.write({'state': 'enabled'})
        self.provider.write(dict(self.live_values, state='enabled'))
        credentials = self.provider._mypos_get_credentials()
        self.assertEqual(credentials.sid, '000000000012345')
        self.assertEqual(self.provider._mypos_get_api_url(), ipc.const.PRODUCTION_URL)

    def test_invalid_credentials_name_the_field(self):
        """Each malformed credential is refused with a message naming it."""
        cases = [
            ({'mypos_sid': '12AB'}, "Store ID"),
            ({'mypos_wallet_number': '4001-234'}, "wallet number"),
            ({'mypos_key_index': 100}, "key index"),
            ({'mypos_key_index': -1}, "key index"),
            ({'mypos_public_certificate': 'not a certificate'}, "myPOS certificate"),
            ({'mypos_public_certificate': SANDBOX_STORE_KEY}, "myPOS certificate"),
        ]
        for state in ('test', 'enabled'):
            for values, message in cases:
                with self.subTest(state=state, values=values):
                    with self.assertRaisesRegex(ValidationError, message):
                        self.provider.write(dict(self.live_values, state=state, **values))

    def test_invalid_private_key_refused(self):
        with self.assertRaisesRegex(ValidationError, "store private key is not valid"):
            self.provider.write({'mypos_private_key': 'MIIC...'})
        with self.assertRaisesRegex(ValidationError, "store private key is not valid"):
            self.provider.write({'mypos_private_key': public_key_pem(self.store_key)})
        self.assertFalse(self.provider.mypos_private_key_pem)

    def test_private_key_write_only_and_blank_keeps_it(self):
        """The key is stored normalized, never read back, and a blank entry keeps it."""
        pasted = self.store_key.replace('\n', ' ')  # What a single-line input leaves of it.
        self.provider.write({'mypos_private_key': pasted})
        self.assertEqual(self.provider.mypos_private_key_pem, self.store_key)
        self.assertFalse(self.provider.mypos_private_key)
        self.assertFalse(self.provider.read(['mypos_private_key'])[0]['mypos_private_key'])
        self.assertIn("RSA 2048-bit key stored", self.provider.mypos_private_key_info)
        for blank in ('', False, '  '):
            self.provider.write({'mypos_private_key': blank})
            self.assertEqual(self.provider.mypos_private_key_pem, self.store_key)
        self.assertEqual(self.provider._mypos_get_credentials().private_key, self.store_key)

    def test_form_save_does_not_echo_private_key(self):
        """Saving the form answers with the record's values: the key is not among them."""
        result = self.provider.web_save(
            {'mypos_private_key': self.store_key},
            {'mypos_private_key': {}, 'mypos_private_key_info': {}},
        )
        self.assertFalse(result[0]['mypos_private_key'])
        self.assertIn("2048-bit", result[0]['mypos_private_key_info'])
        self.assertEqual(self.provider.mypos_private_key_pem, self.store_key)

    def test_sandbox_url_parameter_only_in_test_state(self):
        self.env['ir.config_parameter'].set_param(
            'payment_mypos.sandbox_url', 'http://127.0.0.1:8899/vmp/checkout-test'
        )
        self.assertEqual(
            self.provider._mypos_get_api_url(), 'http://127.0.0.1:8899/vmp/checkout-test'
        )
        self.provider.write(dict(self.live_values, state='enabled'))
        self.assertEqual(self.provider._mypos_get_api_url(), ipc.const.PRODUCTION_URL)

    def test_supported_currencies(self):
        currencies = self.provider._get_supported_currencies()
        self.assertIn(self.currency_euro, currencies)
        self.assertNotIn(self.env.ref('base.INR'), currencies)
