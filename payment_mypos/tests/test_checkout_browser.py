# Part of payment_mypos. License LGPL-3.
"""End to end in headless Chromium: the webshop, the myPOS emulator's page, and back to Odoo.

The shopper's browser is Odoo's own test browser (Debian's Chromium driven over the DevTools
protocol); the only stand-in is the myPOS emulator on loopback, which posts its signed
notifications to Odoo's real HTTP server. Set MYPOS_SCREENSHOT_DIR to keep screenshots of the key
pages (the README's come from there).
"""

import base64
import os
import tempfile
import time

from odoo.tests import tagged
from odoo.tests.common import ChromeBrowser

from odoo.addons.payment_mypos.tests.common import (
    USER_GROUPS,
    MyPOSCommon,
    allow_callbacks,
    load_emulator,
    reading,
)


class BrowserDriver:
    """A few steps a shopper takes, on top of Odoo's test browser."""

    def __init__(self, test_case):
        self.test_case = test_case
        self.browser = ChromeBrowser(test_case, headless=True)

    def stop(self):
        self.browser.stop()

    def evaluate(self, expression):
        answer = self.browser._websocket_request(
            'Runtime.evaluate',
            params={
                'expression': expression,
                'returnByValue': True,
                'awaitPromise': True,
            },
            timeout=30,
        )
        return answer.get('result', {}).get('value')

    def location(self):
        return self.evaluate('document.location.href') or ''

    def go(self, url):
        self.browser.navigate_to(url, wait_stop=True)

    def leave(self):
        """Leave the page and wait for Odoo to finish the requests it made.

        Odoo's test HTTP server shares the test's database cursor; a page that is still
        polling (the payment status page does, every few seconds) would use it at the very
        moment the test reads through it.
        """
        self.browser.navigate_to('about:blank', wait_stop=True)
        self.test_case._wait_remaining_requests()

    def wait_for(self, expression, what, timeout=60):
        deadline = time.time() + timeout
        last_error = None
        while time.time() < deadline:
            try:
                if self.evaluate(expression):
                    return
                last_error = None
            except Exception as error:  # The page is navigating: ask again.
                last_error = error
            time.sleep(0.25)
        self.test_case.fail(
            f"Timed out waiting for {what} on {self.location()}"
            + (f" (last error: {last_error!r})" if last_error else "")
        )

    def click(self, selector, timeout=60):
        element = f'document.querySelector({selector!r})'
        self.wait_for(
            f'!!{element} && !{element}.disabled && {element}.offsetParent !== null',
            f"a clickable {selector}",
            timeout,
        )
        self.evaluate(f'{element}.click(), true')

    def fill(self, selector, value):
        self.wait_for(f'!!document.querySelector({selector!r})', selector)
        self.evaluate(
            f'(el => {{ el.value = {value!r}; el.dispatchEvent(new Event("input")); }})'
            f'(document.querySelector({selector!r}))'
        )

    def screenshot(self, name):
        directory = os.environ.get('MYPOS_SCREENSHOT_DIR')
        if not directory:
            return
        data = self.browser._websocket_request('Page.captureScreenshot', timeout=30)['data']
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, f'{name}.png'), 'wb') as file:
            file.write(base64.b64decode(data))


class CheckoutBrowserCommon(MyPOSCommon):
    """A published myPOS provider on the emulator, a chair in the shop and a portal shopper."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if 'website' not in cls.env or 'sale.order' not in cls.env:
            cls.skipTest(cls, "needs website_sale")
        Emulator = load_emulator()
        cls.emulator_dir = tempfile.mkdtemp(prefix='mypos_emulator_')
        cls.emulator = Emulator(host='127.0.0.1', port=0, state_dir=cls.emulator_dir)
        cls.emulator.start()
        cls.addClassCleanup(cls.emulator.stop)
        cls.provider.write(
            {
                'mypos_public_certificate': cls.emulator.certificate_pem,
                'is_published': True,
            }
        )
        cls.env['ir.config_parameter'].set_param('payment_mypos.sandbox_url', cls.emulator.url)
        # Only myPOS at checkout, so the shopper's choice is unambiguous.
        cls.env['payment.provider'].search(
            [
                ('id', '!=', cls.provider.id),
                ('state', '!=', 'disabled'),
            ]
        ).write({'state': 'disabled'})
        cls.product = cls.env['product.template'].create(
            {
                'name': "myPOS Oak Chair",
                'list_price': 25.0,
                'taxes_id': [(5, 0, 0)],
                'is_published': True,
                'sale_ok': True,
            }
        )
        cls.shopper = cls.env['res.users'].create(
            {
                'name': "Ann Shopper",
                'login': 'mypos_shopper',
                'password': 'mypos_shopper',
                'email': 'ann.shopper@example.com',
                USER_GROUPS: [(6, 0, [cls.env.ref('base.group_portal').id])],
            }
        )
        cls.shopper.partner_id.write(
            {
                'street': "1 Vitosha Blvd",
                'city': "Sofia",
                'zip': "1000",
                'country_id': cls.env.ref('base.bg').id,
                'phone': '+359 2 123 456',
            }
        )

    def setUp(self):
        super().setUp()
        self.env['ir.config_parameter'].set_param('web.base.url', self.base_url())
        self.emulator.reset_faults()
        self.driver = BrowserDriver(self)
        # The browser's requests and myPOS's notifications reach Odoo until the very end.
        self.enterContext(allow_callbacks(self, browser=self.driver.browser))
        # Last in, first out: myPOS's late notifications (a rollback) arrive, the browser stops
        # (its long-polling and websocket requests end), then the requests still running finish
        # before the test's cursor is rolled back, never during the next test.
        self.addCleanup(self._wait_remaining_requests)
        self.addCleanup(self.driver.stop)
        self.addCleanup(self.emulator.wait_idle)
        self.authenticate('mypos_shopper', 'mypos_shopper', browser=self.driver.browser)
        self.cr.flush()
        self.cr.clear()

    def _checkout_to_emulator(self, save_card=False):
        """Add the chair to the cart, check out, choose myPOS and land on the emulator's page."""
        self._checkout_to_payment_page()
        driver = self.driver
        driver.evaluate(
            "(r => { if (!r.checked) r.click(); })"
            "(document.querySelector('input[name=\"o_payment_radio\"]"
            "[data-payment-option-type=\"payment_method\"][data-provider-code=\"mypos\"]'))"
        )
        if save_card:
            driver.click('input[name="o_payment_tokenize_checkbox"]')
        driver.screenshot('1-odoo-payment-page')
        self._submit_payment()
        driver.wait_for(
            f"location.href.startsWith({self.emulator.base_url!r})"
            " && !!document.querySelector('#pay')",
            "the myPOS emulator's card page",
        )
        driver.screenshot('2-mypos-emulator-card-page')

    def _checkout_to_payment_page(self):
        """Add the chair to the cart and check out, up to the choice of the payment method."""
        driver = self.driver
        driver.go(self.base_url() + self.product.website_url)
        driver.click('#add_to_cart')
        driver.wait_for(
            "document.querySelector('.my_cart_quantity')?.textContent.trim() === '1'",
            "the cart to hold the chair",
        )
        driver.go(self.base_url() + '/shop/cart')
        driver.click('a[href^="/shop/checkout"]')
        driver.wait_for("location.pathname === '/shop/checkout'", "the checkout page")
        driver.click('a[name="website_sale_main_button"]')
        driver.wait_for("location.pathname === '/shop/payment'", "the payment page")
        driver.wait_for(
            "!!document.querySelector('input[name=\"o_payment_radio\"][data-provider-code=\"mypos\"]')",
            "myPOS offered at checkout",
        )

    def _submit_payment(self):
        """Accept the terms (when the shop asks) and press the payment button."""
        self.driver.evaluate(
            "(c => { if (c && !c.checked) c.click(); })"
            "(document.querySelector('#website_sale_tc_checkbox'))"
        )
        self.driver.click('button[name="o_payment_submit_button"]')

    def _last_order_and_tx(self):
        self.driver.leave()
        with reading(self):  # No request may share the cursor while we read.
            self.env.invalidate_all()
            order = self.env['sale.order'].search(
                [('partner_id', '=', self.shopper.partner_id.id)], order='id desc', limit=1
            )
            tx = order.transaction_ids.sorted('id')[-1:]
            order.fetch(['state'])
            tx.fetch(['state', 'provider_id', 'provider_reference', 'mypos_order_id'])
        return order, tx

    def _pay_on_emulator(self, card='4006 0900 0000 0007'):
        driver = self.driver
        driver.fill('#card_number', card)
        driver.fill('#card_expiry', '12/30')
        driver.fill('#card_cvc', '123')
        driver.click('#pay')


@tagged('post_install', '-at_install')
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
        self.driver.wait_for(
            "location.pathname.startsWith('/shop/payment')"
            " || location.pathname.startsWith('/payment/status')",
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


@tagged('post_install', '-at_install')
class TestAdministratorInBrowser(MyPOSCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        Emulator = load_emulator()
        cls.emulator = Emulator(
            host='127.0.0.1',
            port=0,
            state_dir=tempfile.mkdtemp(prefix='mypos_emulator_'),
        )
        cls.emulator.start()
        cls.addClassCleanup(cls.emulator.stop)
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
