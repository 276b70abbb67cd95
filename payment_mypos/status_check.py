# Part of payment_mypos. License LGPL-3.
"""The status check (`IPCGetTxnStatus`, API §4.8): what settles a transaction whose notification
or answer never came, on a growing interval, for a bounded number of times."""

import logging
from datetime import timedelta

import psycopg2

from odoo import fields
from odoo.exceptions import ValidationError

from . import compat, ipc, utils

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
        if tx.operation in ('online_token', 'offline'):  # A saved card's charge (API §9).
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
    if tx.operation != 'refund' and outcome == 'unknown' and tx.create_date <= expiry_date:
        expire_quietly(tx)
        return True
    if tx.mypos_check_count >= max_checks:
        tx.mypos_next_check = False
        if tx.operation == 'refund':
            tx.state_message = tx.env._(
                "myPOS: myPOS did not confirm this refund after %s checks; automatic checks "
                "stopped. Look the refund up in myPOS's dashboard before refunding again.",
                tx.mypos_check_count,
            )
        return False
    tx._mypos_schedule_check()
    return False


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
    `payment_mypos.status_check_expiry_hours` are cancelled quietly.

    :param int batch_size: The maximum number of transactions checked per run.
    """
    max_checks = get_int_param(model, MAX_CHECKS_PARAM, DEFAULT_MAX_CHECKS)
    expiry_hours = get_int_param(model, EXPIRY_HOURS_PARAM, DEFAULT_EXPIRY_HOURS)
    concurrency = min(max(get_int_param(model, CONCURRENCY_PARAM, DEFAULT_CONCURRENCY), 1), 16)
    domain = due_domain(model, max_checks)
    due_count = model.sudo().search_count(domain)
    txs = model.sudo().search(domain, order=DUE_ORDER, limit=batch_size)
    expiry_date = fields.Datetime.now() - timedelta(hours=expiry_hours)
    done = expired = streak = 0
    for start in range(0, len(txs), concurrency):
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
