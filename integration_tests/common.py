# Part of payment_mypos. License LGPL-3.
"""Bases of the integration suite: the addon's test bases, with myPOS played by the emulator of
this repository as a separate HTTP server on loopback (and, for the browser tests, a shopper in
Odoo's headless Chromium). The emulator is required here: a missing one is an error, not a skip."""

import base64
import os
import shutil
import tempfile
import time

from odoo.tests.common import ChromeBrowser

from odoo.addons.payment_mypos.tests.common import (
    USER_GROUPS,
    MyPOSCommon,
    allow_callbacks,
    reading,
)
from odoo.addons.payment_mypos.tests.common_fake import MyPOSPaidMixin

from mypos_emulator import Emulator


def start_emulator(cls):
    """Start a private emulator for the test class `cls`, stopped and removed after it."""
    state_dir = tempfile.mkdtemp(prefix='mypos-emulator-')
    cls.addClassCleanup(shutil.rmtree, state_dir, True)
    emulator = Emulator(host='127.0.0.1', port=0, state_dir=state_dir).start()
    cls.addClassCleanup(emulator.stop)
    return emulator


class MyPOSEmulatorCommon(MyPOSCommon):
    """A myPOS provider pointed at a private emulator; payments are made on the emulator."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.emulator = start_emulator(cls)
        # Signed with the sandbox store key (no key set in test state), which the emulator trusts;
        # answers are signed with the emulator's own key.
        cls.provider.mypos_public_certificate = cls.emulator.certificate_pem
        cls.mypos_private_key = cls.emulator.keys.private_key_pem  # What `_sign` signs with.
        cls.env['ir.config_parameter'].sudo().set_param(
            'payment_mypos.sandbox_url', cls.emulator.url
        )
        cls.amount = 100.0

    def setUp(self):
        super().setUp()
        self.emulator.reset()
        # URL_Notify must reach this test's HTTP server.
        self.env['ir.config_parameter'].sudo().set_param('web.base.url', self.base_url())

    def _create_mypos_transaction(self, **values):
        self._tx_serial = getattr(self, '_tx_serial', 0) + 1
        values.setdefault('reference', f'EMU-{self._tx_serial}')
        return super()._create_mypos_transaction(**values)

    def _purchase_fields(self, tx):
        return tx._get_specific_rendering_values(None)['fields']

    def _pay(self, tx=None, method=None, **faults):
        """Pay a new (or the given) transaction on the emulator, as a shopper would (`method`:
        the `PaymentMethod` chosen on the emulator's page, as `Emulator.pay` takes it)."""
        tx = tx or self._create_mypos_transaction()
        fields = self._purchase_fields(tx)
        self.env.flush_all()
        if faults:
            self.emulator.set_faults(**faults)
        with allow_callbacks(self):  # The emulator's notifications come back to Odoo.
            result = self.emulator.pay(fields, method=method)
            self.emulator.wait_idle()
        self.emulator.reset_faults()
        self.env.invalidate_all()
        return tx, result

    def _api_calls(self, method):
        """The calls of `method` the emulator received, oldest first."""
        return [call for call in self.emulator.api_calls() if call['method'] == method]


class MyPOSEmulatorPaidCommon(MyPOSPaidMixin, MyPOSEmulatorCommon):
    """A payment made on the emulator, with its inbound payment, ready to be refunded."""


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
            raise AssertionError("the integration suite needs website_sale installed")
        cls.emulator = start_emulator(cls)
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

    def _checkout_to_emulator(self, save_card=False, screenshots=True):
        """Add the chair to the cart, check out, choose myPOS and land on the emulator's page
        (`screenshots`: keep those of the payment pages, which other flows must not overwrite)."""
        self._checkout_to_payment_page()
        driver = self.driver
        driver.evaluate(
            "(r => { if (!r.checked) r.click(); })"
            "(document.querySelector('input[name=\"o_payment_radio\"]"
            "[data-payment-option-type=\"payment_method\"][data-provider-code=\"mypos\"]'))"
        )
        if save_card:
            driver.click('input[name="o_payment_tokenize_checkbox"]')
        if screenshots:
            driver.screenshot('1-odoo-payment-page')
        self._submit_payment()
        driver.wait_for(
            f"location.href.startsWith({self.emulator.base_url!r})"
            " && !!document.querySelector('#pay')",
            "the myPOS emulator's card page",
        )
        if screenshots:
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
