# Part of payment_mypos. License LGPL-3.
"""Shared set-up of the tests of money paths: a provider talking to an in-memory myPOS
(`ipc.testing.FakeMyPOS`, installed in place of the HTTP exchange `ipc.transport.post`), whose
notifications are posted to Odoo's webhook over Odoo's real test HTTP server."""

from unittest.mock import patch

import requests

from odoo.tools import mute_logger

from odoo.addons.payment_mypos.ipc import testing as ipc_testing
from odoo.addons.payment_mypos.tests.common import CALLS_LOGGER, SANDBOX_STORE_KEY, MyPOSCommon

# Where the fake myPOS sits: the HTTP exchange with myPOS, and nothing of the addon.
TRANSPORT_POST = 'odoo.addons.payment_mypos.ipc.transport.post'


class MyPOSFakeCommon(MyPOSCommon):
    """A myPOS provider in test state (the sandbox store's credentials) whose myPOS is
    `self.mypos`, a :class:`~odoo.addons.payment_mypos.ipc.testing.FakeMyPOS` signing with the
    throw-away key whose certificate the provider trusts; payments are made on its page."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.mypos = ipc_testing.FakeMyPOS(
            SANDBOX_STORE_KEY, key_pair=(cls.mypos_private_key, cls.mypos_certificate)
        )
        cls.startClassPatcher(patch(TRANSPORT_POST, cls.mypos.post))
        cls.env['ir.config_parameter'].sudo().set_param('payment_mypos.sandbox_url', cls.mypos.url)
        cls.amount = 100.0

    def setUp(self):
        super().setUp()
        self.mypos.reset()
        # URL_Notify must reach this test's HTTP server.
        self.env['ir.config_parameter'].sudo().set_param('web.base.url', self.base_url())

    def _create_mypos_transaction(self, **values):
        self._tx_serial = getattr(self, '_tx_serial', 0) + 1
        values.setdefault('reference', f'FAKE-{self._tx_serial}')
        return super()._create_mypos_transaction(**values)

    def _purchase_fields(self, tx):
        return tx._get_specific_rendering_values(None)['fields']

    def _deliver(self, url, fields):
        """Post a message of myPOS to `url` over Odoo's test HTTP server, as myPOS does:
        (HTTP status, body text); OSError when nothing answers."""
        try:
            response = self.url_open(url, data=fields, allow_redirects=False, timeout=30)
        except requests.exceptions.RequestException as error:
            raise OSError(f"{type(error).__name__}: {error}") from None
        self.env.invalidate_all()
        return response.status_code, response.text

    def _pay(self, tx=None, card=ipc_testing.VISA, method=None, **faults):
        """Pay a new (or the given) transaction on myPOS's page, as a shopper would, with the
        card or the `method` (a `PaymentMethod` value) they pick there; myPOS's notification goes
        to Odoo's webhook. Return (transaction, PaymentResult)."""
        tx = tx or self._create_mypos_transaction()
        fields = self._purchase_fields(tx)
        self.env.flush_all()
        if faults:
            self.mypos.set_faults(**faults)
        try:
            picked = {'method': method} if method else {}
            result = self.mypos.pay(fields, card=card, deliver=self._deliver, **picked)
        finally:
            self.mypos.reset_faults()
        self.env.invalidate_all()
        return tx, result

    def _resend(self, order_id):
        """myPOS posts the last message of an order to URL_Notify again."""
        record = self.mypos.resend(order_id, self._deliver)
        self.env.invalidate_all()
        return record

    def _api_calls(self, method):
        return [call for call in self.mypos.api_calls() if call['method'] == method]


class MyPOSPaidMixin:
    """A payment made on myPOS's page (the fake's, or the emulator's: the base's `_pay`), with
    its inbound payment, ready to be refunded."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.enable_post_process_patcher = False
        cls.account_payment_installed = 'account.payment' in cls.env
        if cls.account_payment_installed:
            cls.provider.journal_id = cls.env['account.journal'].search(
                [
                    ('type', '=', 'bank'),
                    ('company_id', '=', cls.provider.company_id.id),
                ],
                limit=1,
            )

    def setUp(self):
        super().setUp()
        self.tx, result = self._pay()
        self.assertEqual((result.outcome, self.tx.state), ('paid', 'done'))
        self.trnref = result.ipc_trnref
        self.assertEqual(self.tx.provider_reference, self.trnref)
        if self.account_payment_installed:
            self.tx._post_process()  # The inbound payment, as the status page would create it.

    def _refund(self, amount=None):
        with mute_logger(CALLS_LOGGER):
            self.tx.action_refund(amount_to_refund=amount)
        self.env.invalidate_all()
        return self.tx.child_transaction_ids.filtered(lambda t: t.operation == 'refund').sorted(
            'id'
        )[-1:]

    def _assert_outbound_payment(self, refund_tx, amount):
        if not self.account_payment_installed:
            return
        refund_tx._post_process()
        payment = refund_tx.payment_id
        self.assertTrue(payment, "the outbound payment is created when the refund is done")
        self.assertEqual((payment.payment_type, payment.amount), ('outbound', amount))
        self.assertIn(payment.state, ('in_process', 'paid'))
        self.assertEqual(payment.source_payment_id, self.tx.payment_id)


class MyPOSPaidCommon(MyPOSPaidMixin, MyPOSFakeCommon):
    """A payment made on the fake myPOS's page, ready to be refunded."""
