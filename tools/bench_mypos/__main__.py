"""The driver of tools/bench: benchmark payment_mypos against baselines of the same run."""

import argparse
import datetime
import json
import os
import re
import statistics
import time

from .backlog import bench_backlog, bench_outage
from .checkout import run_checkout
from .console import die, log
from .dataset import count_paid, install_or_update, notification_bodies, prepare_database
from .growth import bench_growth
from .machine import machine_info
from .odoo_server import OdooServer, free_port
from .protocol import bench_protocol, generate_key_pair
from .render import backlog_rows, document, fmt_ms, growth_rows, outage_rows, render, verdict
from .wrk import combine_slices, run_wrk, write_bodies

CONCURRENCY = (1, 8, 20)

TARGETS = {
    'throughput': 0.6,  # webhook req/s >= 0.6 x /web/health req/s at 20 clients
    'p99': 3.0,  # webhook p99 <= 3 x /web/health p99 at 20 clients
    'checkout': 1.2,  # myPOS /payment/transaction median <= 1.2 x payment_demo's
}


def parse_args():
    parser = argparse.ArgumentParser(
        prog='python -m bench_mypos', description=__doc__.split('\n')[0]
    )
    parser.add_argument('--config', required=True, help="Odoo configuration file")
    parser.add_argument('--db', required=True, help="the benchmark database")
    parser.add_argument(
        '--odoo-src', default='', help="Odoo source tree (odoo-bin); empty: python -m odoo"
    )
    parser.add_argument('--work-dir', required=True, help="where keys, bodies, scripts and logs go")
    parser.add_argument('--repo', required=True)
    parser.add_argument(
        '--module-source',
        default='working tree',
        help="which payment_mypos is measured, for the results",
    )
    parser.add_argument(
        '--command', default='tools/bench', help="the command line shown in the results"
    )
    parser.add_argument(
        '--open-transactions',
        type=int,
        default=12000,
        help="open (draft) myPOS transactions kept in the database [%(default)s]",
    )
    parser.add_argument(
        '--duration',
        type=float,
        default=12,
        help="seconds of each load level, per route [%(default)s]",
    )
    parser.add_argument(
        '--rounds',
        type=int,
        default=4,
        help="slices each load level is cut into, alternating /web/health and the webhook, so "
        "that a drift of the machine weighs on both alike [%(default)s]",
    )
    parser.add_argument(
        '--checkout-calls',
        type=int,
        default=60,
        help="/payment/transaction calls per provider [%(default)s]",
    )
    parser.add_argument(
        '--backlog',
        type=int,
        default=2000,
        help="payments whose notifications are lost, settled by the status check; 0 skips "
        "[%(default)s]",
    )
    parser.add_argument(
        '--backlog-latency',
        type=float,
        default=0.15,
        help="seconds the emulator takes to answer each status call [%(default)s]",
    )
    parser.add_argument(
        '--outage',
        type=int,
        default=500,
        help="payments whose notifications are lost while myPOS is unreachable for the first "
        "scheduled runs of the status check; 0 skips [%(default)s]",
    )
    parser.add_argument(
        '--growth',
        type=int,
        default=1_000_000,
        help="the large size of the growth row (myPOS transactions in the table, against "
        "10,000); 0 skips [%(default)s]",
    )
    parser.add_argument(
        '--quick',
        action='store_true',
        help="smoke run: 3 s load levels, 20 checkout calls, a backlog of 200, an outage of 100, "
        "growth to 100,000",
    )
    parser.add_argument('--no-doc', action='store_true', help="do not rewrite docs/BENCHMARKS.md")
    parser.add_argument(
        '--single-db',
        action='store_true',
        help="run Odoo without dbfilter (one database, named by db_name): Odoo then no longer "
        "lists the databases on a new PostgreSQL connection for every request without a session, "
        "which changes both routes' cost; prints only (implies --no-doc)",
    )
    parser.add_argument('--note', default='', help="a remark written under the results")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.checkout_calls, args.rounds = 3, 20, 3
        args.backlog = min(args.backlog, 200)
        args.outage = min(args.outage, 100)
        args.growth = min(args.growth, 100_000)
    args.rounds = max(1, min(args.rounds, int(args.duration)))
    if args.single_db:
        args.no_doc = True
    return args


def main():
    args = parse_args()
    os.makedirs(args.work_dir, exist_ok=True)
    started = time.monotonic()
    load_start = ' '.join(f'{x:.2f}' for x in os.getloadavg())
    date = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')

    install_or_update(args)
    port = free_port()
    private_key, certificate = generate_key_pair(1024)  # myPOS's certificates are 1024-bit
    key_file = os.path.join(args.work_dir, 'mypos-throwaway-key.pem')
    with open(key_file, 'w', encoding='ascii') as file:
        os.chmod(key_file, 0o600)
        file.write(private_key)
    log("Preparing the database (providers, open transactions)")
    context = prepare_database(args, f'http://127.0.0.1:{port}', certificate)
    machine = machine_info(args)

    # Bodies: a warm-up slice, then the rest, consumed in order by the load levels' slices:
    # every notification is sent once.
    if context['open_count'] < 200 + 500 * len(CONCURRENCY):
        die(f"too few open transactions ({context['open_count']}): raise --open-transactions")
    run_tag = datetime.datetime.now().strftime('%H%M%S')
    txs = context['open_txs']
    log(f"Signing {context['open_count']} notifications")
    bodies = notification_bodies(private_key, context['sid'], txs, run_tag)
    warmup_file = write_bodies(args, 'bodies-warmup.txt', bodies[:200])
    demo_bodies = [
        json.dumps(
            {
                'jsonrpc': '2.0',
                'method': 'call',
                'params': {'reference': reference, 'simulated_state': 'done'},
            }
        )
        for reference in context['open_demo']
    ]

    log("Protocol functions (in-process)")
    protocol, cache = bench_protocol()

    server = OdooServer(args, port)
    server.start()
    try:
        log("Warming up both workers")
        run_wrk(args, port, 'health', 4, 2)
        warm = run_wrk(args, port, 'webhook', 4, 3, warmup_file)
        if warm['bad'] or warm['errors']:
            die(f"the webhook refused warm-up notifications ({warm}); see {server.logfile}")
        run_checkout(port, context, 0)
        run_wrk(args, port, 'health', 20, 2)

        loads = []
        server_pid = server.process.pid
        slice_seconds = args.duration / args.rounds
        # The routes that pay transactions consume their bodies in order, each sent once.
        queues = {'webhook': [bodies, 200], 'demo': [demo_bodies, 0]}

        def run_slice(mode, clients, seconds):
            if mode not in queues:
                return run_wrk(args, port, mode, clients, seconds, '', server_pid)
            queue = queues[mode]
            bodies_file = write_bodies(args, f'bodies-{mode}.txt', queue[0][queue[1] :])
            run = run_wrk(args, port, mode, clients, seconds, bodies_file, server_pid)
            queue[1] += run['sent']
            if run['spare']:
                die(f"the open transactions for {mode} ran out at {clients} client(s)")
            return run

        demo_warm = run_slice('demo', 4, 2)
        if demo_warm['bad'] or demo_warm['errors']:
            die(f"payment_demo's route refused warm-up calls ({demo_warm}); see {server.logfile}")
        for clients in CONCURRENCY:
            # At 20 clients, Odoo's own demo notification route runs in the same slices too.
            routes = ['health', 'webhook'] + (['demo'] if clients == 20 else [])
            log(
                f"{clients} client(s): {', '.join(routes)} in turn, {args.rounds} x "
                f"{slice_seconds:g} s each"
            )
            slices = {route: [] for route in routes}
            for round_index in range(args.rounds):
                # Rotate which route goes first, so that none always follows another.
                shift = round_index % len(routes)
                for mode in routes[shift:] + routes[:shift]:
                    slices[mode].append(run_slice(mode, clients, slice_seconds))
            combined = {route: combine_slices(slices[route]) for route in routes}
            health, hook = combined['health'], combined['webhook']
            round_ratios = [
                hook_slice['rps'] / health_slice['rps']
                for hook_slice, health_slice in zip(
                    slices['webhook'], slices['health'], strict=True
                )
            ]
            loads.append(dict(combined, clients=clients, round_ratios=round_ratios))
            log(
                f"  health {health['rps']:.0f} req/s p99 {fmt_ms(health['p99_us'])} ms; "
                f"webhook {hook['rps']:.0f} req/s p99 {fmt_ms(hook['p99_us'])} ms, "
                f"{hook['errors']} error(s); ratio per round "
                + ', '.join(f'{ratio:.2f}' for ratio in round_ratios)
                + (
                    f"; payment_demo {combined['demo']['rps']:.0f} req/s"
                    if 'demo' in combined
                    else ''
                )
            )

        # Not a target: Odoo's cheapest route that goes through a database (registry, cursor,
        # ir.http routing), to show how much of the gap to /web/health is Odoo's own.
        floor = run_wrk(args, port, 'floor', 20, args.duration)
        log(f"  DB-route floor {floor['rps']:.0f} req/s p99 {fmt_ms(floor['p99_us'])} ms")

        log(f"Checkout: {args.checkout_calls} /payment/transaction calls per provider")
        checkout, checkout_order = run_checkout(port, context, args.checkout_calls)
        time.sleep(0.5)
        requests_log = server.request_log()
    finally:
        server.stop()
    backlog = bench_backlog(args)
    outage = bench_outage(args)
    growth = bench_growth(args, port, private_key, certificate, context['sid'])

    # Query counts. The checkout's calls are sequential: the n-th logged call is the n-th made,
    # which alternated mypos/demo (demo first on odd rounds).
    webhook_queries = [
        q
        for method, path, status, q, *_times in requests_log
        if path == '/payment/mypos/webhook' and status == 200
    ]
    health_queries = [
        q for method, path, status, q, *_times in requests_log if path == '/web/health'
    ]
    checkout_calls = [
        q for method, path, status, q, *_times in requests_log if path == '/payment/transaction'
    ]
    checkout_queries = {'mypos': [], 'demo': []}
    if len(checkout_calls) >= len(checkout_order):
        # Skip the warm-up calls (5 rounds), which fill the caches.
        recent = checkout_calls[-len(checkout_order) :]
        for provider, count in list(zip(checkout_order, recent, strict=True))[10:]:
            checkout_queries[provider].append(count)

    ok_answers = sum(
        1
        for method, path, status, q, *_times in requests_log
        if path == '/payment/mypos/webhook' and status == 200
    )
    paid = count_paid(args, context, [tx[0] for tx in txs])

    at20 = next(level for level in loads if level['clients'] == 20)
    rps_ratio = at20['webhook']['rps'] / at20['health']['rps']
    p99_ratio = at20['webhook']['p99_us'] / at20['health']['p99_us']
    checkout_ratio = statistics.median(checkout['mypos']) / statistics.median(checkout['demo'])
    errors = sum(level['webhook']['errors'] for level in loads)
    test_bounds = {}
    test_file = os.path.join(args.repo, 'payment_mypos', 'tests', 'test_performance.py')
    if os.path.exists(test_file):
        with open(test_file, encoding='utf-8') as file:
            test_bounds = dict(re.findall(r'^(\w+_MAX_QUERIES) = (\d+)', file.read(), re.M))
    webhook_max = max(webhook_queries) if webhook_queries else None
    targets = [
        (
            'Webhook throughput at 20 clients, ratio to /web/health',
            f'{rps_ratio:.3f}',
            f'>= {TARGETS["throughput"]}',
            verdict(rps_ratio >= TARGETS['throughput']),
        ),
        (
            'Webhook p99 at 20 clients, ratio to /web/health',
            f'{p99_ratio:.1f}',
            f'<= {TARGETS["p99"]:g}',
            verdict(p99_ratio <= TARGETS['p99']),
        ),
        (
            'Redirect form (/payment/transaction) median, ratio to payment_demo',
            f'{checkout_ratio:.2f}',
            f'<= {TARGETS["checkout"]}',
            verdict(checkout_ratio <= TARGETS['checkout']),
        ),
        (
            'Keys parsed once per process, by content (parses for 100 verifications; after a '
            'certificate change)',
            f"{cache['misses_first']}; {cache['misses_second']}",
            '1; 1',
            verdict(
                cache['misses_first'] == 1
                and cache['misses_second'] == 1
                and cache['second_rejects_old_signature']
            ),
        ),
        ('Webhook answers other than OK (all levels)', str(errors), '0', verdict(errors == 0)),
        (
            'SQL queries per webhook call, per redirect-form render (server log, max in this '
            'run; the test counts on its test cursor)',
            f"{webhook_max}; {max(checkout_queries['mypos'], default=None)}",
            f"test bounds {test_bounds.get('WEBHOOK_MAX_QUERIES', '?')}; "
            f"{test_bounds.get('REDIRECT_FORM_MAX_QUERIES', '?')}",
            'asserted by payment_mypos/tests/test_performance.py',
        ),
    ]
    server_times = []
    for name, path in (
        ('GET /web/health', '/web/health'),
        ('POST /payment/mypos/webhook', '/payment/mypos/webhook'),
        ('POST /payment/transaction (both providers)', '/payment/transaction'),
    ):
        rows = [(sql, rest) for _m, p, _s, _q, sql, rest in requests_log if p == path]
        if rows:
            server_times.append(
                (
                    name,
                    len(rows),
                    statistics.median(r[0] for r in rows),
                    statistics.median(r[1] for r in rows),
                )
            )
    results = {
        'server_times': server_times,
        'date': date,
        'machine': machine,
        'load_start': load_start,
        'open_before': context['open_count'],
        'loads': loads,
        'checkout': checkout,
        'floor': floor,
        'cpus': os.cpu_count() or 1,
        'protocol': protocol,
        'cache': cache,
        'targets': targets,
        'paid': paid,
        'ok_answers': ok_answers,
        'queries': [
            ('GET /web/health', health_queries),
            ('POST /payment/mypos/webhook (200 OK)', webhook_queries),
            ('POST /payment/transaction, myPOS (redirect form)', checkout_queries['mypos']),
            ('POST /payment/transaction, payment_demo', checkout_queries['demo']),
        ],
    }
    table = render(results, args) + backlog_rows(backlog) + outage_rows(outage)
    table += growth_rows(growth)
    elapsed = time.monotonic() - started
    table += f"\nThe run took {elapsed:.0f} s.\n"
    print(table)
    if not args.no_doc:
        path = os.path.join(args.repo, 'docs', 'BENCHMARKS.md')
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'w', encoding='utf-8') as file:
            file.write(document(table))
        log(f"Results written to {path}")


if __name__ == '__main__':
    main()
