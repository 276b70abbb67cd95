"""The results as Markdown: the tables printed and written under docs/BENCHMARKS.md's text."""

import os
import statistics
import string

TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'template.md')


def verdict(ok):
    return 'PASS' if ok else 'FAIL'


def fmt_ms(us):
    return f'{us / 1000:.1f}'


def query_stats(counts):
    if not counts:
        return 'n/a'
    return f'{statistics.median(counts):g} (min {min(counts)}, max {max(counts)}, n={len(counts)})'


def against_health(clients, name, run, health, round_ratios=None):
    """A row of the load table: a route's figures and their ratios to /web/health's."""
    spread = f" ({min(round_ratios):.2f}-{max(round_ratios):.2f})" if round_ratios else ''
    return (
        f"| {clients} | {name} | {run['requests']} | {run['errors']} | {run['rps']:.0f} | "
        f"{fmt_ms(run['p50_us'])} | {fmt_ms(run['p90_us'])} | {fmt_ms(run['p99_us'])} | "
        f"{run['rps'] / health['rps']:.3f}{spread} | {run['p50_us'] / health['p50_us']:.1f} | "
        f"{run['p99_us'] / health['p99_us']:.1f} |"
    )


def render(results, args):
    m = results['machine']
    lines = []
    add = lines.append
    add(f"Date: {results['date']}  ")
    add(f"Command: `{args.command}`  ")
    add(
        f"Machine: {m['cpus']} CPUs ({m['cpu']}), {m['ram']} RAM, Linux {m['kernel']}; "
        f"load average at start {results['load_start']}  "
    )
    add(
        f"Software: Odoo {m['odoo']}, Python {m['python']}, PostgreSQL {m['postgresql']}, "
        f"cryptography {m['cryptography']}, {m['wrk']}  "
    )
    add(
        f"Setup: odoo-bin --workers=2 --max-cron-threads=0, log level info, "
        f"{'no dbfilter (single database)' if args.single_db else 'dbfilter set'}, database "
        f"`{args.db}` with {results['open_before']} open myPOS transactions; load levels of "
        f"{args.duration:g} s per route, in {args.rounds} alternating slices; "
        f"{args.checkout_calls} checkout calls per provider."
    )
    if args.note:
        add('')
        add(f"Note: {args.note}")
    add('')
    add('### Targets')
    add('')
    add('| Target | Measured | Limit | Result |')
    add('| --- | --- | --- | --- |')
    for row in results['targets']:
        add(f"| {row[0]} | {row[1]} | {row[2]} | {row[3]} |")
    add('')
    add('### Webhook against /web/health (wrk, loopback)')
    add('')
    add(
        '| Clients | Route | Requests | Errors | Req/s | p50 ms | p90 ms | p99 ms | '
        'Req/s ratio (per slice: min-max) | p50 ratio | p99 ratio |'
    )
    add('| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
    for level in results['loads']:
        health, hook = level['health'], level['webhook']
        add(
            f"| {level['clients']} | /web/health | {health['requests']} | {health['errors']} | "
            f"{health['rps']:.0f} | {fmt_ms(health['p50_us'])} | {fmt_ms(health['p90_us'])} | "
            f"{fmt_ms(health['p99_us'])} | 1 | 1 | 1 |"
        )
        add(against_health(level['clients'], 'webhook', hook, health, level['round_ratios']))
        if 'demo' in level:
            name = "payment_demo's notification (for scale)"
            add(against_health(level['clients'], name, level['demo'], health))
    add('')
    floor, at20 = results['floor'], results['loads'][-1]
    add('')
    add(
        f"For scale (not a target): Odoo's cheapest route through a database, "
        f"`/web/webclient/version_info` (JSON-RPC, `auth='none'`, no ORM work), at 20 clients: "
        f"{floor['rps']:.0f} req/s, p99 {fmt_ms(floor['p99_us'])} ms, "
        f"{floor['rps'] / at20['health']['rps']:.3f} of /web/health; the webhook makes "
        f"{at20['webhook']['rps'] / floor['rps']:.3f} of that floor ({floor['errors']} error(s))."
    )
    if 'demo' in at20:
        add('')
        add(
            f"For scale (not a target): Odoo's own `payment_demo` notification route "
            f"(`/payment/demo/simulate_payment`: JSON-RPC, `auth='public'`; it finds the "
            f"transaction by reference and marks it done, with no signature, no amount check and "
            f"no log), in the same slices at 20 clients: {at20['demo']['rps']:.0f} req/s, "
            f"{at20['demo']['rps'] / at20['health']['rps']:.3f} of /web/health; the myPOS webhook "
            f"makes {at20['webhook']['rps'] / at20['demo']['rps']:.3f} of it."
        )
    add('')
    add(
        f"Errors = answers other than `200 OK` (`pass` for /web/health) plus socket errors and "
        f"timeouts. Each notification is distinct, signed and for another open transaction: the "
        f"server logged {results['ok_answers']} webhook calls answered 200 (warm-up included, "
        f"and those still in flight when a time box ended), and {results['paid']} transactions "
        f"are now done."
    )
    add('')
    add('### Where the time goes: CPU per request (from /proc, during the load levels)')
    add('')
    add(
        '| Clients | Route | Odoo CPU ms / request | PostgreSQL CPU ms / request | '
        'Share of the 2 CPUs busy |'
    )
    add('| ---: | --- | ---: | ---: | ---: |')
    for level in results['loads']:
        routes = [('/web/health', 'health'), ('webhook', 'webhook'), ('payment_demo', 'demo')]
        for name, run in ((name, level[key]) for name, key in routes if key in level):
            seconds = run['duration_us'] / 1e6
            busy = (run['odoo_cpu'] + run['postgres_cpu']) / (seconds * results['cpus'])
            add(
                f"| {level['clients']} | {name} | {run['odoo_cpu'] * 1000 / run['requests']:.2f} | "
                f"{run['postgres_cpu'] * 1000 / run['requests']:.2f} | {busy:.0%} |"
            )
    add('')
    add(
        "When the busy share stays well below 100%, the two workers are waiting (on PostgreSQL "
        "round trips, connections, the network) rather than computing: the throughput then "
        "follows the round trips per request more than the CPU time."
    )
    add('')
    add('### Checkout: /payment/transaction (sequential, alternating)')
    add('')
    add('| Provider | Flow | Median ms | p90 ms | Ratio to payment_demo (median) |')
    add('| --- | --- | ---: | ---: | ---: |')
    for provider, flow in (('demo', 'direct'), ('mypos', 'redirect (renders the signed form)')):
        times = results['checkout'][provider]
        add(
            f"| {'payment_demo' if provider == 'demo' else 'payment_mypos'} | {flow} | "
            f"{statistics.median(times) * 1000:.1f} | {percentile(times, 90) * 1000:.1f} | "
            f"{statistics.median(times) / statistics.median(results['checkout']['demo']):.2f} |"
        )
    add('')
    add('### Protocol functions (in-process, per operation)')
    add('')
    add(
        '| Key | sign µs | verify µs | sign, key parsed each time µs | '
        'verify, certificate parsed each time µs | parse private key µs (cached) | '
        'parse certificate µs (cached) |'
    )
    add('| --- | ---: | ---: | ---: | ---: | ---: | ---: |')
    for row in results['protocol']:
        add(
            f"| RSA {row['bits']} | {row['sign'] * 1e6:.0f} | {row['verify'] * 1e6:.0f} | "
            f"{row['sign_uncached'] * 1e6:.0f} ({row['sign_uncached'] / row['sign']:.1f}x) | "
            f"{row['verify_uncached'] * 1e6:.0f} ({row['verify_uncached'] / row['verify']:.1f}x) | "
            f"{row['parse_private'] * 1e6:.0f} ({row['parse_private_cached'] * 1e6:.1f}) | "
            f"{row['parse_public'] * 1e6:.0f} ({row['parse_public_cached'] * 1e6:.1f}) |"
        )
    cache = results['cache']
    add('')
    add(
        f"Key cache (by content): 100 verifications with one certificate parsed it "
        f"{cache['misses_first']} time(s) ({cache['hits_first']} cache hits); a changed "
        f"certificate was parsed {cache['misses_second']} time(s) for its 100 verifications, "
        f"and signatures of the old key "
        f"{'no longer verify' if cache['second_rejects_old_signature'] else 'STILL VERIFY'}."
    )
    add('')
    add("### SQL queries per request (Odoo's per-request counter, server log)")
    add('')
    add('| Request | Queries: median (min, max, n) |')
    add('| --- | --- |')
    for name, counts in results['queries']:
        add(f"| {name} | {query_stats(counts)} |")
    add('')
    add("### Server-side time per request (Odoo's log: SQL time and the rest, ms resolution)")
    add('')
    add('| Request | n | SQL ms (median) | Python and the rest ms (median) |')
    add('| --- | ---: | ---: | ---: |')
    for name, count, sql, rest in results['server_times']:
        add(f"| {name} | {count} | {sql * 1000:.0f} | {rest * 1000:.0f} |")
    return '\n'.join(lines) + '\n'


def percentile(values, pct):
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def section(title, intro, columns, rows, outro):
    """A results section: its heading, what was measured, a table, and what it shows.

    :param list columns: (heading, alignment) pairs, e.g. ('Runs', '---:').
    :param list rows: The table's rows, a list of cells each.
    """
    lines = ['', f'### {title}', '', intro, '']
    for cells in ([name for name, _align in columns], [align for _name, align in columns], *rows):
        lines.append('|' + '|'.join(f' {cell} ' if cell != '' else ' ' for cell in cells) + '|')
    return '\n'.join([*lines, '', outro, ''])


def backlog_rows(backlog):
    """The backlog section: lost notifications settled by the status check, its overlapped
    calls against one call at a time in the same run."""
    if not backlog:
        return ''
    return section(
        'Backlog: lost notifications settled by the status check',
        f"Payments made on the emulator whose notifications were all lost (fault `notify_drop`); "
        f"the emulator answers each `IPCGetTxnStatus` after {backlog['latency_ms']} ms. The "
        f"scheduled action runs as Odoo's cron runner runs it: again at once while it reports due "
        f"transactions, from the first run until none is left.",
        [
            ('Calls at once', '---:'),
            ('Payments', '---:'),
            ('Time to settle all', '---:'),
            ('Per payment', '---:'),
            ('Runs', '---:'),
            ('Status calls', '---:'),
            ('One call each', '---'),
            ('Most calls open at once', '---:'),
            ('Wrong states', '---:'),
        ],
        [
            [
                run['concurrency'],
                run['count'],
                f"{run['seconds']:.1f} s",
                f"{1000 * run['seconds'] / run['count']:.0f} ms",
                run['runs'],
                run['calls'],
                'yes' if run['one_call_each'] else 'no',
                run['max_concurrent_calls'],
                run['wrong'],
            ]
            for run in backlog['runs'].values()
        ],
        f"Overlapping the calls settles a payment {backlog['speedup']:.2f} times as fast as one "
        f"call at a time (time per payment, same run).",
    )


def outage_rows(outage):
    """The outage section: myPOS unreachable for the first scheduled runs of the status check."""
    if not outage:
        return ''
    return section(
        'Outage: myPOS unreachable while a backlog waits',
        f"{outage['count']} payments made on the emulator, their notifications lost; the status "
        f"check's scheduled runs come every {outage['interval_minutes']} minutes (simulated: "
        f"the transactions' next-check dates are moved back by one interval between scheduled "
        f"runs; each scheduled run is repeated at once while it reports due transactions, as "
        f"Odoo's cron runner does). myPOS refuses connections during the first "
        f"{outage['down_runs']} scheduled runs, then answers each status call after "
        f"{outage['latency_ms']} ms.",
        [
            ('Scheduled run', '---:'),
            ('myPOS', '---'),
            ('Runs', '---:'),
            ('Status calls', '---:'),
            ('Settled so far', '---:'),
            ('Seconds', '---:'),
        ],
        [
            [
                row['index'],
                'down' if row['down'] else 'up',
                row['runs'],
                row['calls'],
                f"{row['settled']} of {outage['count']}",
                f"{row['seconds']:.1f}",
            ]
            for row in outage['rows']
        ],
        f"Calls while myPOS was down: {outage['calls_down']} for {outage['count']} waiting "
        f"payments; all settled {outage['settled_after']} scheduled run(s) after myPOS came back; "
        f"wrong states: {outage['wrong']} "
        f"({verdict(outage['wrong'] == 0 and outage['settled'] == outage['count'])}).",
    )


def growth_rows(growth):
    """The growth section: the searches and the webhook whose cost could grow with the table,
    at two sizes."""
    if not growth:
        return ''
    ratios = [growth['cron_ratio'], growth['lookup_ratio'], growth['webhook_ratio']]
    return section(
        'Growth: about 10,000 against many myPOS transactions',
        "Finished myPOS transactions added with SQL; each search timed in-process (median), on a "
        "warm cache: the status check's search for due transactions (count and first batch) and "
        "the webhook's lookup of a transaction by OrderID. Then, at each size, "
        f"{growth['webhook_calls']} more open transactions (SQL) paid by signed notifications "
        "posted one at a time to `/payment/mypos/webhook` of Odoo's HTTP server (2 workers): the "
        "median time to the `OK` answer, the first 10 left out as warm-up.",
        [
            ('myPOS transactions', '---:'),
            ('Status-check search ms', '---:'),
            ('Webhook lookup ms', '---:'),
            ('Webhook p50 ms', '---:'),
            ('Paid by the webhook', '---:'),
        ],
        [
            *(
                [
                    row['size'],
                    f"{row['cron_ms']:.2f}",
                    f"{row['lookup_ms']:.3f}",
                    f"{row['webhook_ms']:.1f}",
                    f"{row['paid']} of {growth['webhook_calls']}",
                ]
                for row in growth['rows']
            ),
            ['ratio', *(f'{ratio:.2f}' for ratio in ratios), ''],
        ],
        f"Target: every ratio under 1.3: {verdict(max(ratios) < 1.3)}.",
    )


def document(table):
    """docs/BENCHMARKS.md: template.md's text with the results table in place of $results."""
    with open(TEMPLATE, encoding='utf-8') as file:
        # The file ends with a newline (end-of-file-fixer); the table brings its own.
        template = string.Template(file.read().removesuffix('\n'))
    return template.substitute(results=table)
