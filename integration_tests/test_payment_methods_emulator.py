# Part of payment_mypos. License LGPL-3.
"""Payment methods beside cards with the emulator as a separate HTTP server: the method chosen on
Odoo's form is signed as the purchase's `PaymentMethod`, paid on the emulator's page, and the
notification's `PaymentMethod` is checked by Odoo's real webhook over real sockets.
https://developers.mypos.com/apis/checkout-api/purchase
https://developers.mypos.com/apis/checkout-api/checkout-getting-started/twint-online-payments
The addon's test_payment_methods.py covers every case with the in-addon fake; here only the paths
whose bytes cross a socket: a TWINT payment in CHF, and a notification for a method not offered."""

from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.payment_mypos.tests.common_reliability import CONTROLLER_LOGGER

from integration_tests.common import MyPOSEmulatorCommon


@tagged('mypos_integration', 'post_install', '-at_install')
class TestPaymentMethodsOnEmulator(MyPOSEmulatorCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ideal = cls.env.ref('payment.payment_method_ideal')
        cls.twint = cls.env.ref('payment.payment_method_twint')
        (cls.ideal + cls.twint).active = True
        # _enable_currency is in both series; 18.0's _prepare_currency is gone in 19.0.
        cls.currency_chf = cls._enable_currency('CHF')

    def _session_offered(self, order_id):
        """The methods the emulator's page offered for the order's last purchase form."""
        order = self.emulator.order(order_id)
        session = self.emulator.state()['sessions'][order['sessions'][-1]]
        return session['purchase']['payment_methods']

    def test_twint_chosen_on_odoo_form_paid_on_mypos_page(self):
        """A Swiss shopper paying in CHF picks TWINT on Odoo's form: myPOS's page opens TWINT's
        step only, the payment is done, and the transaction shows TWINT."""
        self.partner.country_id = self.env.ref('base.ch')
        offered = self.env['payment.method']._get_compatible_payment_methods(
            self.provider.ids, self.partner.id, currency_id=self.currency_chf.id
        )
        self.assertIn(self.twint, offered, "Odoo's form offers TWINT in CHF")
        self.assertNotIn(self.ideal, offered, "iDEAL is EUR only")
        tx = self._create_mypos_transaction(
            payment_method_id=self.twint.id, currency_id=self.currency_chf.id
        )
        posted = dict(self._purchase_fields(tx))
        self.assertEqual((posted['Currency'], posted['PaymentMethod']), ('CHF', '5'))

        tx, result = self._pay(tx, method='5')

        self.assertEqual((result.outcome, tx.state), ('paid', 'done'), result)
        self.assertEqual(tx.provider_reference, result.ipc_trnref)
        self.assertEqual(self._session_offered(tx.mypos_order_id), ['5'], "TWINT's step only")
        order = self.emulator.order(tx.mypos_order_id)
        self.assertEqual((order['status'], order['payment_method']), ('paid', '5'))
        [notify] = self.emulator.notifications(tx.mypos_order_id)
        self.assertEqual(
            (notify['method'], notify['http_status'], notify['body']),
            ('IPCPurchaseNotify', 200, 'OK'),
        )
        fields = dict(notify['fields'])
        self.assertEqual(fields['PaymentMethod'], '5')
        self.assertNotIn('PAN', fields, "no card was used")
        self.assertEqual((tx.mypos_payment_methods, tx.mypos_payment_method), ('5', 'twint'))
        tx._post_process()  # What the payment status page does.
        self.assertEqual(tx.payment_method_id.code, 'twint')

    def test_notification_for_a_method_not_offered_is_refused_and_reversed(self):
        """A card purchase whose notification says iDEAL (PaymentMethod 2) is refused by Odoo's
        webhook; myPOS reverses it and the transaction ends cancelled, never done."""
        tx = self._create_mypos_transaction()
        self.assertEqual(dict(self._purchase_fields(tx))['PaymentMethod'], '1')

        with mute_logger(CONTROLLER_LOGGER):
            tx, result = self._pay(tx, notify_payment_method='2')

        notifications = self.emulator.notifications(tx.mypos_order_id)
        self.assertEqual(
            [(n['method'], n['http_status']) for n in notifications],
            [('IPCPurchaseNotify', 400), ('IPCPurchaseRollback', 200)],
            "refused, so myPOS reversed it and said so",
        )
        self.assertEqual(dict(notifications[0]['fields'])['PaymentMethod'], '2')
        self.assertIn("did not offer (1)", notifications[0]['body'])
        self.assertNotEqual(result.outcome, 'paid')
        self.assertEqual(self.emulator.order(tx.mypos_order_id)['status'], 'reversed')
        self.assertEqual((tx.state, tx.provider_reference), ('cancel', False), "never paid")
        self.assertFalse(tx.mypos_payment_method)
