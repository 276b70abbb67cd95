# Part of payment_mypos. License LGPL-3.
"""The payment methods of myPOS's page beside cards (iDEAL, TWINT, Satispay, IRIS): offered on
Odoo's form for their currencies and countries, the shopper's choice signed as the purchase's
`PaymentMethod`, the method used read from myPOS's notification. myPOS is the in-addon fake; its
messages reach Odoo's real HTTP server."""

from odoo.exceptions import ValidationError
from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.payment_mypos import ipc
from odoo.addons.payment_mypos.tests.common import CALLS_LOGGER, SANDBOX_STORE_KEY, refund
from odoo.addons.payment_mypos.tests.common_fake import MyPOSFakeCommon
from odoo.addons.payment_mypos.tests.common_reliability import CONTROLLER_LOGGER


@tagged('post_install', '-at_install')
class TestPaymentMethods(MyPOSFakeCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ideal = cls.env.ref('payment.payment_method_ideal')
        cls.twint = cls.env.ref('payment.payment_method_twint')
        cls.satispay = cls.env.ref('payment_mypos.payment_method_satispay')
        cls.iris = cls.env.ref('payment_mypos.payment_method_iris')
        (cls.ideal + cls.twint + cls.satispay + cls.iris).active = True
        cls.currency_chf = cls._enable_currency('CHF')
        cls.partner.country_id = cls.env.ref('base.nl')

    def _compatible_codes(self, currency, country):
        self.partner.country_id = country
        methods = self.env['payment.method']._get_compatible_payment_methods(
            self.provider.ids, self.partner.id, currency_id=currency.id
        )
        return set(methods.mapped('code'))

    def _form(self, tx):
        fields_ = self._purchase_fields(tx)
        values = [value for _name, value in fields_[:-1]]
        self.assertTrue(ipc.verify(values, fields_[-1][1], ipc.public_key_pem(SANDBOX_STORE_KEY)))
        return dict(fields_)

    # === Offered on Odoo's form === #

    def test_provider_lists_the_methods_of_mypos_page(self):
        codes = set(self.provider.payment_method_ids.mapped('code'))
        self.assertLessEqual({'card', 'ideal', 'twint', 'satispay', 'iris'}, codes)
        for method, country in ((self.satispay, 'IT'), (self.iris, 'GR')):
            self.assertEqual(method.supported_currency_ids.mapped('name'), ['EUR'])
            self.assertEqual(method.supported_country_ids.mapped('code'), [country])
            self.assertTrue(method.image)

    def test_each_method_only_for_its_currency_and_country(self):
        nl, ch, it = (self.env.ref(f'base.{code}') for code in ('nl', 'ch', 'it'))
        self.assertEqual(
            self._compatible_codes(self.currency_euro, nl) & {'ideal', 'twint'}, {'ideal'}
        )
        self.assertEqual(
            self._compatible_codes(self.currency_chf, ch) & {'ideal', 'twint'}, {'twint'}
        )
        self.assertIn('satispay', self._compatible_codes(self.currency_euro, it))
        self.assertNotIn('satispay', self._compatible_codes(self.currency_chf, it))

    # === The shopper's choice, signed === #

    def test_shopper_picks_ideal_and_the_paid_order_shows_ideal(self):
        tx = self._create_mypos_transaction(payment_method_id=self.ideal.id)
        self.assertEqual(self._form(tx)['PaymentMethod'], '2')
        tx, result = self._pay(tx, method='2')
        self.assertEqual((result.outcome, tx.state), ('paid', 'done'))
        self.assertEqual(tx.mypos_payment_method, 'ideal')
        tx._mypos_show_card_brand()  # What post-processing does.
        self.assertEqual(tx.payment_method_id, self.ideal)
        notify = dict(self.mypos.notifications(tx.mypos_order_id, 'IPCPurchaseNotify')[0]['fields'])
        self.assertEqual(notify['PaymentMethod'], '2')
        self.assertNotIn('PAN', notify)

    def test_each_odoo_method_opens_its_mypos_method(self):
        visa = self.env.ref('payment.payment_method_visa')
        for method, value in (
            (self.payment_method, '1'),
            (visa, '1'),
            (self.satispay, '4'),
            (self.iris, '6'),
        ):
            with self.subTest(method=method.code):
                tx = self._create_mypos_transaction(payment_method_id=method.id)
                self.assertEqual(self._form(tx)['PaymentMethod'], value)
        tx = self._create_mypos_transaction(
            payment_method_id=self.twint.id, currency_id=self.currency_chf.id
        )
        self.assertEqual(self._form(tx)['PaymentMethod'], '5')

    def test_a_method_mypos_cannot_open_is_refused(self):
        other = self.env.ref('payment.payment_method_bancontact')  # Not one of myPOS's page.
        tx = self._create_mypos_transaction(payment_method_id=other.id)
        with self.assertRaisesRegex(ValidationError, "cannot be paid on myPOS's page"):
            self._purchase_fields(tx)

    def test_shopper_chooses_on_mypos_page(self):
        self.provider.mypos_shopper_chooses = True
        tx = self._create_mypos_transaction()
        self.assertEqual(self._form(tx)['PaymentMethod'], '1,2', "card and iDEAL, no TWINT in EUR")
        tx, result = self._pay(tx, method='2')
        self.assertEqual((result.outcome, tx.state), ('paid', 'done'))
        tx._mypos_show_card_brand()
        self.assertEqual(tx.payment_method_id, self.ideal)

    def test_saving_a_card_offers_the_card_only(self):
        self.provider.mypos_shopper_chooses = True
        tx = self._create_mypos_transaction(tokenize=True)
        self.assertEqual(self._form(tx)['CardTokenRequest'], '2')
        self.assertEqual(self._form(tx)['PaymentMethod'], '1', "a card is to be saved")

    # === What myPOS reports === #

    def test_notification_for_a_method_not_offered_is_refused(self):
        tx = self._create_mypos_transaction()
        self.assertEqual(self._form(tx)['PaymentMethod'], '1')
        with mute_logger(CONTROLLER_LOGGER):
            tx, result = self._pay(tx, notify_payment_method='2')
        notifications = self.mypos.notifications(tx.mypos_order_id)
        self.assertEqual(
            [(n['method'], n['http_status']) for n in notifications],
            [('IPCPurchaseNotify', 400), ('IPCPurchaseRollback', 200)],
            "refused, so myPOS reversed it and said so",
        )
        self.assertIn("which the purchase did not offer (1)", notifications[0]['body'])
        self.assertEqual(self.mypos.order(tx.mypos_order_id)['status'], 'reversed')
        self.assertEqual((tx.state, tx.provider_reference), ('cancel', False), "never paid")
        self.assertFalse(tx.mypos_payment_method)

    def test_refund_of_an_ideal_payment(self):
        tx, _result = self._pay(
            self._create_mypos_transaction(payment_method_id=self.ideal.id), method='2'
        )
        with mute_logger(CALLS_LOGGER):
            refund(tx, 30.0)
        self.env.invalidate_all()
        refund_tx = tx.child_transaction_ids
        self.assertEqual((refund_tx.state, refund_tx.amount), ('done', -30.0))
        self.assertEqual([c['amount'] for c in self._api_calls('IPCRefund')], ['30.00'])

    # === Manual capture: cards only === #

    def test_manual_capture_refused_while_other_methods_are_enabled(self):
        self.provider.allow_tokenization = False
        # 19.0 says it with its methods' manual capture support, 18.0 with the addon's rule.
        with self.assertRaisesRegex(
            ValidationError, "cards only|must be disabled|manual capture activated"
        ):
            self.provider.capture_manually = True

    def test_no_other_method_enabled_on_a_provider_that_captures_manually(self):
        (self.ideal + self.twint + self.satispay + self.iris).active = False
        self.provider.write({'allow_tokenization': False, 'capture_manually': True})
        with self.assertRaisesRegex(
            ValidationError, "cards only|must be disabled|manual capture activated"
        ):
            self.ideal.active = True
