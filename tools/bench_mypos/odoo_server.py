"""The Odoo server under load: odoo-bin --workers=2 started, watched and stopped by the bench."""

import contextlib
import http.client
import importlib.metadata
import os
import re
import signal
import socket
import subprocess
import sys
import time
import warnings

from .console import die, log


def odoo_command(args):
    if args.odoo_src:
        return [sys.executable, os.path.join(args.odoo_src, 'odoo-bin')]
    return [sys.executable, '-m', 'odoo']


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def server_environment(args):
    """The server's environment, so that an old pkg_resources cannot respawn-loop gevent."""
    # With `--workers`, Odoo also spawns its gevent (websocket) process, and spawns it again
    # each time it dies. gevent's monkey-patching loads its plugins through pkg_resources,
    # which checks their requirements; an old pkg_resources does not find distributions whose
    # metadata folder has a normalized name (zope_interface-*.dist-info for zope.interface),
    # so that process dies at once, and is respawned in a loop that eats a CPU. For such
    # distributions, a metadata-only folder under the work dir, put first on the server's
    # PYTHONPATH, lets the check pass.
    env = dict(os.environ)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        try:
            import pkg_resources
        except ImportError:
            return env
    shims = []
    for name in ('zope.interface', 'zope.event', 'greenlet'):
        try:
            pkg_resources.require(name)
        except pkg_resources.DistributionNotFound:
            try:
                version = importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                continue
            shims.append((name, version))
        except Exception:  # noqa: BLE001 - a version conflict is not ours to fix
            continue
    if shims:
        shim_dir = os.path.join(args.work_dir, 'pkg-metadata-shim')
        for name, version in shims:
            folder = os.path.join(shim_dir, f'{name}-{version}.dist-info')
            os.makedirs(folder, exist_ok=True)
            with open(os.path.join(folder, 'METADATA'), 'w', encoding='utf-8') as file:
                file.write(f'Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n')
        log(
            f"pkg_resources cannot see {', '.join(n for n, _v in shims)}: adding metadata for "
            f"them on the server's PYTHONPATH (else Odoo respawns its gevent process in a loop)"
        )
        env['PYTHONPATH'] = os.pathsep.join(filter(None, [shim_dir, env.get('PYTHONPATH')]))
    return env


class OdooServer:
    """odoo-bin --workers=2 on free loopback ports, with its log in a file."""

    def __init__(self, args, port):
        self.args = args
        self.port = port
        self.logfile = os.path.join(args.work_dir, 'server.log')
        self.process = None

    def start(self):
        if os.path.exists(self.logfile):
            os.remove(self.logfile)
        config, db_filter = self.args.config, [f'--db-filter=^{re.escape(self.args.db)}$']
        if self.args.single_db:
            config, db_filter = os.path.join(self.args.work_dir, 'server-single-db.conf'), []
            with open(self.args.config, encoding='utf-8') as source:
                lines = [line for line in source if not line.startswith('dbfilter')]
            with open(config, 'w', encoding='utf-8') as target:
                target.writelines(lines)
        command = odoo_command(self.args) + [
            '-c',
            config,
            '-d',
            self.args.db,
            *db_filter,
            '--workers=2',
            '--max-cron-threads=0',
            '--http-interface=127.0.0.1',
            f'--http-port={self.port}',
            f'--gevent-port={free_port()}',
            '--log-level=info',
            f'--logfile={self.logfile}',
            '--no-database-list',
        ]
        log(
            f"Starting Odoo with 2 HTTP workers on http://127.0.0.1:{self.port}"
            f" (log: {self.logfile})"
        )
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=server_environment(self.args),
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                die(f"Odoo exited with {self.process.returncode} (log: {self.logfile})")
            with contextlib.suppress(OSError):  # Not listening yet.
                status, _body = http_request(self.port, 'GET', '/web/health', timeout=5)
                if status == 200:
                    return
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

    def request_log(self):
        """Return (method, path, status, queries, SQL s, other s) of each request, in log order."""
        pattern = re.compile(
            r'werkzeug: \S+ - - \[[^\]]*\] '
            r'"(\w+) (\S+) HTTP/[\d.]+" (\d+) - (\d+) ([\d.]+) ([\d.]+)'
        )
        with open(self.logfile, encoding='utf-8', errors='replace') as file:
            return [
                (
                    m.group(1),
                    m.group(2).split('?')[0],
                    int(m.group(3)),
                    int(m.group(4)),
                    float(m.group(5)),
                    float(m.group(6)),
                )
                for m in map(pattern.search, file)
                if m
            ]


def http_request(port, method, path, body=None, headers=None, timeout=30):
    connection = http.client.HTTPConnection('127.0.0.1', port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def cpu_seconds(server_pid):
    """CPU seconds used so far by the Odoo server (its process group) and by PostgreSQL."""
    # Each side counts its live processes plus, through the counters of its parent process
    # (the server, the postmaster), the children that already exited: Odoo opens a PostgreSQL
    # backend per request to list databases.
    tick = os.sysconf('SC_CLK_TCK')
    processes = {}
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        try:
            with open(f'/proc/{pid}/stat', encoding='ascii', errors='replace') as file:
                stat = file.read()
        except OSError:  # Gone meanwhile.
            continue
        fields = stat[stat.rindex(')') + 2 :].split()
        processes[int(pid)] = {
            'name': stat[stat.index('(') + 1 : stat.rindex(')')],
            'ppid': int(fields[1]),
            'pgrp': int(fields[2]),
            'own': (int(fields[11]) + int(fields[12])) / tick,
            'children': (int(fields[13]) + int(fields[14])) / tick,
        }
    postgres = {pid for pid, proc in processes.items() if proc['name'].startswith('postgres')}
    odoo_cpu = postgres_cpu = 0.0
    for pid, proc in processes.items():
        if proc['pgrp'] == server_pid:
            odoo_cpu += proc['own'] + (proc['children'] if pid == server_pid else 0)
        elif pid in postgres:
            postgres_cpu += proc['own'] + (proc['children'] if proc['ppid'] not in postgres else 0)
    return odoo_cpu, postgres_cpu
