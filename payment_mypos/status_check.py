# Part of payment_mypos. License LGPL-3.
"""The status check (`IPCGetTxnStatus`, API §4.8): what settles a transaction whose notification
or answer never came, on a growing interval, for a bounded number of times."""

import logging
import time
from datetime import timedelta

import psycopg2

from odoo import Command, fields
from odoo.exceptions import ValidationError
from odoo.tools import config

from . import compat, ipc, utils
from .const import TOKEN_OPERATIONS

_logger = logging.getLogger(__name__)

# System parameters of the status check (Settings > Technical > System Parameters).
EXPIRY_HOURS_PARAM = 'payment_mypos.status_check_expiry_hours'  # Default: DEFAULT_EXPIRY_HOURS.
MAX_CHECKS_PARAM = 'payment_mypos.status_check_max_attempts'  # Default: DEFAULT_MAX_CHECKS.
DEFAULT_EXPIRY_HOURS = 24
DEFAULT_MAX_CHECKS = 12
# First check this long after creation (the shopper may still be on myPOS's page), then the
# interval doubles after each check, up to the cap.
FIRST_CHECK_DELAY = timedelta(minutes=10)
MAX_CHECK_INTERVAL = timedelta(hours=12)
MAX_CHECK_DOUBLINGS = 7  # FIRST_CHECK_DELAY * 2**7 is past MAX_CHECK_INTERVAL already.
# How many status calls of a run may be open at once (system parameter, 1 to 16).
CONCURRENCY_PARAM = 'payment_mypos.status_check_concurrency'
DEFAULT_CONCURRENCY = 4
# Failures that say myPOS (or the way to it) is down, not that one answer is odd; after this many
# in a row, a run stops instead of hammering an unavailable service.
OUTAGE_FAILURES = (
    ipc.Failure.UNREACHABLE,
    ipc.Failure.LOST,
    ipc.Failure.TIMEOUT,
    ipc.Failure.HTTP,
)
OUTAGE_STREAK = 5
# Never checked first (they are the oldest due), then by due date.
DUE_ORDER = 'mypos_next_check asc nulls first, id asc'


def next_check_date(check_count):
    """Return when to check again a transaction checked `check_count` times (growing interval)."""
    # The exponent is capped before it is used, whatever the number of checks allowed.
    doublings = min(max(check_count, 0), MAX_CHECK_DOUBLINGS)
    return fields.Datetime.now() + min(FIRST_CHECK_DELAY * (2**doublings), MAX_CHECK_INTERVAL)


def check_status(tx):
    """Ask myPOS for the last message of this transaction's order and apply it.

    The nested `OrderStatus` of `IPCGetTxnStatus` (API §4.8) is verified with its own
    signature and goes through the framework's processing exactly like a webhook message.

    Note: tx.ensure_one()

    :return: 'applied' (a message was applied), 'unknown' (myPOS knows nothing usable yet),
             'no_answer' (no signed answer), or 'invalid' (a message that cannot apply).
    :rtype: str
    """
    tx.ensure_one()
    if not tx.mypos_order_id:
        return 'unknown'  # The shopper never reached myPOS.
    call = start_call(tx)
    return apply_answer(tx, call, *call.outcome())


def start_call(tx):
    """Build, sign and log the `IPCGetTxnStatus` call about a transaction (sent by the caller)."""
    params = [('OrderID', tx.mypos_order_id)]
    return tx.provider_id._mypos_start_call(ipc.const.TXN_STATUS_METHOD, params, tx=tx)


def apply_answer(tx, call, answer, error):
    """Apply what myPOS answered to a status call about `tx`: see :func:`check_status`."""
    try:
        answer = tx.provider_id._mypos_finish_call(call, answer, error, tx=tx)
    except ipc.RemoteError as failure:
        _logger.info("Status check of %s: no usable answer (%s)", tx.reference, failure)
        return 'no_answer'
    if not answer.nested:
        return 'unknown'  # The order is unknown to myPOS (API §4.8: unconfirmed).
    try:
        data = tx._mypos_verify(ipc.read_form(answer.nested))
    except ipc.IPCError as error:
        _logger.warning("Status check of %s: %s", tx.reference, error)
        log_outcome(
            tx,
            tx.env._("The nested OrderStatus was refused: %s", utils.explain_error(tx.env, error)),
        )
        return 'invalid'
    method = data.method
    if tx.operation == 'refund':
        allowed = (ipc.const.REFUND_METHOD,)
    else:
        allowed = (
            ipc.const.NOTIFY_METHODS['done'],
            ipc.const.NOTIFY_METHODS['cancel'],
            ipc.const.RETURN_METHODS['cancel'],
        )
        if tx.operation in TOKEN_OPERATIONS:  # A saved card's charge (API §9).
            allowed += (ipc.const.TOKEN_PURCHASE_METHOD,)
    if data.order_id != tx.mypos_order_id or method not in allowed:
        return 'unknown'
    try:
        with tx.env.cr.savepoint():
            compat.process_message(tx, data)
    except ValidationError as error:
        _logger.warning("Status check of %s: %s", tx.reference, error)
        log_outcome(
            tx,
            tx.env._(
                "The nested %(method)s was not applied: %(error)s",
                method=method,
                error=error.args[0],
            ),
        )
        return 'invalid'
    log_outcome(
        tx,
        tx.env._(
            "Applied %(method)s: the transaction is now %(state)s.",
            method=method,
            state=tx.state,
        ),
    )
    if tx.state == 'done' and not tx.is_post_processed:
        # Settled late: no shopper's page polls it; shown on its documents at once, as refunds.
        tx.env.ref('payment.cron_post_process_payment_tx')._trigger()
    return 'applied'


def describe_outcome(tx, outcome):
    """Return, for the person who asked, what a status check of `tx` found."""
    texts = {
        'applied': tx.env._("myPOS's last message was applied."),
        'unknown': tx.env._("myPOS has no payment message for it yet."),
        'no_answer': tx.env._("myPOS gave no usable answer; see the myPOS log."),
        'invalid': tx.env._("myPOS's answer could not be applied; see the myPOS log."),
    }
    return tx.env._(
        "%(reference)s: %(text)s State: %(state)s.",
        reference=tx.reference,
        text=texts[outcome],
        state=dict(tx._fields['state']._description_selection(tx.env))[tx.state],
    )


def log_outcome(tx, outcome):
    """Record in the myPOS log what the status check made of myPOS's answer."""
    tx.env['payment.mypos.log']._mypos_add(
        tx, 'in', ipc.const.TXN_STATUS_METHOD, order_id=tx.mypos_order_id, outcome=outcome
    )


def after_scheduled_check(tx, outcome, expiry_date, max_checks):
    """Expire, reschedule or stop checking this transaction after a scheduled check.

    :param str outcome: What `_mypos_check_status` returned.
    :param datetime expiry_date: Purchases created before are cancelled when still unpaid.
    :param int max_checks: The number of scheduled checks after which they stop.
    :return: Whether the transaction was expired.
    :rtype: bool
    """
    tx.mypos_check_count += 1
    tx.mypos_last_check = fields.Datetime.now()
    if tx.state not in ('draft', 'pending'):
        tx.mypos_next_check = False
        return False
    if tx.operation == 'refund' or outcome != 'unknown' or tx.create_date > expiry_date:
        pass
    elif tx.operation in TOKEN_OPERATIONS:
        # A charge that may have moved money is never expired as "no payment".
        give_up(
            tx,
            max_checks,
            tx.env._(
                "myPOS: myPOS still knows nothing of this charge of a saved card after %s "
                "hours; it may have been charged. Automatic checks stopped: look it up in "
                "myPOS's dashboard before charging again.",
                get_int_param(tx, EXPIRY_HOURS_PARAM, DEFAULT_EXPIRY_HOURS),
            ),
        )
        return False
    else:
        expire_quietly(tx)
        return True
    if tx.mypos_check_count >= max_checks:
        if tx.operation == 'refund':
            message = tx.env._(
                "myPOS: myPOS did not confirm this refund after %s checks; automatic checks "
                "stopped. Look the refund up in myPOS's dashboard before refunding again.",
                tx.mypos_check_count,
            )
        else:
            message = tx.env._(
                "myPOS: myPOS did not settle this payment after %s checks; automatic checks "
                "stopped. Look it up in myPOS's dashboard.",
                tx.mypos_check_count,
            )
        give_up(tx, max_checks, message)
        return False
    tx._mypos_schedule_check()
    return False


def give_up(tx, max_checks, message):
    """Stop the automatic checks of a transaction that stays open (no scheduled run picks it
    again), and tell a person, once."""
    tx.mypos_next_check = False
    tx.mypos_check_count = max(tx.mypos_check_count, max_checks)
    tx._mypos_tell_person(message)


def expire_quietly(tx):
    """Cancel an unpaid transaction without messages on its documents nor e-mails."""
    hours = get_int_param(tx, EXPIRY_HOURS_PARAM, DEFAULT_EXPIRY_HOURS)
    expired = tx._update_state(
        ('draft', 'pending'),
        'cancel',
        tx.env._(
            "No payment reached myPOS within %s hours: cancelled automatically.",
            hours,
        ),
    )
    # Nothing to post-process for an unpaid transaction: skip the chatter messages and mails
    # the post-processing of linked documents could send.
    expired.write({'is_post_processed': True, 'mypos_next_check': False})
    expired._mypos_settle_payments()  # A back-office charge's payment is cancelled with it.


def get_int_param(model, name, default):
    value = model.env['ir.config_parameter'].sudo().get_param(name)
    try:
        return int(value) if value else default
    except ValueError:
        _logger.warning("Ignoring the system parameter %s=%r (not a number)", name, value)
        return default


def due_domain(model, max_checks):
    """The transactions whose check is due: open, not checked too often, past their next check
    (or, never checked, past the first delay, while the shopper may still be on myPOS's page)."""
    now = fields.Datetime.now()
    return [
        ('provider_code', '=', 'mypos'),
        ('provider_id.state', '!=', 'disabled'),  # Disconnected: nothing to ask with.
        ('state', 'in', ('draft', 'pending')),
        ('mypos_check_count', '<', max_checks),
        '|',
        ('mypos_next_check', '<=', now),
        '&',
        ('mypos_next_check', '=', False),
        ('create_date', '<=', now - FIRST_CHECK_DELAY),
    ]


def run_scheduled_checks(model, batch_size=50):
    """Ask myPOS about draft and pending myPOS transactions whose check is due, oldest first.

    A bounded batch per run, whose calls overlap (`payment_mypos.status_check_concurrency` at a
    time); the run reports its progress, so that Odoo runs it again at once while due
    transactions remain. Each transaction's check is committed on its own; one whose check fails
    is pushed back to its next check instead of being retried at once. When myPOS gives no
    usable answer `OUTAGE_STREAK` times in a row, the run stops until the next scheduled one.
    Each transaction is checked again after a growing interval and at most
    `payment_mypos.status_check_max_attempts` times; purchases still unpaid past
    `payment_mypos.status_check_expiry_hours` are cancelled quietly. No call is launched past
    the run's time budget (see :func:`time_budget`). Calls Odoo lost the record of are first
    looked up (:func:`recover_lost_calls`).

    :param int batch_size: The maximum number of transactions checked per run.
    """
    budget = time_budget()
    deadline = budget and time.monotonic() + budget
    max_checks = get_int_param(model, MAX_CHECKS_PARAM, DEFAULT_MAX_CHECKS)
    expiry_hours = get_int_param(model, EXPIRY_HOURS_PARAM, DEFAULT_EXPIRY_HOURS)
    concurrency = min(max(get_int_param(model, CONCURRENCY_PARAM, DEFAULT_CONCURRENCY), 1), 16)
    recover_lost_calls(model, max_checks)
    domain = due_domain(model, max_checks)
    due_count = model.sudo().search_count(domain)
    txs = model.sudo().search(domain, order=DUE_ORDER, limit=batch_size)
    expiry_date = fields.Datetime.now() - timedelta(hours=expiry_hours)
    done = expired = streak = 0
    for start in range(0, len(txs), concurrency):
        if deadline and time.monotonic() > deadline:
            _logger.info("myPOS status check: time budget of %ss spent; the rest runs next", budget)
            break  # Reported as remaining: Odoo runs the check again at once.
        chunk = txs[start : start + concurrency]
        for tx, outcome, error in _check_chunk(chunk, concurrency):
            expired += _settle(tx, outcome, error, expiry_date, max_checks)
            done += 1
            outage = error is not None and error.kind in OUTAGE_FAILURES
            streak = streak + 1 if outage else 0
        if streak >= OUTAGE_STREAK:
            _logger.warning(
                "myPOS status check: no usable answer from myPOS %s times in a row (%s); the "
                "next checks wait for the next scheduled run",
                streak,
                error,
            )
            due_count = done  # Nothing left for now: Odoo does not run the check again at once.
            break
    model.env['ir.cron']._notify_progress(done=done, remaining=max(due_count - done, 0))
    if txs:
        _logger.info("myPOS status check: %s transaction(s) checked, %s expired", done, expired)


def time_budget():
    """Return how many seconds a run may launch calls: half the cron's real-time limit, less
    room for the calls still in flight (None: no limit)."""
    limit = config['limit_time_real_cron']
    if limit is None or limit < 0:
        limit = config['limit_time_real']
    if not limit or limit <= 0:
        return None
    return max(limit / 2 - 2 * ipc.const.REQUEST_TIMEOUT, ipc.const.REQUEST_TIMEOUT)


def recover_lost_calls(model, max_checks, limit=20):
    """Find the calls recorded before they were sent whose transaction Odoo does not have (the
    request that sent them was rolled back), ask myPOS how they ended, and book what moved.

    A call whose transaction exists is left to that transaction's own checks. One that myPOS
    made is rebuilt as a transaction, applied like any message of myPOS and post-processed, and
    a person is told; one that myPOS refused or never knew after `max_checks` checks is closed,
    the latter with a person told.
    """
    Outbox = model.env['payment.mypos.outbox'].sudo()
    for row in Outbox._mypos_fetch_due(fields.Datetime.now() - FIRST_CHECK_DELAY, limit):
        tx = model.sudo().search([('mypos_order_id', '=', row['order_id'])], limit=1)
        if tx:
            Outbox._mypos_update(row['id'], state='recorded', transaction_db_id=tx.id)
            continue
        try:
            with model.env.cr.savepoint():
                state = _recover_call(model, row)
        except Exception:  # noqa: BLE001 - one broken row must not stop the others.
            _logger.exception("myPOS: recovering the lost call %s failed", row['order_id'])
            state = None
        if state in ('recovered', 'void'):
            continue
        count = row['check_count'] + 1
        if count >= max_checks:
            message = model.env._(
                "myPOS: %(method)s %(order_id)s of %(amount)s %(currency)s was sent to myPOS for "
                "%(reference)s, but Odoo lost its record and myPOS could not tell how it ended. "
                "Look it up in myPOS's dashboard.",
                **_row_terms(row),
            )
            model._mypos_schedule_todo(_row_records(model, row), message)
            Outbox._mypos_update(row['id'], state='flagged', check_count=count)
        else:
            Outbox._mypos_update(row['id'], check_count=count, next_check=next_check_date(count))


def _row_terms(row):
    """What a message about a lost call names: its method, OrderID, amount and reference."""
    return {
        'method': row['method'],
        'order_id': row['order_id'],
        'amount': abs(row['amount']),
        'currency': row['currency_name'],
        'reference': row['reference'],
    }


def _row_records(model, row):
    """The documents a lost call paid (else its customer), to put a to-do on."""
    records = []
    for name, ids in (('account.move', row['invoice_db_ids']), ('sale.order', row['order_db_ids'])):
        if ids and name in model.env:
            found = model.env[name].sudo().browse(int(i) for i in ids.split(',')).exists()
            if found:
                records.append(found)
    return records or model.env['res.partner'].sudo().browse(row['partner_db_id']).exists()


def _recover_call(model, row):
    """Ask myPOS about a lost call and book it if it moved money.

    :return: 'recovered', 'void' (myPOS refused or reversed it), or None (no answer yet).
    """
    Outbox = model.env['payment.mypos.outbox'].sudo()
    provider = model.env['payment.provider'].sudo().browse(row['provider_db_id']).exists()
    if not provider or provider.code != 'mypos' or provider.state == 'disabled':
        return None
    params = [('OrderID', row['order_id'])]
    try:
        answer = provider._mypos_make_request(ipc.const.TXN_STATUS_METHOD, params)
        if not answer.nested:
            return None
        data = ipc.read_form(answer.nested).verify(provider._mypos_get_credentials().certificate)
    except ipc.IPCError as error:
        _logger.info("myPOS: no usable status of the lost call %s (%s)", row['order_id'], error)
        return None
    refund = row['method'] == ipc.const.REFUND_METHOD
    paid = (
        (ipc.const.REFUND_METHOD,)
        if refund
        else (
            ipc.const.TOKEN_PURCHASE_METHOD,
            ipc.const.NOTIFY_METHODS['done'],
        )
    )
    if data.order_id != row['order_id']:
        return None
    if data.method not in paid:
        Outbox._mypos_update(row['id'], state='void')
        return 'void'
    tx = _rebuild_transaction(model, row)
    compat.process_message(tx, data)
    if tx.state != 'done':
        return None  # Refused by our checks (amount, currency): a person looks at it below.
    model.env.ref('payment.cron_post_process_payment_tx')._trigger()
    tx._mypos_tell_person(
        model.env._(
            "myPOS: %(method)s %(order_id)s of %(amount)s %(currency)s moved money, but Odoo "
            "had lost its record (the request that sent it failed afterwards). It was found by "
            "the status check and booked as %(reference)s; check the documents it pays.",
            **dict(_row_terms(row), reference=tx.reference),
        )
    )
    Outbox._mypos_update(row['id'], state='recovered', transaction_db_id=tx.id)
    return 'recovered'


def _rebuild_transaction(model, row):
    """Create again the transaction of a lost call, from what was recorded before sending it."""
    Tx = model.sudo()
    if row['method'] == ipc.const.REFUND_METHOD:
        source = Tx.browse(row['source_db_id'])
        return source._create_child_transaction(
            -row['amount'], is_refund=True, mypos_order_id=row['order_id']
        )
    token = (
        model.env['payment.token'].sudo().browse(row['token_db_id']).with_context(active_test=False)
    )
    provider = model.env['payment.provider'].sudo().browse(row['provider_db_id'])
    values = {
        'provider_id': provider.id,
        'payment_method_id': token.payment_method_id.id,
        'reference': Tx._compute_reference(provider.code, prefix=row['reference']),
        'amount': row['amount'],
        'currency_id': model.env['res.currency'].search([('name', '=', row['currency_name'])]).id,
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
            comodel = model.env[Tx._fields[name].comodel_name].sudo()
            values[name] = [
                Command.set(comodel.browse(int(i) for i in ids.split(',')).exists().ids)
            ]
    return Tx.create(values)


def _check_chunk(txs, concurrency):
    """Check a few transactions, their calls overlapping: (tx, outcome, failure) for each.

    The calls are built, logged and applied here, on the cron's cursor; only the HTTP exchanges
    run in other threads, and they touch no record.
    """
    with_order = txs.filtered('mypos_order_id')
    calls = [start_call(tx) for tx in with_order]
    outcomes = ipc.transport.send_all(calls, concurrency)
    sent = dict(zip(with_order, zip(calls, outcomes, strict=True), strict=True))
    for tx in txs:
        if tx not in sent:
            yield tx, 'unknown', None  # The shopper never reached myPOS.
            continue
        call, (answer, error) = sent[tx]
        yield tx, _apply_safely(tx, call, answer, error), error


def _apply_safely(tx, call, answer, error):
    """Apply an answer in a savepoint; a failure is logged and reported as None."""
    try:
        with tx.env.cr.savepoint():
            return apply_answer(tx, call, answer, error)
    except Exception:  # noqa: BLE001 - one broken transaction must not stop the others.
        _logger.exception("myPOS status check of %s failed", tx.reference)
        return None


def _settle(tx, outcome, error, expiry_date, max_checks):
    """Record a check and commit it on its own; a failed one is pushed back to its next check.

    :return: Whether the transaction was expired.
    :rtype: bool
    """
    testing = compat.in_test()
    try:
        with tx.env.cr.savepoint():
            if outcome is None:  # The check failed: pushed back, never retried at once.
                tx.mypos_check_count += 1
                tx.mypos_last_check = fields.Datetime.now()
                tx._mypos_schedule_check()
                expired = False
            else:
                expired = after_scheduled_check(tx, outcome, expiry_date, max_checks)
    except psycopg2.Error:  # A concurrent update of this transaction: it is checked next time.
        _logger.info("myPOS status check of %s: changed meanwhile", tx.reference)
        expired = False
    if not testing:
        # Each transaction's check is kept even if a later one fails (the cron runs on its own
        # cursor; myPOS has already answered for this one).
        tx.env.cr.commit()  # pylint: disable=invalid-commit
    return expired
