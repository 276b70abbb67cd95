# Part of payment_mypos. License LGPL-3.
"""Shared set-up of the repository's integration tests (integration_tests/): a provider talking to
the myPOS emulator (mypos_emulator/, a second server) over real HTTP on loopback, with the
notifications coming back to Odoo's test HTTP server. The addon's own tests use the in-memory
fake instead (common_fake.py); these bases skip where the emulator cannot be imported."""

import shutil
import tempfile

from odoo.tools import mute_logger

from odoo.addons.payment_mypos.tests.common import (
    MUTED,
    MyPOSCommon,
    allow_callbacks,
    load_emulator,
)


class MyPOSEmulatorCommon(MyPOSCommon):
    """A myPOS provider pointed at a private emulator; payments are made on the emulator."""

    @classmethod
    def setUpClass(cls):
        emulator_class = load_emulator()
        super().setUpClass()
        state_dir = tempfile.mkdtemp(prefix='mypos-emulator-')
        cls.addClassCleanup(shutil.rmtree, state_dir, True)
        cls.emulator = emulator_class(host='127.0.0.1', port=0, state_dir=state_dir).start()
        cls.addClassCleanup(cls.emulator.stop)
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

    def _pay(self, tx=None, **faults):
        """Pay a new (or the given) transaction on the emulator, as a shopper would."""
        tx = tx or self._create_mypos_transaction()
        fields = self._purchase_fields(tx)
        self.env.flush_all()
        if faults:
            self.emulator.set_faults(**faults)
        with allow_callbacks(self):  # The emulator's notifications come back to Odoo.
            result = self.emulator.pay(fields)
            self.emulator.wait_idle()
        self.emulator.reset_faults()
        self.env.invalidate_all()
        return tx, result

    def _api_calls(self, method):
        return [call for call in self.emulator.api_calls() if call['method'] == method]


class MyPOSEmulatorPaidCommon(MyPOSEmulatorCommon):
    """A payment made on the emulator, with its inbound payment, ready to be refunded."""

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
        with mute_logger(*MUTED):
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
