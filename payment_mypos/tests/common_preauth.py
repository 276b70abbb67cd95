# Part of payment_mypos. License LGPL-3.
"""The set-up of the manual-capture tests: a myPOS provider that captures manually, talking to the
in-addon fake myPOS, and the steps a person takes (authorise on the page, Capture, Void, the
scheduled status check)."""

from datetime import timedelta

from odoo import Command, fields
from odoo.tools import mute_logger

from odoo.addons.payment_mypos.tests.common import (
    CALLS_LOGGER,
    PEOPLE_LOGGER,
    SALE_LINE_TAXES,
)
from odoo.addons.payment_mypos.tests.common_fake import MyPOSFakeCommon

COMPLETION, CANCELLATION, STATUS = (
    'IPCPreAuthCompletion',
    'IPCPreAuthCancellation',
    'IPCPreAuthStatus',
)
PREAUTH_LOGGER = 'odoo.addons.payment_mypos.models.payment_transaction_preauth'


class MyPOSPreAuthCommon(MyPOSFakeCommon):
    """A myPOS provider with Capture Amount Manually (no saved cards), myPOS the fake."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.enable_post_process_patcher = False
        cls.provider.write({'allow_tokenization': False, 'capture_manually': True})
        cls.account_payment_installed = 'account.payment' in cls.env
        if cls.account_payment_installed:
            cls.provider.journal_id = cls.env['account.journal'].search(
                [('type', '=', 'bank'), ('company_id', '=', cls.provider.company_id.id)], limit=1
            )

    # === Helpers === #

    def _order(self):
        """A quotation of the transaction's amount, when sale is installed: {} otherwise."""
        if 'sale.order' not in self.env:
            return None, {}
        product = self.env['product.product'].create({'name': "Room, 2 nights", 'list_price': 100})
        order = self.env['sale.order'].create(
            {
                'partner_id': self.partner.id,
                'order_line': [Command.create({'product_id': product.id, 'price_unit': 100.0})],
            }
        )
        order.order_line[SALE_LINE_TAXES] = False
        return order, {'sale_order_ids': [Command.set(order.ids)]}

    def _authorize(self, **values):
        """Authorise a new transaction on myPOS's page; myPOS notifies Odoo's webhook."""
        tx, result = self._pay(self._create_mypos_transaction(**values))
        self.assertEqual((result.outcome, tx.state), ('authorized', 'authorized'), result)
        return tx, result

    def _capture(self, tx, **faults):
        if faults:
            self.mypos.set_faults(**faults)
        try:
            with mute_logger(CALLS_LOGGER, PREAUTH_LOGGER):
                tx.action_capture()
        finally:
            self.mypos.reset_faults()
        self.env.invalidate_all()
        return self._children(tx)

    def _void(self, tx, **faults):
        if faults:
            self.mypos.set_faults(**faults)
        try:
            with mute_logger(CALLS_LOGGER, PREAUTH_LOGGER):
                tx.action_void()
        finally:
            self.mypos.reset_faults()
        self.env.invalidate_all()
        return self._children(tx)

    def _children(self, tx):
        return tx.child_transaction_ids.filtered(lambda t: t.operation != 'refund').sorted('id')

    def _age_outbox(self, minutes=11):
        """Make the calls this test recorded look sent `minutes` ago."""
        with self.env['payment.mypos.outbox']._mypos_cursor() as cr:
            cr.execute(
                "UPDATE payment_mypos_outbox SET create_date = create_date - %s WHERE id > %s",
                [timedelta(minutes=minutes), self._outbox_before],
            )

    def _age(self, tx, delta):
        """Make `tx` look created `delta` ago (the ORM does not write `create_date`)."""
        self.env.flush_all()
        self.env.cr.execute(
            'UPDATE payment_transaction SET create_date = create_date - %s WHERE id = %s',
            [delta, tx.id],
        )
        self.env.invalidate_all()

    def _run_status_cron(self, tx):
        """The scheduled status check, with `tx` due."""
        tx.mypos_next_check = fields.Datetime.now() - timedelta(minutes=1)
        self.env.flush_all()
        with mute_logger(CALLS_LOGGER, PEOPLE_LOGGER, PREAUTH_LOGGER):
            self.env['payment.transaction']._cron_mypos_check_status()
        self.env.invalidate_all()
