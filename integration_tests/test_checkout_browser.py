# Part of payment_mypos. License LGPL-3.
"""End to end in headless Chromium: the webshop, the myPOS emulator's page, and back to Odoo.

The shopper's browser is Odoo's own test browser (Debian's Chromium driven over the DevTools
protocol); the only stand-in is the myPOS emulator on loopback, which posts its signed
notifications to Odoo's real HTTP server. Set MYPOS_SCREENSHOT_DIR to keep screenshots of the key
pages (the README's come from there).
"""

import time

from odoo import Command
from odoo.tests import tagged

from odoo.addons.payment_mypos import ipc
from odoo.addons.payment_mypos.tests.common import MyPOSCommon, allow_callbacks, reading

from integration_tests.common import BrowserDriver, CheckoutBrowserCommon, start_emulator


@tagged('mypos_integration', 'post_install', '-at_install')
class TestCheckoutInBrowser(CheckoutBrowserCommon):
    def test_pay_on_mypos_page(self):
        """The shopper pays on myPOS's page, returns to Odoo, and the order is confirmed, paid."""
        self._checkout_to_emulator()
        driver = self.driver
        page_text = driver.evaluate('document.body.innerText')
        with reading(self):  # The shopper is on myPOS's page: Odoo serves nothing meanwhile.
            self.env.invalidate_all()
            tx = self.env['payment.transaction'].search(
                [('partner_id', '=', self.shopper.partner_id.id)], order='id desc', limit=1
            )
            # The order's total (25.00, or what the demo data's pricelist makes of it under
            # Odoo's runner), as myPOS's page shows it.
            total = tx.sale_order_ids.amount_total
            shown = f'{tx.amount:.2f} {tx.currency_id.name}'
        self.assertEqual(tx.amount, total)
        self.assertIn(shown, page_text)
        self.assertIn('myPOS Oak Chair', page_text)
        self._pay_on_emulator()
        driver.wait_for(
            "location.pathname.startsWith('/shop/confirmation')",
            "the order confirmation",
            90,
        )
        driver.wait_for(
            "document.body.innerText.includes('myPOS')", "the payment summary on the page"
        )
        driver.screenshot('3-odoo-order-confirmation')
        order, tx = self._last_order_and_tx()
        self.assertEqual(tx.provider_id, self.provider)
        self.assertEqual(tx.state, 'done')
        self.assertTrue(tx.provider_reference)
        self.assertEqual(order.state, 'sale')
        notifications = self.emulator.notifications(order_id=tx.mypos_order_id)
        self.assertEqual([n['method'] for n in notifications], ['IPCPurchaseNotify'])

    def test_cancel_on_mypos_page(self):
        """The shopper cancels on myPOS's page: Odoo shows it cancelled, the order unconfirmed."""
        self._checkout_to_emulator()
        self.driver.click('#cancel')
        # Odoo's status page hands a cancelled payment on to /shop/payment/validate, which ends on
        # /shop/confirmation: a slow run may only see the last of them.
        self.driver.wait_for(
            "location.pathname.startsWith('/shop/payment')"
            " || location.pathname.startsWith('/payment/status')"
            " || location.pathname.startsWith('/shop/confirmation')",
            "the return to Odoo",
        )
        self.driver.wait_for(
            "/cancel/i.test(document.body.innerText)", "the cancellation shown to the shopper"
        )
        self.driver.screenshot('4-odoo-after-cancel')
        order, tx = self._last_order_and_tx()
        self.assertEqual(tx.state, 'cancel')
        self.assertIn(order.state, ('draft', 'sent'))

    def test_notification_fails_once_then_rollback(self):
        """Odoo unreachable for the notify: myPOS rolls back, Odoo ends cancelled, not paid."""
        self.emulator.set_faults(notify_fail_once=True)
        self._checkout_to_emulator()
        driver = self.driver
        self._pay_on_emulator()
        driver.wait_for(
            "/cancel/i.test(document.body.innerText) && location.href.startsWith("
            f"{self.base_url()!r})",
            "the cancellation shown to the shopper",
            90,
        )
        self.emulator.wait_idle()  # The rollback may still be on its way to the webhook.
        order, tx = self._last_order_and_tx()
        self.assertEqual(tx.state, 'cancel')
        self.assertFalse(tx.provider_reference)
        self.assertIn(order.state, ('draft', 'sent'))
        methods = [n['method'] for n in self.emulator.notifications(order_id=tx.mypos_order_id)]
        self.assertEqual(methods[-1], 'IPCPurchaseRollback')


@tagged('mypos_integration', 'post_install', '-at_install')
class TestManualCaptureInBrowser(CheckoutBrowserCommon):
    """The provider captures manually: myPOS's page pre-authorises, the back end captures."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.provider.write({'allow_tokenization': False, 'capture_manually': True})

    def test_preauthorise_on_mypos_page_then_capture(self):
        """The shopper authorises the amount on myPOS's pre-authorisation page; the order is
        confirmed with the transaction authorised; capturing from the back end makes it done."""
        self._checkout_to_emulator(screenshots=False)
        driver = self.driver
        driver.wait_for("!!document.querySelector('#preauth')", "the pre-authorisation notice")
        page_text = driver.evaluate('document.body.innerText')
        item_name = driver.evaluate("document.querySelector('#item_name').textContent")
        with reading(self):  # The shopper is on myPOS's page: Odoo serves nothing meanwhile.
            self.env.invalidate_all()
            tx = self.env['payment.transaction'].search(
                [('partner_id', '=', self.shopper.partner_id.id)], order='id desc', limit=1
            )
            total = tx.sale_order_ids.amount_total
            shown = f'{tx.amount:.2f} {tx.currency_id.name}'
            reference, preauth = tx.reference, tx.mypos_preauth
        self.assertTrue(preauth)
        self.assertEqual(tx.amount, total)
        self.assertIn('pre-authorisation', page_text.lower())
        self.assertIn(shown, page_text)
        self.assertEqual(item_name, ipc.clean_text(reference))
        self.assertNotIn('myPOS Oak Chair', page_text, "a pre-authorisation has no cart")
        driver.screenshot('6-mypos-preauthorisation-page')
        self._pay_on_emulator()
        driver.wait_for(
            "location.pathname.startsWith('/shop/confirmation')",
            "the order confirmation",
            90,
        )
        order, tx = self._last_order_and_tx()
        self.assertEqual(tx.provider_id, self.provider)
        self.assertEqual((order.state, tx.state), ('sale', 'authorized'))
        order_id = tx.mypos_order_id
        notifications = self.emulator.notifications(order_id=order_id)
        self.assertEqual(
            [(n['method'], n['body']) for n in notifications],
            [('IPCPreAuthorizationNotify', 'OK')],
        )
        self.assertEqual(self.emulator.order(order_id)['status'], 'authorized')

        with reading(self):  # The Capture button of the back end, over HTTP to myPOS.
            tx.action_capture()
            self.env.invalidate_all()
            capture = tx.child_transaction_ids
            states = (tx.state, capture.state, capture.amount, order.state)
            amount = tx.amount
        self.assertEqual(states, ('done', 'done', amount, 'sale'))
        self.assertEqual(
            [
                (c['method'], c['order_id'], c['amount'], c['status'])
                for c in self.emulator.api_calls()
            ],
            [('IPCPreAuthCompletion', order_id, f'{amount:.2f}', 0)],
        )
        self.assertEqual(self.emulator.order(order_id)['status'], 'captured')


@tagged('mypos_integration', 'post_install', '-at_install')
class TestPaymentMethodsInBrowser(CheckoutBrowserCommon):
    """A shop in EUR whose myPOS provider offers card, iDEAL and TWINT; a Dutch shopper.
    https://developers.mypos.com/apis/checkout-api/purchase (PaymentMethod)"""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # No journal item exists yet, so the company (and the shop) may sell in EUR.
        cls.env.company.currency_id = cls.currency_euro
        methods = cls.env.ref('payment.payment_method_ideal') + cls.env.ref(
            'payment.payment_method_twint'
        )
        methods.active = True
        # TWINT is for Switzerland; letting Dutch shoppers have it leaves its currency (CHF)
        # as the only reason Odoo's form does not offer it in EUR.
        methods[1].supported_country_ids |= cls.env.ref('base.nl')
        cls.provider.payment_method_ids = [Command.link(method.id) for method in methods]
        cls.shopper.partner_id.write(
            {
                'street': "Damrak 1",
                'city': "Amsterdam",
                'zip': "1012 LG",
                'country_id': cls.env.ref('base.nl').id,
                'phone': '+31 20 123 4567',
            }
        )

    def test_pay_with_ideal_chosen_on_odoo_form(self):
        """The shopper sees card and iDEAL (no TWINT in EUR), picks iDEAL on Odoo's form, lands
        on myPOS's iDEAL step, pays, and the confirmed order's payment shows iDEAL."""
        self._checkout_to_payment_page()
        driver = self.driver
        radios = (
            "document.querySelectorAll("
            "'input[name=\"o_payment_radio\"][data-provider-code=\"mypos\"]')"
        )
        codes = driver.evaluate(f"[...{radios}].map(r => r.dataset.paymentMethodCode)")
        self.assertIn('card', codes)
        self.assertIn('ideal', codes)
        self.assertNotIn('twint', codes, "TWINT is CHF only")
        driver.evaluate(
            "(r => { if (!r.checked) r.click(); })"
            "(document.querySelector('input[name=\"o_payment_radio\"]"
            "[data-provider-code=\"mypos\"][data-payment-method-code=\"ideal\"]'))"
        )
        self._submit_payment()
        driver.wait_for(
            f"location.href.startsWith({self.emulator.base_url!r})"
            " && !!document.querySelector('#method_step')",
            "the myPOS emulator's iDEAL step",
        )
        step = driver.evaluate(
            "({method: document.querySelector('#method_step').dataset.method,"
            " name: document.querySelector('#method_name').textContent.trim(),"
            " pay: document.querySelector('#pay').textContent.trim(),"
            " card: !!document.querySelector('#card_number')})"
        )
        self.assertEqual(
            step, {'method': '2', 'name': 'iDEAL', 'pay': 'Pay with iDEAL', 'card': False}
        )
        driver.screenshot('7-mypos-ideal-step')
        with reading(self):  # The shopper is on myPOS's page: Odoo serves nothing meanwhile.
            self.env.invalidate_all()
            tx = self.env['payment.transaction'].search(
                [('partner_id', '=', self.shopper.partner_id.id)], order='id desc', limit=1
            )
            sent = (tx.currency_id.name, tx.mypos_payment_methods)
            order_id = tx.mypos_order_id
        self.assertEqual(sent, ('EUR', '2'), "the signed form said PaymentMethod=2")
        session = self.emulator.state()['sessions'][self.emulator.order(order_id)['sessions'][-1]]
        self.assertEqual(session['purchase']['payment_methods'], ['2'])
        driver.click('#pay')
        driver.wait_for(
            "location.pathname.startsWith('/shop/confirmation')",
            "the order confirmation",
            90,
        )
        order, tx = self._last_order_and_tx()
        with reading(self):
            used = (tx.payment_method_id.code, tx.mypos_payment_method)
        self.assertEqual((order.state, tx.state), ('sale', 'done'))
        self.assertEqual(used, ('ideal', 'ideal'))
        [notify] = self.emulator.notifications(order_id=order_id)
        self.assertEqual((notify['method'], notify['body']), ('IPCPurchaseNotify', 'OK'))
        self.assertEqual(dict(notify['fields'])['PaymentMethod'], '2')
        self.assertEqual(self.emulator.order(order_id)['payment_method'], '2')


@tagged('mypos_integration', 'post_install', '-at_install')
class TestAdministratorInBrowser(MyPOSCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.emulator = start_emulator(cls)
        cls.env['ir.config_parameter'].set_param('payment_mypos.sandbox_url', cls.emulator.url)
        cls.provider.write(
            {
                'state': 'disabled',
                'mypos_public_certificate': cls.emulator.certificate_pem,
            }
        )

    def test_enable_test_mode_and_test_connection(self):
        """An administrator sets myPOS to test mode on the form and tests the connection."""
        driver = BrowserDriver(self)
        self.enterContext(allow_callbacks(self, browser=driver.browser))
        self.addCleanup(self._wait_remaining_requests)  # After the stop: the backend's websocket.
        self.addCleanup(driver.stop)
        self.authenticate('admin', 'admin', browser=driver.browser)
        self.cr.flush()
        self.cr.clear()
        driver.go(
            f'{self.base_url()}/odoo/action-payment.action_payment_provider/{self.provider.id}'
        )
        driver.click('div[name="state"] input[data-value="test"]')
        driver.click('button[name="action_mypos_test_connection"]')
        driver.wait_for(
            "[...document.querySelectorAll('.o_notification')].some("
            "n => n.innerText.includes('myPOS connection works'))",
            "the success notification",
        )
        time.sleep(1)  # Let the notification finish fading in before the screenshot.
        driver.screenshot('5-odoo-provider-test-connection')
        driver.leave()
        with reading(self):
            self.env.invalidate_all()
            state, success = self.provider.state, self.provider.mypos_last_test_success
        self.assertEqual(state, 'test')
        self.assertTrue(success)
        self.assertEqual(
            [call['method'] for call in self.emulator.api_calls()], ['IPCGetTxnStatus']
        )
