# Part of payment_mypos. License LGPL-3.
"""Reliability suite, item 4 (docs/RELIABILITY.md): faults at the myPOS boundary during the
status check. Refunds and the connection test under the same faults are tested in
test_refunds.py and test_administration.py; this adds the status check of a payment whose
notification was lost: no guess on any fault, and the next check settles it."""

from unittest.mock import patch

from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.payment_mypos import ipc
from odoo.addons.payment_mypos.tests.common_emulator import MyPOSEmulatorCommon
from odoo.addons.payment_mypos.tests.common_reliability import MUTED_LOGGERS, write_report

SHORT_TIMEOUT = 2


@tagged('post_install', '-at_install')
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
        results = []
        for name, faults in self.FAULTS:
            if faults and not set(faults) <= set(self.emulator.faults.as_dict()):
                continue
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
                    mute_logger(*MUTED_LOGGERS),
                ):
                    outcome = tx._mypos_check_status()
                self.env.invalidate_all()
                faulty = (outcome, tx.state, tx.provider_reference)
                self.assertIn(outcome, ('no_answer', 'invalid'), name)
                self.assertEqual((tx.state, tx.provider_reference), ('draft', False), name)
                # The fault goes away: the next check settles it.
                self.emulator.reset_faults()
                self.env['ir.config_parameter'].sudo().set_param(
                    'payment_mypos.sandbox_url', self.emulator.url
                )
                with mute_logger(*MUTED_LOGGERS):
                    settled = tx._mypos_check_status()
                self.env.invalidate_all()
                self.assertEqual((settled, tx.state), ('applied', 'done'), name)
                self.assertEqual(tx.provider_reference, result.ipc_trnref)
                results.append(
                    {
                        'fault': name,
                        'during_fault': {'outcome': faulty[0], 'state': faulty[1]},
                        'next_check': {'outcome': settled, 'state': tx.state},
                    }
                )
        self.assertGreaterEqual(len(results), 5)
        write_report('faults', {'status_check': results})
