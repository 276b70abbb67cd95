# Part of payment_mypos. License LGPL-3.

import logging
import time
from datetime import timedelta

import psycopg2

from odoo import Command, api, fields, models
from odoo.exceptions import ValidationError

from odoo.addons.payment import utils as payment_utils

from .. import compat, const, ipc, utils
from ..const import CheckOutcome

_logger = logging.getLogger(__name__)


# A further class of the same model, as models/ splits one that grows too long (README, Layout).
class PaymentTransaction(models.Model):
    """The status check (`IPCGetTxnStatus`): what settles a transaction whose notification or
    answer never came, on a growing interval, for a bounded number of times.
    https://developers.mypos.com/apis/checkout-api/get-payment-status"""

    _inherit = 'payment.transaction'  # pylint: disable=consider-merging-classes-inherited

    # === BUSINESS METHODS - WHEN TO CHECK ===#

    def _mypos_schedule_check(self):
        """Schedule the next status check of this transaction (growing interval)."""
        self.mypos_next_check = utils.next_check_date(self.mypos_check_count)

    def _mypos_checks_gave_up(self):
        """Whether the automatic checks of this open transaction stopped (checked, none due)."""
        self.ensure_one()
        return bool(self.mypos_check_count and not self.mypos_next_check)

    def _mypos_waited_for_check(self):
        """Whether this transaction was left to a status check at some point."""
        self.ensure_one()
        return bool(self.mypos_next_check or self.mypos_check_count)

    @api.model
    def _mypos_due_domain(self, max_checks):
        """The transactions whose check is due: open, not checked too often, past their next
        check (or, never checked, past the first delay: the shopper may still be on the page)."""
        now = fields.Datetime.now()
        return [
            ('provider_code', '=', 'mypos'),
            ('provider_id.state', '!=', 'disabled'),  # Disconnected: nothing to ask with.
            ('state', 'in', ('draft', 'pending')),
            ('mypos_check_count', '<', max_checks),
            # A capture or release is settled through its authorisation's check.
            '|',
            ('source_transaction_id', '=', False),
            ('operation', '=', 'refund'),
            '|',
            ('mypos_next_check', '<=', now),
            '&',
            ('mypos_next_check', '=', False),
            ('create_date', '<=', now - const.FIRST_CHECK_DELAY),
        ]

    @api.model
    def _mypos_held_domain(self):
        """The authorisations waiting for their capture whose check is due (daily, and soon
        after a capture or release whose outcome is unknown)."""
        return [
            ('provider_code', '=', 'mypos'),
            ('provider_id.state', '!=', 'disabled'),
            ('state', '=', 'authorized'),
            ('mypos_preauth', '=', True),
            ('mypos_next_check', '<=', fields.Datetime.now()),
        ]

    # === BUSINESS METHODS - ONE CHECK ===#

    def _mypos_check_status(self):
        """Ask myPOS for the last message of this transaction's order and apply it.

        The nested `OrderStatus` of `IPCGetTxnStatus` is verified with its own signature and goes
        through the framework's processing exactly like a webhook message.

        Note: self.ensure_one()

        :rtype: const.CheckOutcome
        """
        self.ensure_one()
        if not self.mypos_order_id:
            if self.source_transaction_id.mypos_preauth and self.operation != 'refund':
                return self.source_transaction_id._mypos_check_status()  # A capture, a release.
            return CheckOutcome.UNKNOWN  # The shopper never reached myPOS.
        call = self._mypos_start_status_call()
        return self._mypos_apply_status_answer(call, *call.outcome())

    def _mypos_start_status_call(self):
        """Build, sign and log the `IPCGetTxnStatus` call about this transaction (sent by the
        caller, possibly in another thread)."""
        if self.mypos_preauth:  # Never IPCGetTxnStatus: what it says of them is undocumented.
            return self._mypos_start_preauth_status_call()
        params = [('OrderID', self.mypos_order_id)]
        return self.provider_id._mypos_start_call(ipc.const.TXN_STATUS_METHOD, params, tx=self)

    def _mypos_status_methods(self):
        """The methods a nested `OrderStatus` about this transaction may carry to apply to it."""
        if self.operation == 'refund':
            return (ipc.const.REFUND_METHOD,)
        allowed = (
            ipc.const.NOTIFY_METHODS['done'],
            ipc.const.NOTIFY_METHODS['cancel'],
            ipc.const.RETURN_METHODS['cancel'],
        )
        if self.operation in const.TOKEN_OPERATIONS:  # A saved card's charge.
            allowed += (ipc.const.TOKEN_PURCHASE_METHOD,)
        return allowed

    def _mypos_apply_status_answer(self, call, answer, error):
        """Apply what myPOS answered to a status call about this transaction.

        :rtype: const.CheckOutcome
        """
        try:
            answer = self.provider_id._mypos_finish_call(call, answer, error, tx=self)
        except ipc.RemoteError as failure:
            _logger.info("Status check of %s: no usable answer (%s)", self.reference, failure)
            if (
                call.method == ipc.const.PREAUTH_STATUS_METHOD
                and failure.kind is ipc.Failure.STATUS
                and failure.status_code is ipc.Status.E_INVALID_PARAMS
            ):
                return CheckOutcome.UNKNOWN  # How myPOS refuses an OrderID it does not know.
            return CheckOutcome.NO_ANSWER
        if call.method == ipc.const.PREAUTH_STATUS_METHOD:
            return self._mypos_apply_preauth_status(answer)
        if not answer.nested:
            return CheckOutcome.UNKNOWN  # The order is unknown to myPOS (unconfirmed).
        try:
            data = self._mypos_verify(ipc.read_form(answer.nested))
        except ipc.IPCError as error:
            _logger.warning("Status check of %s: %s", self.reference, error)
            self._mypos_log_check(
                self.env._(
                    "The nested OrderStatus was refused: %s", utils.explain_error(self.env, error)
                )
            )
            return CheckOutcome.INVALID
        method = data.method
        if data.order_id != self.mypos_order_id or method not in self._mypos_status_methods():
            return CheckOutcome.UNKNOWN
        try:
            with self.env.cr.savepoint():
                compat.process_message(self, data)
        except ValidationError as error:
            _logger.warning("Status check of %s: %s", self.reference, error)
            self._mypos_log_check(
                self.env._(
                    "The nested %(method)s was not applied: %(error)s",
                    method=method,
                    error=error.args[0],
                )
            )
            return CheckOutcome.INVALID
        self._mypos_log_check(
            self.env._(
                "Applied %(method)s: the transaction is now %(state)s.",
                method=method,
                state=self.state,
            )
        )
        if self.state == 'done' and not self.is_post_processed:
            # Settled late: no shopper's page polls it; shown on its documents at once, as refunds.
            self.env.ref('payment.cron_post_process_payment_tx')._trigger()
        return CheckOutcome.APPLIED

    def _mypos_log_check(self, outcome, method=ipc.const.TXN_STATUS_METHOD):
        """Record in the myPOS log what the status check made of myPOS's answer."""
        self.env['payment.mypos.log']._mypos_add(
            self, 'in', method, order_id=self.mypos_order_id, outcome=outcome
        )

    def _mypos_state_label(self):
        """The transaction's state as a person reads it, in their language."""
        return dict(self._fields['state']._description_selection(self.env))[self.state]

    def _mypos_describe_check(self, outcome):
        """Return, for the person who asked, what a status check of this transaction found."""
        return self.env._(
            "%(reference)s: %(text)s State: %(state)s.",
            reference=self.reference,
            text=utils.translate(self.env, const.CHECK_OUTCOME_TEXTS[outcome], {}),
            state=self._mypos_state_label(),
        )

    # === BUSINESS METHODS - AFTER A SCHEDULED CHECK ===#

    def _mypos_after_scheduled_check(self, outcome, expiry_date, max_checks):
        """Expire, reschedule or stop checking this transaction after a scheduled check.

        :param const.CheckOutcome outcome: What `_mypos_check_status` found.
        :param datetime expiry_date: Purchases created before are cancelled when still unpaid.
        :param int max_checks: The number of scheduled checks after which they stop.
        :return: Whether the transaction was expired.
        :rtype: bool
        """
        if self.mypos_preauth and self.state == 'authorized':  # Held until captured or released.
            self._mypos_after_preauth_check(outcome, max_checks)
            return False
        self.mypos_check_count += 1
        self.mypos_last_check = fields.Datetime.now()
        if self.state not in ('draft', 'pending'):
            self.mypos_next_check = False
            return False
        unknown_too_long = outcome is CheckOutcome.UNKNOWN and self.create_date <= expiry_date
        if self.operation != 'refund' and unknown_too_long:
            if self.operation not in const.TOKEN_OPERATIONS:
                self._mypos_expire_quietly()
                return True
            # A charge that may have moved money is never expired as "no payment".
            self._mypos_give_up(
                max_checks,
                self.env._(
                    "myPOS: myPOS still knows nothing of this charge of a saved card after %s "
                    "hours; it may have been charged. Automatic checks stopped: look it up in "
                    "myPOS's dashboard before charging again.",
                    utils.get_int_param(
                        self.env, const.EXPIRY_HOURS_PARAM, const.DEFAULT_EXPIRY_HOURS
                    ),
                ),
            )
            return False
        if self.mypos_check_count >= max_checks:
            if self.operation == 'refund':
                message = self.env._(
                    "myPOS: myPOS did not confirm this refund after %s checks; automatic checks "
                    "stopped. Look the refund up in myPOS's dashboard before refunding again.",
                    self.mypos_check_count,
                )
            else:
                message = self.env._(
                    "myPOS: myPOS did not settle this payment after %s checks; automatic checks "
                    "stopped. Look it up in myPOS's dashboard.",
                    self.mypos_check_count,
                )
            self._mypos_give_up(max_checks, message)
            return False
        self._mypos_schedule_check()
        return False

    def _mypos_give_up(self, max_checks, message):
        """Stop the automatic checks of a transaction that stays open (no scheduled run picks it
        again), and tell a person, once."""
        self.mypos_next_check = False
        self.mypos_check_count = max(self.mypos_check_count, max_checks)
        self._mypos_tell_person(message)

    def _mypos_expire_quietly(self):
        """Cancel an unpaid transaction without messages on its documents nor e-mails."""
        hours = utils.get_int_param(self.env, const.EXPIRY_HOURS_PARAM, const.DEFAULT_EXPIRY_HOURS)
        expired = self._update_state(
            ('draft', 'pending'),
            'cancel',
            self.env._(
                "No payment reached myPOS within %s hours: cancelled automatically.",
                hours,
            ),
        )
        # Nothing to post-process for an unpaid transaction: skip the chatter messages and mails
        # the post-processing of linked documents could send.
        expired.write({'is_post_processed': True, 'mypos_next_check': False})
        expired._mypos_settle_payments()  # A back-office charge's payment is cancelled with it.

    # === BUSINESS METHODS - THE SCHEDULED RUN ===#

    @api.model
    def _cron_mypos_check_status(self, batch_size=50):
        """Ask myPOS about draft and pending myPOS transactions whose check is due, oldest first.

        A bounded batch per run, whose calls overlap (`payment_mypos.status_check_concurrency` at
        a time); the run reports its progress, so that Odoo runs it again at once while due
        transactions remain. Each transaction's check is committed on its own; one whose check
        fails is pushed back to its next check. After `const.OUTAGE_STREAK` failures in a row the
        run stops until the next one. Each transaction is checked again after a growing interval
        and at most `payment_mypos.status_check_max_attempts` times; purchases still unpaid past
        `payment_mypos.status_check_expiry_hours` are cancelled quietly. No call is launched past
        the run's time budget. Calls Odoo lost the record of are looked up first.

        :param int batch_size: The maximum number of transactions checked per run.
        """
        env = self.env
        budget = utils.check_time_budget()
        deadline = budget and time.monotonic() + budget
        max_checks = utils.get_int_param(env, const.MAX_CHECKS_PARAM, const.DEFAULT_MAX_CHECKS)
        expiry_hours = utils.get_int_param(
            env, const.EXPIRY_HOURS_PARAM, const.DEFAULT_EXPIRY_HOURS
        )
        concurrency = utils.get_int_param(env, const.CONCURRENCY_PARAM, const.DEFAULT_CONCURRENCY)
        concurrency = min(max(concurrency, 1), 16)
        self._mypos_recover_lost_calls(max_checks)
        domain = self._mypos_due_domain(max_checks)
        due_count = self.sudo().search_count(domain)
        txs = self.sudo().search(domain, order=const.DUE_ORDER, limit=batch_size)
        held = self._mypos_held_domain()
        due_count += self.sudo().search_count(held)
        if len(txs) < batch_size:
            txs |= self.sudo().search(held, order=const.DUE_ORDER, limit=batch_size - len(txs))
        expiry_date = fields.Datetime.now() - timedelta(hours=expiry_hours)
        done = expired = streak = 0
        for start in range(0, len(txs), concurrency):
            if deadline and time.monotonic() > deadline:
                _logger.info(
                    "myPOS status check: time budget of %ss spent; the rest runs next", budget
                )
                break  # Reported as remaining: Odoo runs the check again at once.
            chunk = txs[start : start + concurrency]
            for tx, outcome, error in chunk._mypos_check_chunk(concurrency):
                expired += tx._mypos_settle_check(outcome, expiry_date, max_checks)
                done += 1
                outage = error is not None and error.kind in const.OUTAGE_FAILURES
                streak = streak + 1 if outage else 0
            if streak >= const.OUTAGE_STREAK:
                _logger.warning(
                    "myPOS status check: no usable answer from myPOS %s times in a row (%s); the "
                    "next checks wait for the next scheduled run",
                    streak,
                    error,
                )
                due_count = done  # Nothing left for now: Odoo does not run it again at once.
                break
        env['ir.cron']._notify_progress(done=done, remaining=max(due_count - done, 0))
        if txs:
            _logger.info("myPOS status check: %s transaction(s) checked, %s expired", done, expired)

    def _mypos_check_chunk(self, concurrency):
        """Check these transactions, their calls overlapping: (tx, outcome, failure) for each.

        The calls are built, logged and applied here, on the cron's cursor; only the HTTP
        exchanges run in other threads, and they touch no record.
        """
        with_order = self.filtered('mypos_order_id')
        calls = [tx._mypos_start_status_call() for tx in with_order]
        outcomes = ipc.transport.send_all(calls, concurrency)
        sent = dict(zip(with_order, zip(calls, outcomes, strict=True), strict=True))
        for tx in self:
            if tx not in sent:
                yield tx, CheckOutcome.UNKNOWN, None  # The shopper never reached myPOS.
                continue
            call, (answer, error) = sent[tx]
            try:
                with tx.env.cr.savepoint():
                    outcome = tx._mypos_apply_status_answer(call, answer, error)
            except Exception:  # noqa: BLE001 - one broken transaction must not stop the others.
                _logger.exception("myPOS status check of %s failed", tx.reference)
                outcome = None
            yield tx, outcome, error

    def _mypos_settle_check(self, outcome, expiry_date, max_checks):
        """Record a scheduled check and commit it on its own; a failed one (`outcome` None) is
        pushed back to its next check, never retried at once.

        :return: Whether the transaction was expired.
        :rtype: bool
        """
        try:
            with self.env.cr.savepoint():
                if outcome is None:
                    self.mypos_check_count += 1
                    self.mypos_last_check = fields.Datetime.now()
                    self._mypos_schedule_check()
                    expired = False
                else:
                    expired = self._mypos_after_scheduled_check(outcome, expiry_date, max_checks)
        except psycopg2.Error:  # A concurrent update of this transaction: checked next time.
            _logger.info("myPOS status check of %s: changed meanwhile", self.reference)
            expired = False
        if not compat.in_test():
            # Each transaction's check is kept even if a later one fails (the cron runs on its
            # own cursor; myPOS has already answered for this one).
            self.env.cr.commit()  # pylint: disable=invalid-commit
        return expired

    # === BUSINESS METHODS - CALLS ODOO LOST ===#

    @api.model
    def _mypos_recover_lost_calls(self, max_checks, limit=20):
        """Find the calls recorded before they were sent whose transaction Odoo does not have (the
        request that sent them was rolled back), ask myPOS how they ended, and book what moved.

        A call whose transaction exists is left to that transaction's own checks. One that myPOS
        made is rebuilt as a transaction, applied like any message of myPOS and post-processed,
        and a person is told; one that myPOS refused or never knew after `max_checks` checks is
        closed, the latter with a person told.
        """
        Outbox = self.env['payment.mypos.outbox'].sudo()
        for row in Outbox._mypos_fetch_due(fields.Datetime.now() - const.FIRST_CHECK_DELAY, limit):
            tx = self.sudo().search([('mypos_order_id', '=', row['order_id'])], limit=1)
            if tx:
                Outbox._mypos_update(row['id'], state='recorded', transaction_db_id=tx.id)
                continue
            try:
                with self.env.cr.savepoint():
                    state = self._mypos_recover_call(row)
            except Exception:  # noqa: BLE001 - one broken row must not stop the others.
                _logger.exception("myPOS: recovering the lost call %s failed", row['order_id'])
                state = None
            if state in ('recovered', 'void'):
                continue
            count = row['check_count'] + 1
            if count >= max_checks:
                message = self.env._(
                    "myPOS: %(method)s %(order_id)s of %(amount)s %(currency)s was sent to myPOS "
                    "for %(reference)s, but Odoo lost its record and myPOS could not tell how it "
                    "ended. Look it up in myPOS's dashboard.",
                    **Outbox._mypos_row_terms(row),
                )
                self._mypos_schedule_todo(Outbox._mypos_row_records(row), message)
                Outbox._mypos_update(row['id'], state='flagged', check_count=count)
            else:
                Outbox._mypos_update(
                    row['id'], check_count=count, next_check=utils.next_check_date(count)
                )

    @api.model
    def _mypos_recover_call(self, row):
        """Ask myPOS about a lost call and book it if it moved money.

        :return: 'recovered', 'void' (myPOS refused or reversed it), or None (no answer yet).
        """
        Outbox = self.env['payment.mypos.outbox'].sudo()
        provider = self.env['payment.provider'].sudo().browse(row['provider_db_id']).exists()
        if not provider or provider.code != 'mypos' or provider.state == 'disabled':
            return None
        params = [('OrderID', row['order_id'])]
        try:
            answer = provider._mypos_make_request(ipc.const.TXN_STATUS_METHOD, params)
            if not answer.nested:
                return None
            certificate = provider._mypos_get_credentials().certificate
            data = ipc.read_form(answer.nested).verify(certificate)
        except ipc.IPCError as error:
            _logger.info("myPOS: no usable status of the lost call %s (%s)", row['order_id'], error)
            return None
        if row['method'] == ipc.const.REFUND_METHOD:
            paid = (ipc.const.REFUND_METHOD,)
        else:
            paid = (ipc.const.TOKEN_PURCHASE_METHOD, ipc.const.NOTIFY_METHODS['done'])
        if data.order_id != row['order_id']:
            return None
        if data.method not in paid:
            Outbox._mypos_update(row['id'], state='void')
            return 'void'
        tx = self._mypos_rebuild_transaction(row)
        compat.process_message(tx, data)
        if tx.state != 'done':
            return None  # Refused by our checks (amount, currency): a person looks at it below.
        self.env.ref('payment.cron_post_process_payment_tx')._trigger()
        tx._mypos_tell_person(
            self.env._(
                "myPOS: %(method)s %(order_id)s of %(amount)s %(currency)s moved money, but Odoo "
                "had lost its record (the request that sent it failed afterwards). It was found "
                "by the status check and booked as %(reference)s; check the documents it pays.",
                **dict(Outbox._mypos_row_terms(row), reference=tx.reference),
            )
        )
        Outbox._mypos_update(row['id'], state='recovered', transaction_db_id=tx.id)
        return 'recovered'

    @api.model
    def _mypos_rebuild_transaction(self, row):
        """Create again the transaction of a lost call, from what was recorded before sending."""
        Tx = self.sudo()
        if row['method'] == ipc.const.REFUND_METHOD:
            source = Tx.browse(row['source_db_id'])
            return source._create_child_transaction(
                -row['amount'], is_refund=True, mypos_order_id=row['order_id']
            )
        token = self.env['payment.token'].sudo().with_context(active_test=False)
        token = token.browse(row['token_db_id'])
        provider = self.env['payment.provider'].sudo().browse(row['provider_db_id'])
        currency = self.env['res.currency'].search([('name', '=', row['currency_name'])])
        values = {
            'provider_id': provider.id,
            'payment_method_id': token.payment_method_id.id,
            'reference': Tx._compute_reference(provider.code, prefix=row['reference']),
            'amount': row['amount'],
            'currency_id': currency.id,
            'partner_id': row['partner_db_id'],
            'token_id': token.id,
            'operation': row['operation'],
            'mypos_order_id': row['order_id'],
        }
        for name, ids in (
            ('invoice_ids', row['invoice_db_ids']),
            ('sale_order_ids', row['order_db_ids']),
        ):
            if ids and name in Tx._fields:
                comodel = self.env[Tx._fields[name].comodel_name].sudo()
                found = comodel.browse(int(i) for i in ids.split(',')).exists()
                values[name] = [Command.set(found.ids)]
        return Tx.create(values)

    # === ACTION METHODS ===#

    def action_mypos_check_status(self):
        """Ask myPOS now about the selected transactions and tell the result.

        :return: A client action showing a notification.
        :rtype: dict
        """
        payment_utils.check_rights_on_recordset(self)
        lines = []
        for tx in self.sudo().filtered(lambda t: t.provider_code == 'mypos'):
            lines.append(tx._mypos_describe_check(tx._mypos_check_status()))
        return {
            'type': 'ir.actions.client',
            'tag': 'display_notification',
            'params': {
                'title': self.env._("Status checked with myPOS"),
                'message': '\n'.join(lines) or self.env._("No myPOS transaction selected."),
                'sticky': False,
                'next': {'type': 'ir.actions.client', 'tag': 'soft_reload'},
            },
        }
