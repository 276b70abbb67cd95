# Part of payment_mypos. License LGPL-3.
"""Shared set-up of the saved-card tests: a card saved on the fake myPOS's page, transactions
that charge it, and an invoice an accountant charges it for."""

from odoo import Command
from odoo.tools import mute_logger

from odoo.addons.payment_mypos.ipc.testing import VISA
from odoo.addons.payment_mypos.tests.common import CALLS_LOGGER, USER_GROUPS
from odoo.addons.payment_mypos.tests.common_fake import MyPOSFakeCommon

MASTERCARD = '5500000000000004'


class MyPOSTokenCommon(MyPOSFakeCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.provider.allow_tokenization = True
        cls.visa = cls.env.ref('payment.payment_method_visa')

    def _portal_user(self, login, partner, password=None):
        """A portal user of `partner` (logging in with `password`, if given)."""
        values = {
            'name': login,
            'login': login,
            'partner_id': partner.id,
            USER_GROUPS: [Command.set(self.env.ref('base.group_portal').ids)],
        }
        if password:
            values['password'] = password
        return self.env['res.users'].create(values)

    def _save_card(self, card=VISA, **values):
        """Pay 100 EUR on myPOS's page asking to save the card; return the transaction."""
        tx, result = self._pay(self._create_mypos_transaction(tokenize=True, **values), card=card)
        self.assertEqual(result.outcome, 'paid')
        return tx

    def _token_tx(self, token, operation='online_token', **values):
        self._tx_serial = getattr(self, '_tx_serial', 0) + 1
        values.setdefault('reference', f'TOK-{self._tx_serial}')
        return self._create_transaction(
            'token',
            token_id=token.id,
            operation=operation,
            payment_method_id=token.payment_method_id.id,
            **values,
        )

    def _charge(self, tx, **faults):
        if faults:
            self.mypos.set_faults(**faults)
        with mute_logger(CALLS_LOGGER):
            tx._send_payment_request()
        self.mypos.reset_faults()
        self.env.invalidate_all()
        return tx

    def _charges(self):
        return self._api_calls('IPCIAPurchase')

    def _charged_orders(self):
        return [
            order
            for order in self.mypos.state()['orders'].values()
            if order.get('method') == 'IPCIAPurchase' and order.get('status') == 'paid'
        ]


class MyPOSBackOfficeCommon(MyPOSTokenCommon):
    """An invoice of the customer, who saved a card; the accountant's payment wizard."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if 'account.payment' not in cls.env:
            cls.skipTest(cls, "needs account_payment")
        cls.enable_post_process_patcher = False
        cls.provider.journal_id = cls.env['account.journal'].search(
            [('type', '=', 'bank'), ('company_id', '=', cls.provider.company_id.id)], limit=1
        )

    def setUp(self):
        super().setUp()
        self.token = self._save_card().token_id
        self.invoice = self.env['account.move'].create(
            {
                'move_type': 'out_invoice',
                'partner_id': self.partner.id,
                'currency_id': self.currency.id,
                'invoice_line_ids': [
                    Command.create(
                        {'name': "Gym, one year", 'quantity': 1, 'price_unit': 100.0, 'tax_ids': []}
                    )
                ],
            }
        )
        self.invoice.action_post()

    def _register_payment(self, **faults):
        line = self.provider.journal_id.inbound_payment_method_line_ids.filtered(
            lambda line: line.payment_provider_id == self.provider
        )
        wizard = (
            self.env['account.payment.register']
            .with_context(active_model='account.move', active_ids=self.invoice.ids)
            .create(
                {
                    'journal_id': self.provider.journal_id.id,
                    'payment_method_line_id': line.id,
                    'payment_token_id': self.token.id,
                }
            )
        )
        if faults:
            self.mypos.set_faults(**faults)
        with mute_logger(CALLS_LOGGER):
            payments = wizard._create_payments()
        self.mypos.reset_faults()
        self.env.invalidate_all()
        return payments
