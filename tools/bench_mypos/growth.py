"""The growth row: the status check's search, the webhook's transaction lookup and the webhook's
latency over HTTP with 10,000 and with 1,000,000 myPOS transactions in the table, and the ratio
between the two sizes."""

import http.client
import random
import statistics
import time

import psycopg2

from .console import die, log
from .dataset import notification_bodies
from .odoo_server import OdooServer

GROWTH_PREFIX = 'BENCH-GROWTH-'
WEBHOOK_CALLS = 200  # Open transactions paid through the webhook at each size.


def bench_growth(args, port, private_key, certificate, sid):
    """Fill the table with finished myPOS transactions (SQL, not the ORM) up to each size and
    time, in-process, the two searches whose cost could grow with it; then pay open transactions
    through the webhook of a running Odoo server, one request at a time.

    :return: The figures, or None when `--growth 0`.
    :rtype: dict
    """
    if not args.growth:
        return None
    import odoo  # Configured by prepare_database, earlier in this process.
    from odoo.modules.registry import Registry

    from odoo.addons.payment_mypos import status_check

    sizes = (10_000, args.growth)
    rows = []
    with Registry(args.db).cursor() as cr:
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
        provider = env.ref('payment_mypos.payment_provider_mypos')
        # The backlog row pointed the provider at the emulator: back to the bench's key.
        provider.write({'mypos_public_certificate': certificate})
        cr.commit()
        txs = env['payment.transaction']
        try:
            for size in sizes:
                size = _fill(env, provider, size)
                webhook_ms, paid = _webhook_latencies(args, env, provider, port, private_key, sid)
                order_ids = _sample_order_ids(env, provider, 200)
                domain = status_check.due_domain(txs, status_check.DEFAULT_MAX_CHECKS)

                def cron_search(domain=domain):
                    txs.sudo().search_count(domain)
                    return txs.sudo().search(domain, order=status_check.DUE_ORDER, limit=50).ids

                def webhook_lookup(order_ids=order_ids):
                    order_id = random.choice(order_ids)
                    domain = [('mypos_order_id', 'in', [order_id]), ('provider_code', '=', 'mypos')]
                    return txs.search(domain).ids

                rows.append(
                    {
                        'size': size,
                        'cron_ms': _median_ms(cron_search, 30),
                        'lookup_ms': _median_ms(webhook_lookup, 300),
                        'webhook_ms': statistics.median(webhook_ms),
                        'paid': paid,
                    }
                )
                log(
                    f"  growth: {size} myPOS transactions: status-check search "
                    f"{rows[-1]['cron_ms']:.2f} ms, webhook lookup {rows[-1]['lookup_ms']:.3f} ms, "
                    f"webhook p50 {rows[-1]['webhook_ms']:.1f} ms ({paid} of {WEBHOOK_CALLS} paid)"
                )
        finally:
            _drop(cr)
    small, large = rows
    return {
        'rows': rows,
        'cron_ratio': large['cron_ms'] / small['cron_ms'],
        'lookup_ratio': large['lookup_ms'] / small['lookup_ms'],
        'webhook_ratio': large['webhook_ms'] / small['webhook_ms'],
        'webhook_calls': WEBHOOK_CALLS,
    }


def _webhook_latencies(args, env, provider, port, private_key, sid):
    """Pay `WEBHOOK_CALLS` new open transactions with signed notifications, one POST at a time,
    to an Odoo server started for it: each request's milliseconds, and how many were paid."""
    cr = env.cr
    tag = f'{GROWTH_PREFIX}OPEN-{int(time.time() * 1000)}-'
    card = env.ref('payment.payment_method_card')
    partner = env['res.partner'].search([('ref', '=', 'mypos-bench')], limit=1)
    cr.execute(
        """
        INSERT INTO payment_transaction (
            provider_id, payment_method_id, currency_id, partner_id, company_id, reference,
            state, operation, amount, mypos_order_id, mypos_next_check, create_date, write_date)
        SELECT %(provider)s, %(card)s, %(eur)s, %(partner)s, %(company)s, %(tag)s || n, 'draft',
               'online_redirect', 10 + n, replace(%(tag)s, '-', '_') || n, '2999-01-01', now(),
               now()
          FROM generate_series(1, %(count)s) AS n
        RETURNING id, mypos_order_id, amount
        """,
        {
            'provider': provider.id,
            'card': card.id,
            'eur': env.ref('base.EUR').id,
            'partner': partner.id,
            'company': provider.company_id.id,
            'tag': tag,
            'count': WEBHOOK_CALLS,
        },
    )
    opened = cr.fetchall()
    cr.execute("ANALYZE payment_transaction")
    cr.commit()
    bodies = notification_bodies(
        private_key,
        sid,
        [(tx_id, order_id, amount, 'EUR') for tx_id, order_id, amount in opened],
        tag.replace('-', '')[-8:],
    )
    server = OdooServer(args, port)
    server.start()
    timings = []
    try:
        connection = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
        for index, body in enumerate(bodies):
            started = time.perf_counter()
            connection.request(
                'POST',
                '/payment/mypos/webhook',
                body=body,
                headers={'Content-Type': 'application/x-www-form-urlencoded'},
            )
            response = connection.getresponse()
            answer = response.read()
            elapsed = (time.perf_counter() - started) * 1000
            if response.status != 200 or answer != b'OK':
                die(f"the webhook answered {response.status} {answer[:80]!r}; see {server.logfile}")
            if index >= 10:  # The first requests warm the workers' caches.
                timings.append(elapsed)
        connection.close()
    finally:
        server.stop()
    cr.execute(
        "SELECT count(*) FROM payment_transaction WHERE id IN %s AND state = 'done'",
        [tuple(tx_id for tx_id, _order_id, _amount in opened)],
    )
    return timings, cr.fetchone()[0]


def _fill(env, provider, size):
    """Add finished myPOS transactions until the provider has `size` of them (the bench's own
    open ones count); then ANALYZE. Return how many it has."""
    cr = env.cr
    cr.execute("SELECT count(*) FROM payment_transaction WHERE provider_id = %s", [provider.id])
    missing = size - cr.fetchone()[0]
    if missing > 0:
        card = env.ref('payment.payment_method_card')
        partner = env['res.partner'].search([('ref', '=', 'mypos-bench')], limit=1)
        cr.execute(
            """
            INSERT INTO payment_transaction (
                provider_id, payment_method_id, currency_id, partner_id, company_id, reference,
                state, operation, amount, mypos_order_id, provider_reference, is_post_processed,
                create_date, write_date)
            SELECT %(provider)s, %(card)s, %(eur)s, %(partner)s, %(company)s,
                   %(prefix)s || n, 'done', 'online_redirect', 10 + n %% 90,
                   'BENCH_GROWTH_' || n || '_' || %(run)s, (400000 + n)::text, TRUE,
                   now() - (n || ' seconds')::interval, now()
              FROM generate_series(1, %(missing)s) AS n
            """,
            {
                'provider': provider.id,
                'card': card.id,
                'eur': env.ref('base.EUR').id,
                'partner': partner.id,
                'company': provider.company_id.id,
                'prefix': f'{GROWTH_PREFIX}{size}-',
                'run': int(time.time()),
                'missing': missing,
            },
        )
    cr.execute("ANALYZE payment_transaction")
    cr.commit()
    cr.execute("SELECT count(*) FROM payment_transaction WHERE provider_id = %s", [provider.id])
    return cr.fetchone()[0]


def _drop(cr):
    """Delete the added rows. They have no dependents, so the foreign-key checks are skipped when
    the role may (a superuser): each one scans a referencing table, minutes for 1,000,000 rows."""
    cr.rollback()
    try:
        cr.execute("SET LOCAL session_replication_role = replica")
    except psycopg2.Error:
        cr.rollback()
    cr.execute("DELETE FROM payment_transaction WHERE reference LIKE %s", [f'{GROWTH_PREFIX}%'])
    cr.commit()


def _sample_order_ids(env, provider, count):
    env.cr.execute(
        "SELECT mypos_order_id FROM payment_transaction WHERE provider_id = %s"
        " AND mypos_order_id IS NOT NULL ORDER BY random() LIMIT %s",
        [provider.id, count],
    )
    return [row[0] for row in env.cr.fetchall()]


def _median_ms(function, repeat):
    function()  # Warm the caches.
    timings = []
    for _index in range(repeat):
        started = time.perf_counter()
        function()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)
