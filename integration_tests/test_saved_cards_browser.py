# Part of payment_mypos. License LGPL-3.
"""Saved cards in headless Chromium: the shopper saves the card while paying on myPOS's page and
pays the next order in one click without leaving Odoo; a card added from the portal."""

from odoo.tests import tagged

from odoo.addons.payment_mypos.tests.common import reading

from integration_tests.common import CheckoutBrowserCommon

TOKEN_RADIO = (
    'input[name="o_payment_radio"][data-payment-option-type="token"][data-provider-code="mypos"]'
)


@tagged('mypos_integration', 'post_install', '-at_install')
class TestSavedCardsInBrowser(CheckoutBrowserCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.provider.allow_tokenization = True

    def _tokens(self):
        with reading(self):
            self.env.invalidate_all()
            return self.env['payment.token'].search(
                [('partner_id', '=', self.shopper.partner_id.id)]
            )

    def test_save_card_then_pay_in_one_click(self):
        """First order: "Save my payment details" on Odoo, card on myPOS's page. Second order:
        the saved card, one click, no myPOS page; both orders paid, one token."""
        self._checkout_to_emulator(save_card=True)
        self._pay_on_emulator()
        self.driver.wait_for(
            "location.pathname.startsWith('/shop/confirmation')", "the first confirmation", 90
        )
        first_order, first_tx = self._last_order_and_tx()
        self.assertEqual((first_order.state, first_tx.state), ('sale', 'done'))
        self.assertEqual(first_tx.mypos_card_token_request, '2')
        tokens = self._tokens()
        self.assertEqual(len(tokens), 1)
        self.assertEqual(tokens.payment_details, '0007 (12/30)')

        self._checkout_to_payment_page()
        self.driver.wait_for(
            f"!!document.querySelector({TOKEN_RADIO!r})", "the saved card offered at checkout"
        )
        self.assertIn('0007', self.driver.evaluate('document.body.innerText'))
        self.driver.evaluate(
            f"(r => {{ if (!r.checked) r.click(); }})(document.querySelector({TOKEN_RADIO!r}))"
        )
        self._submit_payment()
        self.driver.wait_for(
            "location.pathname.startsWith('/shop/confirmation')", "the second confirmation", 90
        )
        self.assertFalse(self.driver.location().startswith(self.emulator.base_url))
        second_order, second_tx = self._last_order_and_tx()
        self.assertNotEqual(second_order, first_order)
        self.assertEqual((second_order.state, second_tx.state), ('sale', 'done'))
        self.assertEqual(second_tx.token_id, tokens)
        self.assertEqual(second_tx.operation, 'online_token')
        calls = [c for c in self.emulator.api_calls() if c['method'] == 'IPCIAPurchase']
        self.assertEqual(len(calls), 1)
        self.assertEqual(
            self.emulator.order(second_tx.mypos_order_id)['amount'], f'{second_tx.amount:.2f}'
        )
        self.assertEqual(len(self._tokens()), 1)

    def test_add_card_from_the_portal(self):
        """My Account > Payment methods: the card is saved on myPOS's page, no money moves."""
        driver = self.driver
        driver.go(self.base_url() + '/my/payment_method')
        radio = (
            'input[name="o_payment_radio"][data-payment-option-type="payment_method"]'
            '[data-provider-code="mypos"]'
        )
        driver.wait_for(f"!!document.querySelector({radio!r})", "myPOS offered to save a card")
        driver.evaluate(
            f"(r => {{ if (!r.checked) r.click(); }})(document.querySelector({radio!r}))"
        )
        driver.click('button[name="o_payment_submit_button"]')
        driver.wait_for(
            f"location.href.startsWith({self.emulator.base_url!r})"
            " && !!document.querySelector('#pay')",
            "the myPOS emulator's card page",
        )
        self._pay_on_emulator(card='5500 0000 0000 0004')
        driver.wait_for(
            "location.href.startsWith(" + repr(self.base_url()) + ")"
            " && document.body.innerText.includes('0004')",
            "the saved card listed in the portal",
            90,
        )
        driver.leave()
        tokens = self._tokens()
        self.assertEqual(len(tokens), 1)
        self.assertEqual(tokens.payment_details, '0004 (12/30)')
        with reading(self):
            tx = tokens.transaction_ids
            self.assertEqual(
                (tx.operation, tx.state, tx.mypos_card_token_request), ('validation', 'done', '1')
            )
        orders = [
            order
            for order in self.emulator.state()['orders'].values()
            if order.get('order_id') == tx.mypos_order_id
        ]
        self.assertEqual([order['amount'] for order in orders], ['0.00'])
