"""The backlog row: payments made on myPOS whose notifications were lost, settled by the status
check; its overlapped calls against one call at a time, measured in the same run."""

import tempfile
import time

from .console import log

REFERENCE_PREFIX = 'BENCH-BACKLOG-'


def bench_backlog(args):
    """Pay `args.backlog` transactions on the emulator with the notifications lost, then run the
    status check as Odoo's cron runner does (again at once while work remains) until none is
    due; the same for a fifth as many, one call at a time (the baseline).

    :return: The figures, or None when `--backlog 0`.
    :rtype: dict
    """
    from mypos_emulator import Emulator  # tools/bench puts the repository on PYTHONPATH.

    count, latency = args.backlog, args.backlog_latency
    if not count:
        return None
    log(f"Backlog: {count} payments whose notifications were lost")

    import odoo  # Configured by prepare_database, earlier in this process.
    from odoo.modules.registry import Registry

    registry = Registry(args.db)
    results = {}
    for label, size, concurrency in (
        ('overlapped', count, 4),
        ('one at a time', max(count // 5, 20), 1),
    ):
        # A fresh emulator per run: its count of concurrent calls starts from zero.
        with tempfile.TemporaryDirectory(prefix='mypos-bench-emulator-') as state_dir:
            emulator = Emulator(host='127.0.0.1', port=0, state_dir=state_dir).start()
            try:
                with registry.cursor() as cr:
                    env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
                    results[label] = _run(env, emulator, size, concurrency, latency)
            finally:
                emulator.stop()
        run = results[label]
        log(
            f"  backlog, {label}: {size} payments settled in {run['seconds']:.1f} s, "
            f"{run['calls']} status calls, {run['wrong']} wrong state(s), {run['runs']} run(s)"
        )
    odoo.sql_db.close_all()
    fast, slow = results['overlapped'], results['one at a time']
    return {
        'latency_ms': round(latency * 1000),
        'runs': results,
        'speedup': (slow['seconds'] / slow['count']) / (fast['seconds'] / fast['count']),
    }


def _run(env, emulator, count, concurrency, latency):
    icp = env['ir.config_parameter']
    icp.set_param('payment_mypos.sandbox_url', emulator.url)
    icp.set_param('payment_mypos.status_check_concurrency', str(concurrency))
    provider = env.ref('payment_mypos.payment_provider_mypos')
    provider.write({'state': 'test', 'mypos_public_certificate': emulator.certificate_pem})
    _clear(env)
    _park_open_transactions(env, provider, True)
    txs = _lost_payments(env, emulator, provider, count)
    emulator.set_faults(api_timeout=latency)
    cron = env.ref('payment_mypos.cron_mypos_check_status')
    started, runs, remaining = time.monotonic(), 0, 1
    while remaining and runs < 10 * count:
        progress = env['ir.cron.progress'].create({'cron_id': cron.id})
        env.cr.commit()
        env['payment.transaction'].with_context(
            ir_cron_progress_id=progress.id
        )._cron_mypos_check_status()
        env.cr.commit()
        remaining, runs = progress.remaining, runs + 1
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
    emulator.reset_faults()
    _clear(env)
    _park_open_transactions(env, provider, False)
    return result


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
