"""The driver of tools/bench: the myPOS webhook's throughput against /web/health, measured in the
same run on the same Odoo, for the working tree and (--compare REF) for a commit of it."""

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import time

from .server import (
    OdooServer,
    copy_database,
    die,
    install_or_update,
    log,
    prepare_database,
    psql,
    run_checkout,
)

TARGETS = {
    'throughput': 0.6,  # webhook req/s >= 0.6 x /web/health req/s at 20 clients
    'p99': 3.0,  # webhook p99 <= 3 x /web/health p99 at 20 clients
    'checkout': 1.2,  # myPOS /payment/transaction median <= 1.2 x payment_demo's
}
DOC_MARKER = '## Latest results'


def parse_args():
    parser = argparse.ArgumentParser(prog='tools/bench', description=__doc__.split('\n')[0])
    add = parser.add_argument
    add('--config', required=True, help="Odoo configuration file (working tree)")
    add('--db', required=True, help="the benchmark database")
    add('--odoo-src', default='', help="Odoo source tree (odoo-bin); empty: python -m odoo")
    add('--work-dir', required=True, help="where bodies, scripts and logs go")
    add('--repo', required=True)
    add('--ref-label', default='', help="REF, as given to --compare (empty: no comparison)")
    add('--ref-config', default='', help="Odoo configuration file of REF's snapshot")
    add('--ref-db', default='', help="the database REF's server runs on (a copy of --db)")
    add('--command', default='tools/bench', help="the command line shown in the results")
    add('--open-transactions', type=int, default=12000, help="open transactions [%(default)s]")
    add('--duration', type=float, default=12, help="seconds per route and level [%(default)s]")
    add('--rounds', type=int, default=4, help="alternating slices per level [%(default)s]")
    add('--checkout-calls', type=int, default=40, help="per provider and server [%(default)s]")
    add('--quick', action='store_true', help="smoke run: 1 and 20 clients, 4 s, 2 slices")
    add('--no-doc', action='store_true', help="do not rewrite docs/BENCHMARKS.md")
    add('--note', default='', help="a remark written under the results")
    args = parser.parse_args()
    args.levels = (1, 8, 20)
    if args.quick:
        args.levels, args.duration, args.rounds, args.checkout_calls = (1, 20), 4, 2, 10
    return args


def combine(slices):
    """One figure from a level's slices: total requests over total time; each latency
    percentile, the median of the slices' own (wrk reports them per run)."""
    seconds = sum(run['duration_us'] for run in slices) / 1e6
    return {
        'requests': sum(run['requests'] for run in slices),
        'errors': sum(run['errors'] for run in slices),
        'rps': sum(run['requests'] for run in slices) / seconds,
        'p50': statistics.median(run['p50_us'] for run in slices) / 1000,
        'p99': statistics.median(run['p99_us'] for run in slices) / 1000,
        'slices': [run['requests'] / (run['duration_us'] / 1e6) for run in slices],
    }


def measure(args, servers):
    """Each load level cut into slices that alternate /web/health and the webhook of each
    server, in a changing order, so that a drift of this shared machine weighs on all alike."""
    tree = servers['tree']
    routes = [('health', tree, 'health')] + [(name, s, 'webhook') for name, s in servers.items()]
    offsets = dict.fromkeys(servers, 0)  # each server's next unused notification
    for name, server in servers.items():  # Warm-up: every worker has served each route.
        server.wrk(args, 'health', 4, 2)
        offsets[name] = server.wrk(args, 'webhook', 4, 3)['sent']
        server.wait_idle()
    levels = []
    for clients in args.levels:
        seconds = args.duration / args.rounds
        log(
            f"{clients} client(s): {', '.join(r[0] for r in routes)}, {args.rounds} x {seconds:g} s"
        )
        slices = {route: [] for route, _s, _m in routes}
        for round_index in range(args.rounds):
            # Rotated, and reversed every other round: no route always follows the same one
            # (the one before leaves PostgreSQL busy writing, checkpointing, vacuuming).
            shift = round_index // 2 % len(routes)
            order = routes[shift:] + routes[:shift]
            for route, server, mode in order[::-1] if round_index % 2 else order:
                offset = offsets.get(route, 0) if mode == 'webhook' else 0
                run = server.wrk(args, mode, clients, seconds, offset)
                server.wait_idle()
                if mode == 'webhook':
                    offsets[route] += run['sent']
                slices[route].append(run)
        level = {route: combine(runs) for route, runs in slices.items()}
        level['clients'] = clients
        levels.append(level)
        log(
            '  '
            + '; '.join(f"{route} {level[route]['rps']:.0f} req/s" for route in slices)
            + f"; errors {sum(level[route]['errors'] for route in slices)}"
        )
    return levels


def git(args, *command):
    result = subprocess.run(['git', '-C', args.repo, *command], capture_output=True, text=True)
    return result.stdout.strip()


def render(args, results):
    head = git(args, 'rev-parse', '--short=12', 'HEAD')
    dirty = (
        ' with uncommitted changes' if git(args, 'status', '--porcelain', 'payment_mypos') else ''
    )
    label = {'tree': f'working tree ({head}{dirty})', 'ref': f'{args.ref_label} ({results["ref"]})'}
    import odoo.release

    lines = [
        f"Date: {results['date']}, the run took {results['elapsed']:.0f} s  ",
        f"Command: `{args.command}`  ",
        f"payment_mypos: {label['tree']}"
        + (f"; compared with {label['ref']}" if args.ref_label else '')
        + '  ',
        f"Machine: {os.cpu_count()} CPUs, load average at start {results['load']}; Odoo "
        f"{odoo.release.version}, Python {platform.python_version()}, PostgreSQL "
        f"{psql(args.db, 'SHOW server_version') or '?'}  ",
        f"Setup: odoo-bin --workers=2 --max-cron-threads=0, dbfilter set; "
        f"{len(results['bodies'])} open myPOS transactions; {args.duration:g} s per route and "
        f"level in {args.rounds} alternating slices; {args.checkout_calls} checkout calls per "
        "provider.",
    ]
    if args.note:
        lines += ['', f"Note: {args.note}"]
    levels, routes = results['levels'], ['health', 'tree'] + (['ref'] if args.ref_label else [])
    names = {'health': '/web/health', 'tree': 'webhook', 'ref': f'webhook, {args.ref_label}'}
    lines += [
        '',
        '### Webhook against /web/health (wrk, loopback)',
        '',
        '| Clients | Route | Requests | Errors | Req/s | p50 ms | p99 ms | '
        'Req/s ratio to /web/health (per slice: min-max) | p99 ratio |',
        '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ]
    for level in levels:
        health = level['health']
        for route in routes:
            run = level[route]
            ratios = [a / b for a, b in zip(run['slices'], health['slices'], strict=True)]
            lines.append(
                f"| {level['clients']} | {names[route]} | {run['requests']} | {run['errors']} | "
                f"{run['rps']:.0f} | {run['p50']:.1f} | {run['p99']:.1f} | "
                f"{run['rps'] / health['rps']:.3f} ({min(ratios):.2f}-{max(ratios):.2f}) | "
                f"{run['p99'] / health['p99']:.1f} |"
            )
    at20 = levels[-1]
    hook, health = at20['tree'], at20['health']
    checkout = {
        name: statistics.median(times['mypos']) / statistics.median(times['demo'])
        for name, times in results['checkout'].items()
    }
    errors = sum(level[route]['errors'] for level in levels for route in routes)
    targets = [
        (
            f"Webhook throughput at {at20['clients']} clients, ratio to /web/health",
            f"{hook['rps'] / health['rps']:.3f}",
            f">= {TARGETS['throughput']}",
            hook['rps'] / health['rps'] >= TARGETS['throughput'],
        ),
        (
            f"Webhook p99 at {at20['clients']} clients, ratio to /web/health",
            f"{hook['p99'] / health['p99']:.1f}",
            f"<= {TARGETS['p99']:g}",
            hook['p99'] / health['p99'] <= TARGETS['p99'],
        ),
        (
            "Redirect form (/payment/transaction) median, ratio to payment_demo",
            f"{checkout['tree']:.2f}",
            f"<= {TARGETS['checkout']}",
            checkout['tree'] <= TARGETS['checkout'],
        ),
        ("Answers other than OK / pass, all levels and routes", str(errors), '0', errors == 0),
    ]
    if args.ref_label:
        ref = at20['ref']
        ratios = [a / b for a, b in zip(hook['slices'], ref['slices'], strict=True)]
        ratio = hook['rps'] / ref['rps']
        targets.append(
            (
                f"Webhook throughput at {at20['clients']} clients, working tree / {args.ref_label}"
                f" (per slice: {min(ratios):.2f}-{max(ratios):.2f})",
                f"{ratio:.3f}",
                ">= 1 (not lower)",
                ratio >= 1 or ('within noise' if max(ratios) >= 1 else False),
            )
        )
    lines += [
        '',
        '### Targets',
        '',
        '| Target | Measured | Limit | Result |',
        '| --- | --- | --- | --- |',
    ]
    for name, measured, limit, ok in targets:
        verdict = ok if isinstance(ok, str) else ('PASS' if ok else 'FAIL')
        lines.append(f"| {name} | {measured} | {limit} | {verdict} |")
    lines += [
        '',
        '### Checkout: /payment/transaction, median of sequential alternating calls',
        '',
        '| payment_mypos | myPOS ms (redirect, renders the signed form) | payment_demo ms '
        '(direct) | Ratio |',
        '| --- | ---: | ---: | ---: |',
    ]
    for name, times in results['checkout'].items():
        lines.append(
            f"| {label[name]} | {statistics.median(times['mypos']) * 1000:.1f} | "
            f"{statistics.median(times['demo']) * 1000:.1f} | {checkout[name]:.2f} |"
        )
    lines += ['', '### SQL queries per webhook call answered OK (Odoo\'s per-request log line)', '']
    for name, queries in results['queries'].items():
        if queries:
            lines.append(
                f"* {label[name]}: median {statistics.median(queries):g}, max {max(queries)}, "
                f"over {len(queries)} calls"
            )
    return '\n'.join(lines) + '\n'


def write_doc(args, table):
    path = os.path.join(args.repo, 'docs', 'BENCHMARKS.md')
    with open(path, encoding='utf-8') as file:
        text = file.read()
    if DOC_MARKER not in text:
        die(f"{path} has no '{DOC_MARKER}' heading: the results go under it")
    with open(path, 'w', encoding='utf-8') as file:
        file.write(text.split(DOC_MARKER)[0] + DOC_MARKER + '\n\n' + table)
    log(f"Results written to {path}")


def main():
    args = parse_args()
    os.makedirs(args.work_dir, exist_ok=True)
    started = time.monotonic()
    results = {
        'date': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
        'load': ' '.join(f'{x:.2f}' for x in os.getloadavg()),
        'ref': git(args, 'rev-parse', '--short=12', f'{args.ref_label}^{{commit}}'),
    }
    install_or_update(args)
    servers = {'tree': OdooServer(args, args.config, args.db, 'tree')}
    log("Preparing the database (providers, open transactions, signed notifications)")
    context = prepare_database(args, f"http://127.0.0.1:{servers['tree'].port}")
    results['bodies'] = context['bodies']
    if len(context['bodies']) < 2000:
        die(f"too few open transactions ({len(context['bodies'])}): raise --open-transactions")
    args.bodies_file = os.path.join(args.work_dir, 'bodies.txt')
    with open(args.bodies_file, 'w', encoding='ascii') as file:
        file.write(''.join(body + '\n' for body in context['bodies']))
    if (
        args.ref_label
    ):  # The same open transactions in both copies: a notification pays one in each.
        copy_database(args, args.config, f'{args.db}_new', 'the working tree')
        copy_database(args, args.ref_config, args.ref_db, args.ref_label)
        servers = {
            'tree': OdooServer(args, args.config, f'{args.db}_new', 'tree', servers['tree'].port),
            'ref': OdooServer(args, args.ref_config, args.ref_db, 'ref'),
        }
    try:
        for server in servers.values():
            server.start()
        results['levels'] = measure(args, servers)
        log(f"Checkout: {args.checkout_calls} /payment/transaction calls per provider")
        results['checkout'] = {
            name: run_checkout(server.port, context, args.checkout_calls)
            for name, server in servers.items()
        }
        time.sleep(0.5)  # The last requests' log lines.
        results['queries'] = {name: server.webhook_queries() for name, server in servers.items()}
    finally:
        for server in servers.values():
            server.stop()
    results['elapsed'] = time.monotonic() - started
    table = render(args, results)
    print(table)
    if not args.no_doc:
        write_doc(args, table)


if __name__ == '__main__':
    main()
