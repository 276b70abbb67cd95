# Part of payment_mypos. License LGPL-3.
"""Faults at the myPOS boundary during the status check of a payment whose notification was lost,
with the emulator as a separate server: no guess on any fault, and the next check settles it.
Refunds and the connection test under faults are in the addon's test_refunds.py and
test_administration.py."""

from unittest.mock import patch

from odoo.tests import tagged

from odoo.addons.payment_mypos import ipc

from integration_tests.common import MyPOSEmulatorCommon

SHORT_TIMEOUT = 2
CALL_LOGGER = 'odoo.addons.payment_mypos.models.payment_provider'  # Logs each failed call.


@tagged('mypos_integration', 'post_install', '-at_install')
class TestStatusCheckFaults(MyPOSEmulatorCommon):
    FAULTS = [
        ('connection refused', None),
        ('timeout', {'api_timeout': SHORT_TIMEOUT + 2}),
        ('HTTP 503', {'api_http_status': 503}),
        ('HTTP 500', {'api_http_status': 500}),
        ('garbage (HTML page)', {'api_garbage': True}),
        ('wrongly signed answer', {'api_bad_signature': True}),
        ('unsigned answer', {'api_unsigned': True}),
    ]

    def test_status_check_faults_then_settled(self):
        checked = []
        for name, faults in self.FAULTS:
            with self.subTest(fault=name):
                self.emulator.reset()
                # Paid at myPOS, the notification lost: Odoo still has it as draft.
                tx, result = self._pay(notify_drop=True)
                self.assertEqual((result.outcome, tx.state), ('paid', 'draft'))
                if faults:
                    self.emulator.set_faults(**faults)
                else:
                    self.env['ir.config_parameter'].sudo().set_param(
                        'payment_mypos.sandbox_url', 'http://127.0.0.1:9/vmp/checkout-test'
                    )
                with (
                    patch.object(ipc.const, 'REQUEST_TIMEOUT', SHORT_TIMEOUT),
                    self.assertLogs(CALL_LOGGER, 'WARNING') as logs,
                ):
                    outcome = tx._mypos_check_status()
                self.assertIn("IPCGetTxnStatus to http://127.0.0.1:", logs.output[0])
                self.env.invalidate_all()
                self.assertIn(outcome, ('no_answer', 'invalid'), name)
                self.assertEqual((tx.state, tx.provider_reference), ('draft', False), name)
                # The fault goes away: the next check settles it.
                self.emulator.reset_faults()
                self.env['ir.config_parameter'].sudo().set_param(
                    'payment_mypos.sandbox_url', self.emulator.url
                )
                settled = tx._mypos_check_status()
                self.env.invalidate_all()
                self.assertEqual((settled, tx.state), ('applied', 'done'), name)
                self.assertEqual(tx.provider_reference, result.ipc_trnref)
                checked.append(name)
        self.assertEqual(checked, [name for name, _faults in self.FAULTS])
