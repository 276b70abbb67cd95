"""The Odoo side of tools/bench: databases, the server under load, wrk runs and the checkout."""

import contextlib
import datetime
import http.client
import importlib.metadata
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import warnings

MODULES = ('payment_mypos', 'payment_demo')
BENCH_PREFIX = 'BENCH-'  # references of the open transactions the webhook pays
CHECKOUT_PREFIX = 'BCHK'  # reference prefix of the transactions the checkout creates
AMOUNT = 12.34  # checkout amount (EUR)
WRK_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'wrk.lua')


def log(message):
    print(f'\033[1;34m==>\033[0m {message}', file=sys.stderr, flush=True)


def die(message):
    print(f'\033[1;31mERROR:\033[0m {message}', file=sys.stderr, flush=True)
    sys.exit(1)


def odoo_command(args):
    if args.odoo_src:
        return [sys.executable, os.path.join(args.odoo_src, 'odoo-bin')]
    return [sys.executable, '-m', 'odoo']


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def psql(db, sql):
    """Run `sql` with psql on `db`; return its output, or None when psql fails."""
    result = subprocess.run(
        ['psql', '-X', '-q', '-A', '-t', '-d', db, '-c', sql],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() if result.returncode == 0 else None


def odoo_update(args, config, db, odoo_args, what):
    """odoo-bin --stop-after-init with `odoo_args`; die with the log's path if it fails."""
    logfile = os.path.join(args.work_dir, f'install-{db}.log')
    log(f"{what} (log: {logfile})")
    command = odoo_command(args) + ['-c', config, '-d', db, *odoo_args]
    command += ['--stop-after-init', '--no-http', f'--logfile={logfile}']
    if subprocess.run(command, check=False).returncode:
        die(f"{what} failed (log: {logfile})")
    installed = psql(db, "SELECT name FROM ir_module_module WHERE state = 'installed'") or ''
    missing = set(MODULES) - set(installed.split())
    if missing:
        die(f"not installed in {db}: {', '.join(sorted(missing))} (log: {logfile})")


def install_or_update(args):
    """Create the database with the modules when missing; else update payment_mypos."""
    installed = psql(args.db, "SELECT name FROM ir_module_module WHERE state = 'installed'")
    if installed is None or not set(MODULES) <= set(installed.split()):
        if psql('postgres', f"SELECT 1 FROM pg_database WHERE datname = '{args.db}'") == '1':
            if installed is None:
                die(f"database {args.db} exists but is not an Odoo database: dropdb {args.db}")
        what = f"Installing {','.join(MODULES)} into {args.db}"
        odoo_update(
            args, args.config, args.db, ['-i', ','.join(MODULES), '--without-demo=all'], what
        )
    elif os.environ.get('MYPOS_BENCH_NO_UPDATE') != '1':
        odoo_update(args, args.config, args.db, ['-u', 'payment_mypos'], f"Updating {args.db}")


def copy_database(args, config, db, label):
    """A copy of the prepared database, payment_mypos updated to `label`'s code, vacuumed: with
    --compare both servers get one, made alike, so that neither runs on a fresher database."""
    psql('postgres', f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    result = subprocess.run(
        ['createdb', '-T', args.db, db], capture_output=True, text=True, check=False
    )
    if result.returncode:
        die(f"createdb -T {args.db} {db} failed: {result.stderr.strip()}")
    odoo_update(args, config, db, ['-u', 'payment_mypos'], f"Updating {db} to {label}")
    subprocess.run(['vacuumdb', '-q', '--analyze', db], check=False)


def prepare_database(args, base_url):
    """Providers in test state, a throw-away "myPOS" key pair, N open myPOS transactions.

    :return: What the loads and the checkout need (the key, the open transactions, ids).
    :rtype: dict
    """
    import odoo
    from odoo.modules.registry import Registry
    from odoo.tools import config

    config.parse_config(['-c', args.config, '-d', args.db, '--log-level=warn', '--no-http'])
    from odoo.addons.payment_mypos.ipc import testing

    private_key, certificate = testing.generate_key_pair(1024, 'Throw-away myPOS (bench)')
    with Registry(args.db).cursor() as cr:
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
        env['ir.config_parameter'].set_param('web.base.url', base_url)
        env['ir.config_parameter'].set_param('web.base.url.freeze', 'True')
        eur = env.ref('base.EUR')
        eur.active = True
        card = env.ref('payment.payment_method_card')
        demo_method = env.ref('payment_demo.payment_method_demo')
        Partner = env['res.partner']
        partner = Partner.search([('ref', '=', 'mypos-bench')], limit=1) or Partner.create(
            {
                'name': 'Bench Customer',
                'ref': 'mypos-bench',
                'email': 'bench@example.com',
                'street': '1 Bench Street',
                'city': 'Sofia',
                'zip': '1000',
                'country_id': env.ref('base.bg').id,
                'phone': '+359 2 000 0000',
            }
        )
        mypos = env.ref('payment_mypos.payment_provider_mypos')
        demo = env.ref('payment.payment_provider_demo')
        mypos.write(
            {'state': 'test', 'is_published': True, 'mypos_public_certificate': certificate}
        )
        demo.write({'state': 'test', 'is_published': True})
        mypos.payment_method_ids |= card
        demo.payment_method_ids |= demo_method
        (card | demo_method).write({'active': True})

        Transaction = env['payment.transaction'].sudo()
        Transaction.search([('reference', '=like', CHECKOUT_PREFIX + '%')]).unlink()
        # The transactions a previous run paid are open again; the missing ones are created.
        cr.execute(
            "UPDATE payment_transaction SET state = 'draft', provider_reference = NULL,"
            " state_message = NULL, is_post_processed = FALSE, payment_method_id = %s"
            " WHERE provider_id = %s AND reference LIKE %s AND state != 'draft'",
            [card.id, mypos.id, BENCH_PREFIX + '%'],
        )
        env.invalidate_all()
        domain = [('provider_id', '=', mypos.id), ('reference', '=like', BENCH_PREFIX + '%')]
        existing = Transaction.search_count(domain)
        if existing < args.open_transactions:
            log(f"Creating {args.open_transactions - existing} open myPOS transactions")
        for start in range(existing, args.open_transactions, 1000):
            txs = Transaction.create(
                [
                    {
                        'provider_id': mypos.id,
                        'payment_method_id': card.id,
                        'reference': f'{BENCH_PREFIX}{index:06d}',
                        'amount': 10 + (index % 900) / 10,
                        'currency_id': eur.id,
                        'partner_id': partner.id,
                        'operation': 'online_redirect',
                        'landing_route': '/payment/status',
                    }
                    for index in range(start, min(start + 1000, args.open_transactions))
                ]
            )
            for tx in txs:
                tx._mypos_get_order_id()
            env.flush_all()
            cr.commit()
            env.invalidate_all()
        cr.execute(
            "SELECT t.mypos_order_id, t.amount, c.name FROM payment_transaction t"
            " JOIN res_currency c ON c.id = t.currency_id WHERE t.provider_id = %s"
            " AND t.reference LIKE %s AND t.state = 'draft' AND t.mypos_order_id IS NOT NULL"
            " ORDER BY t.id",
            [mypos.id, BENCH_PREFIX + '%'],
        )
        open_txs = cr.fetchall()
        # payment.utils.generate_access_token needs a request; the same HMAC without one.
        token = odoo.tools.hmac(
            env(su=True), 'generate_access_token', f'{partner.id}|{AMOUNT}|{eur.id}'
        )
        context = {
            'bodies': notification_bodies(
                private_key, mypos._mypos_get_credentials().sid, open_txs
            ),
            'mypos': {'provider_id': mypos.id, 'payment_method_id': card.id, 'flow': 'redirect'},
            'demo': {'provider_id': demo.id, 'payment_method_id': demo_method.id, 'flow': 'direct'},
            'partner_id': partner.id,
            'currency_id': eur.id,
            'access_token': token,
        }
        cr.commit()
    odoo.sql_db.close_all()  # createdb -T copies only a database nobody is connected to.
    return context


def notification_bodies(private_key, sid, txs):
    """Signed IPCPurchaseNotify bodies, one per open transaction, in myPOS's field order."""
    from odoo.addons.payment_mypos import ipc

    now = datetime.datetime.now(datetime.timezone.utc)
    run_tag = now.strftime('%H%M%S')
    bodies = []
    for index, (order_id, amount, currency) in enumerate(txs):
        fields = [
            ('IPCmethod', 'IPCPurchaseNotify'),
            ('SID', sid),
            ('Amount', f'{amount:.2f}'),
            ('Currency', currency),
            ('OrderID', order_id),
            ('IPC_Trnref', f'{run_tag}{index:06d}'),
            ('RequestSTAN', f'{index % 1000000:06d}'),
            ('RequestDateTime', now.strftime('%Y-%m-%d %H:%M:%S')),
            ('PaymentMethod', '1'),
            ('BillingDescriptor', 'myPOS  * BENCHSTORE'),
            ('PAN', '0007'),
            ('CardType', '3'),
        ]
        bodies.append(urllib.parse.urlencode(ipc.sign_fields(fields, private_key)))
    return bodies


def server_environment(work_dir):
    """The server's environment, so that an old pkg_resources cannot respawn-loop gevent."""
    # With --workers, Odoo spawns its gevent process, again each time it dies. gevent loads its
    # plugins through pkg_resources, and an old one does not see distributions whose metadata
    # folder has a normalized name (zope_interface-*.dist-info): the process dies at once, in a
    # loop that eats a CPU. Metadata-only folders first on the server's PYTHONPATH prevent it.
    env = dict(os.environ)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        try:
            import pkg_resources
        except ImportError:
            return env
    shim_dir = os.path.join(work_dir, 'pkg-metadata-shim')
    shims = []
    for name in ('zope.interface', 'zope.event', 'greenlet'):
        with contextlib.suppress(Exception):  # Installed and visible, or not ours to fix.
            try:
                pkg_resources.require(name)
            except pkg_resources.DistributionNotFound:
                version = importlib.metadata.version(name)
                folder = os.path.join(shim_dir, f'{name}-{version}.dist-info')
                os.makedirs(folder, exist_ok=True)
                with open(os.path.join(folder, 'METADATA'), 'w', encoding='utf-8') as file:
                    file.write(f'Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n')
                shims.append(name)
    if shims:
        log(f"pkg_resources cannot see {', '.join(shims)}: metadata for them on PYTHONPATH")
        env['PYTHONPATH'] = os.pathsep.join(filter(None, [shim_dir, env.get('PYTHONPATH')]))
    return env


class OdooServer:
    """odoo-bin --workers=2 --max-cron-threads=0 on a free loopback port, its log in a file."""

    def __init__(self, args, config, db, name, port=None):
        self.args, self.config, self.db = args, config, db
        self.port = port or free_port()
        self.logfile = os.path.join(args.work_dir, f'server-{name}.log')
        self.process = None

    def start(self):
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.logfile)
        command = odoo_command(self.args) + [
            '-c',
            self.config,
            '-d',
            self.db,
            f'--db-filter=^{re.escape(self.db)}$',
            '--workers=2',
            '--max-cron-threads=0',
            '--http-interface=127.0.0.1',
            f'--http-port={self.port}',
            f'--gevent-port={free_port()}',
            '--log-level=info',  # The production default: each request's line counts queries.
            f'--logfile={self.logfile}',
            '--no-database-list',
        ]
        log(f"Starting Odoo ({self.db}) on http://127.0.0.1:{self.port} (log: {self.logfile})")
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=server_environment(self.args.work_dir),
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                die(f"Odoo exited with {self.process.returncode} (log: {self.logfile})")
            with contextlib.suppress(OSError):  # Not listening yet.
                connection = http.client.HTTPConnection('127.0.0.1', self.port, timeout=5)
                connection.request('GET', '/web/health')
                if connection.getresponse().status == 200:
                    return self
            time.sleep(0.5)
        self.stop()
        die(f"Odoo did not answer /web/health within 90 s (log: {self.logfile})")

    def stop(self):
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # its own session: the workers too
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def wait_idle(self, quiet=0.4, limit=10):
        """Wait until the server's log has not grown for `quiet` seconds: the requests wrk left
        queued when its run ended are served before the next slice starts, not during it."""
        size, still, deadline = -1, 0.0, time.monotonic() + limit
        while still < quiet and time.monotonic() < deadline:
            time.sleep(0.1)
            new_size = os.path.getsize(self.logfile)
            still, size = (still + 0.1 if new_size == size else 0.0), new_size

    def webhook_queries(self):
        """SQL queries of each webhook call answered 200, from Odoo's per-request log line."""
        pattern = re.compile(r'"POST /payment/mypos/webhook HTTP/[\d.]+" 200 - (\d+) ')
        with open(self.logfile, encoding='utf-8', errors='replace') as file:
            return [int(m.group(1)) for m in map(pattern.search, file) if m]

    def wrk(self, args, mode, clients, seconds, offset=0):
        """One wrk run of `mode` (health, webhook from body `offset` on) against this server."""
        command = ['wrk', '-t1', f'-c{clients}', f'-d{max(1, round(seconds))}s', '--timeout', '10s']
        command += ['-s', WRK_SCRIPT, f'http://127.0.0.1:{self.port}', '--', mode]
        command += [args.bodies_file, str(offset)]
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=seconds + 60, check=False
        )
        match = re.search(r'^WRK_JSON (.*)$', result.stdout, re.M)
        if result.returncode or not match:
            die(f"wrk failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        run = json.loads(match.group(1))
        run['errors'] += run['bad']
        if mode == 'webhook' and not run['left']:
            die(f"the open transactions ran out at {clients} client(s): raise --open-transactions")
        return run


def checkout_call(port, context, provider, serial, cookie):
    """Seconds and session cookie of one /payment/transaction call, as the payment form makes."""
    params = {
        **context[provider],
        'token_id': None,
        'amount': AMOUNT,
        'currency_id': context['currency_id'],
        'partner_id': context['partner_id'],
        'access_token': context['access_token'],
        'tokenization_requested': False,
        'landing_route': '/payment/status',
        'is_validation': False,
        'reference_prefix': f'{CHECKOUT_PREFIX}{port}x{serial}',
    }
    body = json.dumps({'jsonrpc': '2.0', 'method': 'call', 'id': serial, 'params': params})
    headers = {'Content-Type': 'application/json', **({'Cookie': cookie} if cookie else {})}
    connection = http.client.HTTPConnection('127.0.0.1', port, timeout=60)
    try:
        start = time.perf_counter()
        connection.request('POST', '/payment/transaction', body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        elapsed = time.perf_counter() - start
        cookie = cookie or (response.getheader('Set-Cookie') or '').split(';')[0] or None
    finally:
        connection.close()
    answer = json.loads(data)
    if response.status != 200 or 'error' in answer:
        die(f"/payment/transaction for {provider} failed: {data[:2000]!r}")
    if provider == 'mypos' and 'Signature' not in (
        answer['result'].get('redirect_form_html') or ''
    ):
        die(f"/payment/transaction for myPOS gave no signed redirect form: {answer['result']!r}")
    return elapsed, cookie


def run_checkout(port, context, calls):
    """Sequential calls for myPOS and payment_demo, alternating (and alternating who goes first)
    so that a drift of the machine hits both alike, after 5 warm-up rounds; seconds per call."""
    times, cookie = {'mypos': [], 'demo': []}, None
    for index in range(-5, calls):
        for provider in ('mypos', 'demo') if index % 2 == 0 else ('demo', 'mypos'):
            elapsed, cookie = checkout_call(port, context, provider, index + 6, cookie)
            if index >= 0:
                times[provider].append(elapsed)
    return times
