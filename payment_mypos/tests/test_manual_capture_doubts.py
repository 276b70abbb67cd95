# Part of payment_mypos. License LGPL-3.
"""Manual capture when money may have moved unseen: answers lost, requests rolled back, double
clicks, calls refused before they are sent, and the person told; one call at myPOS each time."""

from datetime import timedelta

from odoo import fields
from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.payment_mypos import compat, const, ipc
from odoo.addons.payment_mypos.tests.common import (
    CALLS_LOGGER,
    PEOPLE_LOGGER,
)
from odoo.addons.payment_mypos.tests.common_preauth import (
    CANCELLATION,
    COMPLETION,
    PREAUTH_LOGGER,
    STATUS,
    MyPOSPreAuthCommon,
)
from odoo.addons.payment_mypos.tests.common_reliability import CONTROLLER_LOGGER


@tagged('post_install', '-at_install')
class TestManualCaptureDoubts(MyPOSPreAuthCommon):
    # === Answers lost, requests rolled back === #

    def test_lost_completion_answer_settled_by_status_check(self):
        tx, _result = self._authorize()
        capture = self._capture(tx, api_drop_answer=True)
        self.assertEqual((tx.state, tx.mypos_preauth_call), ('authorized', 'capture'))
        self.assertEqual(capture.state, 'pending')
        self.assertRegex(tx.state_message, "may have been captured")
        # A second click sends nothing.
        with self.assertRaisesRegex(UserError, "never sent twice"):
            tx.action_capture()
        self.assertEqual(self._children(tx), capture, "the second click left nothing behind")
        self._run_status_cron(tx)
        self.assertEqual((tx.state, capture.state, tx.mypos_preauth_call), ('done', 'done', False))
        self.assertEqual(len(self._api_calls(COMPLETION)), 1, "one completion at myPOS")
        self.assertEqual(len(self._api_calls(STATUS)), 1)

    def test_lost_release_answer_settled_by_status_check(self):
        tx, _result = self._authorize()
        release = self._void(tx, api_drop_answer=True)
        self.assertEqual(
            (tx.state, tx.mypos_preauth_call, release.state), ('authorized', 'void', 'pending')
        )
        self.assertRegex(tx.state_message, "may have been released")
        with self.assertRaisesRegex(UserError, "never sent twice"):
            tx.action_void()
        self._run_status_cron(tx)
        self.assertEqual(
            (tx.state, release.state, tx.mypos_preauth_call), ('cancel', 'cancel', False)
        )
        self.assertEqual(len(self._api_calls(CANCELLATION)), 1, "one cancellation at myPOS")
        self.assertFalse(self._api_calls(COMPLETION))

    def test_rolled_back_capture_is_never_sent_again(self):
        tx, _result = self._authorize()
        self.env.flush_all()
        with self.assertRaises(RuntimeError):  # The request fails after myPOS captured.
            with self.env.cr.savepoint():
                self._capture(tx)
                self.assertEqual(tx.state, 'done')
                raise RuntimeError("the request rolls back")
        self.env.invalidate_all()
        self.assertEqual((tx.state, len(self._children(tx))), ('authorized', 0))
        capture = self._capture(tx)  # Odoo replays it, or the user clicks again.
        self.assertEqual(len(self._api_calls(COMPLETION)), 1, "never a second completion")
        self.assertEqual(self._api_calls(STATUS)[-1]['order_id'], tx.mypos_order_id)
        self.assertEqual((tx.state, capture.state, capture.amount), ('done', 'done', 100.0))

    def test_unsent_capture_reopened_after_status_says_pending(self):
        """An HTTP error before myPOS: the capture waits; myPOS still holds the authorisation
        some minutes later, so the capture is closed and may be sent again."""
        tx, _result = self._authorize()
        first = self._capture(tx, api_http_status=502)
        self.assertEqual((first.state, tx.mypos_preauth_call), ('pending', 'capture'))
        self._run_status_cron(tx)  # Too soon to tell: still waiting.
        self.assertEqual((first.state, tx.mypos_preauth_call), ('pending', 'capture'))
        self._age_outbox()
        self._run_status_cron(tx)
        self.assertEqual(
            (tx.state, first.state, tx.mypos_preauth_call), ('authorized', 'error', False)
        )
        self.assertRegex(first.state_message, "did not make the capture")
        second = self._capture(tx) - first
        self.assertEqual((tx.state, second.state), ('done', 'done'))
        self.assertEqual([c['status'] for c in self._api_calls(COMPLETION)], [None, 0])

    def test_refused_capture_leaves_the_authorisation(self):
        tx, _result = self._authorize()
        self.mypos.expire(tx.mypos_order_id)
        capture = self._capture(tx)
        self.assertEqual((capture.state, tx.state), ('error', 'authorized'))
        self.assertRegex(capture.state_message, "The capture was refused")
        self._run_status_cron(tx)
        self.assertEqual(tx.state, 'cancel')
        self.assertRegex(tx.state_message, "expired")

    # === Guards === #

    def test_partial_capture_refused_before_anything_is_sent(self):
        tx, _result = self._authorize()
        with self.assertRaisesRegex(UserError, "Only the full authorised amount"):
            if compat.ODOO_19:
                tx._capture(amount_to_capture=60.0)
            else:
                tx._send_capture_request(amount_to_capture=60.0)
        self.assertFalse(self._children(tx))
        self.assertFalse(self.mypos.api_calls())

    def test_a_paid_purchase_is_no_authorisation_to_capture(self):
        tx = self._create_mypos_transaction()
        tx._set_authorized()  # Authorised, but never by a pre-authorisation.
        with self.assertRaisesRegex(UserError, "is not an authorisation"):
            tx.action_capture()
        self.assertFalse(self.mypos.api_calls())

    def test_answer_about_another_order_is_not_a_capture(self):
        tx, _result = self._authorize()
        capture = tx._create_child_transaction(tx.amount)
        answer = ipc.Message(
            method=COMPLETION, amount='100.00', currency='EUR', order_id='OTHER_1', status='0'
        )
        with self.assertRaisesRegex(ValidationError, "is not about"):
            compat.process_message(capture, answer)
        self.assertEqual((tx.state, capture.state), ('authorized', 'draft'))

    def test_order_capture_refused_before_sending_when_one_authorisation_waits(self):
        order, documents = self._order()
        if not order:
            self.skipTest("needs sale")  # pragma: no cover - sale is installed by odoo-tests
        waiting, _result = self._authorize(**documents)
        other, _result = self._authorize(**documents)  # Odoo's loop takes it first (id desc).
        self._capture(waiting, api_http_status=502)
        calls = len(self.mypos.api_calls())
        with self.assertRaisesRegex(UserError, "never sent twice"):
            order.payment_action_capture()
        self.assertEqual(len(self.mypos.api_calls()), calls, "nothing sent for the other")
        self.assertEqual(other.state, 'authorized')

    def test_capture_from_the_sales_order(self):
        order, documents = self._order()
        if not order:
            self.skipTest("needs sale")  # pragma: no cover - sale is installed by odoo-tests
        tx, _result = self._authorize(**documents)
        with mute_logger(CALLS_LOGGER, PREAUTH_LOGGER):
            order.payment_action_capture()
        self.env.invalidate_all()
        self.assertEqual(tx.state, 'done')
        self.assertEqual(len(self._api_calls(COMPLETION)), 1)

    def test_unsignable_capture_is_neither_recorded_nor_sent(self):
        tx, _result = self._authorize()
        self.env.cr.execute(
            "UPDATE payment_provider SET mypos_private_key_pem = 'not a key' WHERE id = %s",
            [self.provider.id],
        )
        self.env.invalidate_all()
        with self.assertRaisesRegex(UserError, "cannot be signed; nothing was sent"):
            tx.action_capture()
        self.assertFalse(self._outbox(), "nothing recorded: a later capture is not held")
        self.assertFalse(self.mypos.api_calls())

    # === Doubts settled, and people told === #

    def test_capture_answered_as_already_received_is_settled_at_once(self):
        tx, _result = self._authorize()
        capture = self._capture(tx, api_status_text='20', api_faults_remaining=1)
        self.assertEqual((tx.state, capture.state, tx.mypos_preauth_call), ('done', 'done', False))
        self.assertEqual(
            [c['method'] for c in self.mypos.api_calls()], [COMPLETION, STATUS], "asked, not resent"
        )

    def test_capture_check_asks_about_its_authorisation(self):
        tx, _result = self._authorize()
        capture = self._capture(tx, api_drop_answer=True)
        with mute_logger(CALLS_LOGGER, PREAUTH_LOGGER):
            capture.action_mypos_check_status()
        self.env.invalidate_all()
        self.assertEqual((tx.state, capture.state), ('done', 'done'))
        self.assertEqual([c['order_id'] for c in self._api_calls(STATUS)], [tx.mypos_order_id])

    def test_rolled_back_capture_booked_by_the_scheduled_check(self):
        tx, _result = self._authorize()
        self.env.flush_all()
        with self.assertRaises(RuntimeError):
            with self.env.cr.savepoint():
                self._capture(tx)
                raise RuntimeError("the request rolls back")
        self.env.invalidate_all()
        self._run_status_cron(tx)
        capture = self._children(tx)
        self.assertEqual((tx.state, capture.state, capture.amount), ('done', 'done', 100.0))
        self.assertEqual(len(self._api_calls(COMPLETION)), 1)

    def test_waiting_capture_is_never_expired_on_its_own(self):
        tx, _result = self._authorize()
        capture = self._capture(tx, api_http_status=502)
        self._age(capture, timedelta(days=2))
        tx.mypos_next_check = fields.Datetime.now() + timedelta(hours=1)  # Not due.
        self.env.flush_all()
        with mute_logger(CALLS_LOGGER, PEOPLE_LOGGER, PREAUTH_LOGGER):
            self.env['payment.transaction']._cron_mypos_check_status()
        self.env.invalidate_all()
        self.assertEqual(capture.state, 'pending')
        self.assertFalse(self.mypos.api_calls()[1:], "nothing asked: its authorisation is not due")

    def test_forgotten_call_record_reopens_the_authorisation(self):
        """A check voided the record of a capture myPOS never made, then rolled back: the next
        check still closes the capture, so that the authorisation can be captured again."""
        tx, _result = self._authorize()
        first = self._capture(tx, api_http_status=502)
        with self.env['payment.mypos.outbox']._mypos_cursor() as cr:
            cr.execute(
                "UPDATE payment_mypos_outbox SET state = 'void' WHERE order_id = %s",
                [tx.mypos_order_id],
            )
        self._run_status_cron(tx)
        self.assertEqual((first.state, tx.mypos_preauth_call), ('error', False))
        self.assertRegex(tx.state_message, "did not make the capture")
        second = self._capture(tx) - first
        self.assertEqual((tx.state, second.state), ('done', 'done'))

    def test_status_refusal_never_expires_a_held_authorisation(self):
        """A signed refusal other than "unknown order" says nothing of the hold: an unconfirmed
        pre-authorisation is not cancelled as unpaid."""
        tx = self._create_mypos_transaction()
        self._pay(tx, notify_drop=True)
        self._age(tx, timedelta(hours=25))
        self.mypos.set_faults(api_status_text='3')
        try:
            self._run_status_cron(tx)
        finally:
            self.mypos.reset_faults()
        self.assertEqual(tx.state, 'draft')
        self._run_status_cron(tx)
        self.assertEqual(tx.state, 'authorized')

    def test_checks_stop_and_tell_a_person_without_usable_answers(self):
        self.env['ir.config_parameter'].sudo().set_param(const.MAX_CHECKS_PARAM, '2')
        order, documents = self._order()
        tx, _result = self._authorize(**documents)
        self._capture(tx, api_drop_answer=True)
        self.mypos.set_faults(api_http_status=502)
        try:
            for _attempt in range(3):
                if tx.mypos_next_check:
                    self._run_status_cron(tx)
        finally:
            self.mypos.reset_faults()
        self.assertFalse(tx.mypos_next_check, "checks stopped")
        self.assertEqual(len(self._api_calls(STATUS)), 2)
        self.assertRegex(tx.state_message, "no usable status")
        records = order or tx.partner_id
        self.assertTrue(records.activity_ids.filtered(lambda a: 'usable status' in str(a.note)))

    def test_refused_authorisation_is_told_to_a_person(self):
        order, documents = self._order()
        tx = self._create_mypos_transaction(**documents)
        tx._set_canceled()
        with mute_logger(CONTROLLER_LOGGER, PEOPLE_LOGGER):
            _tx, result = self._pay(tx)
        self.assertEqual((result.outcome, tx.state), ('reversed', 'cancel'))
        self.assertRegex(tx.state_message, "Check in myPOS's dashboard that the hold was released")
        records = order or tx.partner_id
        self.assertTrue(records.activity_ids)
