"""The backlog row: payments made on myPOS whose notifications were lost, settled by the status
check; its overlapped calls against one call at a time, measured in the same run."""

import socket
import tempfile
import time
from datetime import timedelta

from .console import log

REFERENCE_PREFIX = 'BENCH-BACKLOG-'
OUTAGE_DOWN_RUNS = 3  # Scheduled runs of the status check during which myPOS is unreachable.


def bench_backlog(args):
    """Pay `args.backlog` transactions on the emulator with the notifications lost, then run the
    status check as Odoo's cron runner does (again at once while work remains) until none is
    due; the same for a fifth as many, one call at a time (the baseline).

    :return: The figures, or None when `--backlog 0`.
    :rtype: dict
    """
    count, latency = args.backlog, args.backlog_latency
    if not count:
        return None
    log(f"Backlog: {count} payments whose notifications were lost")
    results = {}
    for label, size, concurrency in (
        ('overlapped', count, 4),
        ('one at a time', max(count // 5, 20), 1),
    ):
        # A fresh emulator per run: its count of concurrent calls starts from zero.
        results[label] = _on_fresh_emulator(args.db, _run, size, concurrency, latency)
        run = results[label]
        log(
            f"  backlog, {label}: {size} payments settled in {run['seconds']:.1f} s, "
            f"{run['calls']} status calls, {run['wrong']} wrong state(s), {run['runs']} run(s)"
        )
    fast, slow = results['overlapped'], results['one at a time']
    return {
        'latency_ms': round(latency * 1000),
        'runs': results,
        'speedup': (slow['seconds'] / slow['count']) / (fast['seconds'] / fast['count']),
    }


def _on_fresh_emulator(db, function, *args):
    """Call `function(env, emulator, *args)` with a new emulator and a cursor of its own; return
    what it returns."""
    import odoo  # Configured by prepare_database, earlier in this process.
    from odoo.modules.registry import Registry

    from mypos_emulator import Emulator  # tools/bench puts the repository on PYTHONPATH.

    with tempfile.TemporaryDirectory(prefix='mypos-bench-emulator-') as state_dir:
        emulator = Emulator(host='127.0.0.1', port=0, state_dir=state_dir).start()
        try:
            with Registry(db).cursor() as cr:
                env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
                return function(env, emulator, *args)
        finally:
            emulator.stop()
            odoo.sql_db.close_all()


def _start_backlog(env, emulator, count, concurrency, latency):
    """The provider pointed at the emulator, the bench's other open transactions parked, and
    `count` payments whose notifications were lost; each status call answered after `latency`.

    :return: The provider and the transactions.
    """
    icp = env['ir.config_parameter']
    icp.set_param('payment_mypos.sandbox_url', emulator.url)
    icp.set_param('payment_mypos.status_check_concurrency', str(concurrency))
    provider = env.ref('payment_mypos.payment_provider_mypos')
    provider.write({'state': 'test', 'mypos_public_certificate': emulator.certificate_pem})
    _clear(env)
    _park_open_transactions(env, provider, True)
    txs = _lost_payments(env, emulator, provider, count)
    emulator.set_faults(api_timeout=latency)
    return provider, txs


def _end_backlog(env, emulator, provider):
    """Undo `_start_backlog`: the faults, the endpoint, the backlog and the parked transactions."""
    emulator.reset_faults()
    env['ir.config_parameter'].set_param('payment_mypos.sandbox_url', emulator.url)
    _clear(env)
    _park_open_transactions(env, provider, False)


def _run(env, emulator, count, concurrency, latency):
    provider, txs = _start_backlog(env, emulator, count, concurrency, latency)
    started = time.monotonic()
    runs = _run_until_idle(env, 10 * count)
    seconds = time.monotonic() - started
    env.invalidate_all()
    calls = [call for call in emulator.api_calls() if call['method'] == 'IPCGetTxnStatus']
    result = {
        'count': count,
        'concurrency': concurrency,
        'seconds': seconds,
        'runs': runs,
        'calls': len(calls),
        'one_call_each': sorted(c['order_id'] for c in calls)
        == sorted(txs.mapped('mypos_order_id')),
        'wrong': len(txs.filtered(lambda tx: tx.state != 'done')),
        'max_concurrent_calls': emulator.max_concurrent_api_calls(),
    }
    _end_backlog(env, emulator, provider)
    return result


def _run_until_idle(env, limit):
    """Run the status check as Odoo's cron runner does: again at once while it reports due
    transactions (at most `limit` times). Return the number of runs."""
    cron = env.ref('payment_mypos.cron_mypos_check_status')
    runs, remaining = 0, 1
    while remaining and runs < limit:
        progress = env['ir.cron.progress'].create({'cron_id': cron.id})
        env.cr.commit()
        env['payment.transaction'].with_context(
            ir_cron_progress_id=progress.id,
            cron_id=cron.id,  # As the cron runner does.
        )._cron_mypos_check_status()
        env.cr.commit()
        remaining, runs = progress.remaining, runs + 1
    return runs


def bench_outage(args):
    """Pay `args.outage` transactions on the emulator with the notifications lost, then run the
    status check's scheduled runs with myPOS unreachable for the first `OUTAGE_DOWN_RUNS` of
    them, until all are settled.

    :return: The figures, or None when `--outage 0`.
    :rtype: dict
    """
    if not args.outage:
        return None
    log(f"Outage: {args.outage} payments whose notifications were lost, myPOS down at first")
    result = _on_fresh_emulator(args.db, _outage, args.outage, args.backlog_latency)
    for row in result['rows']:
        log(
            f"  outage, scheduled run {row['index']} (myPOS {'down' if row['down'] else 'up'}): "
            f"{row['runs']} run(s), {row['calls']} status call(s), {row['settled']} settled"
        )
    return result


def _outage(env, emulator, count, latency):
    provider, txs = _start_backlog(env, emulator, count, 4, latency)
    icp = env['ir.config_parameter']
    cron = env.ref('payment_mypos.cron_mypos_check_status')
    interval = timedelta(**{cron.interval_type: cron.interval_number})
    # The emulator's address with a port nothing listens on: refused, as a host that is down.
    down_url = emulator.url.replace(f':{emulator.port}', f':{_closed_port()}', 1)
    rows, settled, calls_so_far = [], 0, 0
    started = time.monotonic()
    for index in range(1, OUTAGE_DOWN_RUNS + 20):
        down = index <= OUTAGE_DOWN_RUNS
        icp.set_param('payment_mypos.sandbox_url', down_url if down else emulator.url)
        env.cr.commit()
        runs = _run_until_idle(env, 10 * count)
        calls = _status_calls(env, txs)
        settled = _count_done(env, txs)
        rows.append(
            {
                'index': index,
                'down': down,
                'runs': runs,
                'calls': calls - calls_so_far,
                'settled': settled,
                'seconds': time.monotonic() - started,
            }
        )
        calls_so_far = calls
        if settled == count:
            break
        # The next scheduled run comes one interval later: the due dates move back by one.
        env.cr.execute(
            "UPDATE payment_transaction SET mypos_next_check = mypos_next_check - %s"
            " WHERE id IN %s AND mypos_next_check IS NOT NULL",
            [interval, tuple(txs.ids)],
        )
        env.cr.commit()
    env.invalidate_all()
    emulator_calls = [c for c in emulator.api_calls() if c['method'] == 'IPCGetTxnStatus']
    result = {
        'count': count,
        'latency_ms': round(latency * 1000),
        'interval_minutes': round(interval.total_seconds() / 60),
        'down_runs': OUTAGE_DOWN_RUNS,
        'rows': rows,
        'calls_down': sum(row['calls'] for row in rows if row['down']),
        'calls_up': len(emulator_calls),
        'settled': settled,
        'settled_after': len(rows) - OUTAGE_DOWN_RUNS,
        'wrong': len(txs.filtered(lambda tx: tx.state != 'done')),
    }
    _end_backlog(env, emulator, provider)
    return result


def _closed_port():
    """A loopback port nothing listens on: connections to it are refused, as to a host down."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _status_calls(env, txs):
    """The status calls sent about `txs` so far, as the myPOS log recorded them."""
    env.cr.execute(
        "SELECT count(*) FROM payment_mypos_log WHERE direction = 'out'"
        " AND method = 'IPCGetTxnStatus' AND transaction_id IN %s",
        [tuple(txs.ids)],
    )
    return env.cr.fetchone()[0]


def _count_done(env, txs):
    env.cr.execute(
        "SELECT count(*) FROM payment_transaction WHERE id IN %s AND state = 'done'",
        [tuple(txs.ids)],
    )
    return env.cr.fetchone()[0]


def _lost_payments(env, emulator, provider, count):
    """`count` transactions paid on the emulator, notifications dropped, older than the first
    delay of the status check."""
    partner = env['res.partner'].search([('ref', '=', 'mypos-bench')], limit=1)
    card = env.ref('payment.payment_method_card')
    eur = env.ref('base.EUR')
    txs = env['payment.transaction'].create(
        [
            {
                'reference': f'{REFERENCE_PREFIX}{index}-{int(time.time())}',
                'provider_id': provider.id,
                'payment_method_id': card.id,
                'amount': 10 + index % 90,
                'currency_id': eur.id,
                'partner_id': partner.id,
                'operation': 'online_redirect',
            }
            for index in range(count)
        ]
    )
    forms = [tx._get_specific_rendering_values(None)['fields'] for tx in txs]
    env.cr.execute(
        "UPDATE payment_transaction SET create_date = now() at time zone 'UTC' - interval '1 hour'"
        " WHERE id IN %s",
        [tuple(txs.ids)],
    )
    env.cr.commit()
    emulator.set_faults(notify_drop=True)
    for fields in forms:
        emulator.pay(fields)
    emulator.reset_faults()
    env.invalidate_all()
    return txs


PARKED = '2999-01-01 00:00:00'


def _park_open_transactions(env, provider, park):
    """Keep the bench's other open transactions (the webhook's) out of the status check."""
    if park:
        env.cr.execute(
            "UPDATE payment_transaction SET mypos_next_check = %s WHERE provider_id = %s"
            " AND state IN ('draft', 'pending') AND mypos_next_check IS NULL",
            [PARKED, provider.id],
        )
    else:
        env.cr.execute(
            "UPDATE payment_transaction SET mypos_next_check = NULL WHERE mypos_next_check = %s",
            [PARKED],
        )
    env.cr.commit()


def _clear(env):
    """Take the backlog's transactions out of any later status check."""
    env.cr.execute(
        "UPDATE payment_transaction SET state = 'cancel', mypos_next_check = NULL"
        " WHERE reference LIKE %s AND state IN ('draft', 'pending')",
        [f'{REFERENCE_PREFIX}%'],
    )
    env.cr.commit()
