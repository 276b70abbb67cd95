# Part of payment_mypos. License LGPL-3.
"""Fixtures of the system tests: throw-away databases, Odoo actions in a separate process, and a
real multi-worker Odoo server on loopback. Plain pytest (run with `-p no:odoo`).

Environment (tools/test sets them; defaults suit a developer machine):
  ODOO_SRC                     Odoo source tree (odoo-bin), as tools/test found it [~/odoo18]
  ODOO_ADDONS                  comma-separated core addons directories           [from ODOO_SRC]
  MYPOS_SYSTEM_TEMPLATE_DB     database to copy (payment_mypos installed, no other connection);
                               without it, or if the copy fails, a fresh install is made
  MYPOS_SYSTEM_DATA_DIR        Odoo data_dir (the template's filestore is copied from it)
  MYPOS_SYSTEM_DB_PREFIX       prefix of the databases created here              [mypos_sys]
  MYPOS_SYSTEM_KEEP_DB=1       keep the databases afterwards
  MYPOS_RELIABILITY_REPORT_DIR where the JSON figures go (docs/RELIABILITY.md)
"""

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parent.parent
ACTIONS = Path(__file__).resolve().parent / 'odoo_actions.py'


def generate_key_pair(bits=1024):
    """(private key PEM, self-signed certificate PEM) of a throw-away RSA pair."""
    from mypos_emulator._ipc import testing

    return testing.generate_key_pair(bits)


def load_ipc():
    """The protocol package payment_mypos/ipc/ without Odoo (through the emulator's loader;
    tools/test puts the repository on PYTHONPATH)."""
    from mypos_emulator._ipc import const, ipc

    return ipc, const


def _psql(db, sql):
    return subprocess.run(
        ['psql', '-X', '-q', '-A', '-t', '-d', db, '-c', sql],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class OdooSystem:
    """One Odoo configuration for the system tests, and the means to act on its databases."""

    def __init__(self, workdir):
        self.workdir = Path(workdir)
        src = Path(os.environ.get('ODOO_SRC') or Path.home() / 'odoo18')
        self.python = sys.executable
        if (src / 'odoo-bin').is_file():
            self.odoo_cmd = [self.python, str(src / 'odoo-bin')]
            default_addons = f'{src}/addons,{src}/odoo/addons'
        else:  # An importable Odoo (pip): its own CLI.
            self.odoo_cmd = [
                self.python,
                '-c',
                'import odoo.cli, sys; sys.argv[0] = "odoo"; odoo.cli.main()',
            ]
            default_addons = ''
        addons = os.environ.get('ODOO_ADDONS') or default_addons
        self.data_dir = Path(os.environ.get('MYPOS_SYSTEM_DATA_DIR') or self.workdir / 'data')
        self.prefix = os.environ.get('MYPOS_SYSTEM_DB_PREFIX', 'mypos_sys')
        self.created = []
        self.config = self.workdir / 'odoo.conf'
        lines = [
            '[options]',
            f'addons_path = {addons},{REPO}'.replace(',,', ','),
            f'data_dir = {self.data_dir}',
            'http_interface = 127.0.0.1',
            'list_db = False',
            'max_cron_threads = 0',
        ]
        for key, name in (
            ('PGHOST', 'db_host'),
            ('PGPORT', 'db_port'),
            ('PGUSER', 'db_user'),
            ('PGPASSWORD', 'db_password'),
        ):
            if os.environ.get(key):
                lines.append(f'{name} = {os.environ[key]}')
        self.config.write_text('\n'.join(lines) + '\n')
        self.env = dict(os.environ, TZ='UTC')

    # --- Databases --- #

    def drop(self, db):
        subprocess.run(['dropdb', '--if-exists', '--force', db], check=True, capture_output=True)
        shutil.rmtree(self.data_dir / 'filestore' / db, ignore_errors=True)

    def new_db(self, suffix):
        """A throw-away database with payment_mypos (and account_payment) installed: a copy of
        the template when there is one, else a fresh install. Returns (name, how)."""
        db = f'{self.prefix}_{suffix}'
        self.drop(db)
        self.created.append(db)
        template = os.environ.get('MYPOS_SYSTEM_TEMPLATE_DB')
        if template:
            copy = subprocess.run(['createdb', '-T', template, db], capture_output=True, text=True)
            if copy.returncode == 0:
                source = self.data_dir / 'filestore' / template
                if source.is_dir():
                    shutil.copytree(source, self.data_dir / 'filestore' / db)
                return db, f'copy of {template}'
            print(f"createdb -T {template} failed ({copy.stderr.strip()}): installing afresh")
        self.odoo(
            '-d',
            db,
            '-i',
            'payment_mypos,account_payment',
            '--without-demo=all',
            '--stop-after-init',
            '--no-http',
            log=f'install-{db}.log',
        )
        return db, 'fresh install of payment_mypos,account_payment'

    def cleanup(self):
        if os.environ.get('MYPOS_SYSTEM_KEEP_DB') == '1':
            return
        for db in self.created:
            self.drop(db)

    # --- Odoo processes --- #

    def odoo(self, *args, log):
        logfile = self.workdir / log
        started = time.time()
        result = subprocess.run(
            [*self.odoo_cmd, '-c', str(self.config), *args, f'--logfile={logfile}'],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        if result.returncode != 0:
            tail = logfile.read_text(errors='replace')[-4000:] if logfile.exists() else ''
            raise AssertionError(f"odoo {' '.join(args)} failed:\n{result.stderr[-2000:]}\n{tail}")
        return time.time() - started

    def action(self, db, action, **arguments):
        result = subprocess.run(
            [self.python, str(ACTIONS), str(self.config), db, action, json.dumps(arguments)],
            env=dict(
                self.env,
                PYTHONPATH=os.pathsep.join(
                    filter(
                        None,
                        [
                            str(Path(self.odoo_cmd[1]).parent) if len(self.odoo_cmd) == 2 else '',
                            self.env.get('PYTHONPATH', ''),
                        ],
                    )
                ),
            ),
            capture_output=True,
            text=True,
            timeout=900,
        )
        lines = [line for line in result.stdout.splitlines() if line.startswith('RESULT ')]
        if result.returncode != 0 or not lines:
            raise AssertionError(f"action {action} on {db} failed:\n{result.stderr[-4000:]}")
        return json.loads(lines[-1][len('RESULT ') :])

    @contextlib.contextmanager
    def server(self, db, workers=4):
        """A real Odoo with `workers` HTTP worker processes on a free loopback port."""
        port = _free_port()
        logfile = self.workdir / f'server-{db}.log'
        process = subprocess.Popen(
            [
                *self.odoo_cmd,
                '-c',
                str(self.config),
                '-d',
                db,
                f'--db-filter=^{db}$',
                f'--workers={workers}',
                '--max-cron-threads=0',
                f'--http-port={port}',
                '--gevent-port=0',
                '--limit-time-real=300',
                '--limit-time-cpu=300',
                f'--logfile={logfile}',
                '--log-level=info',
            ],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f'http://127.0.0.1:{port}'
        try:
            deadline = time.time() + 120
            last_error = None
            while True:
                if process.poll() is not None:
                    raise AssertionError(f"Odoo exited: {logfile.read_text()[-3000:]}")
                try:
                    if requests.get(f'{url}/web/health', timeout=2).status_code == 200:
                        break
                except requests.RequestException as error:  # Not listening yet.
                    last_error = error
                if time.time() > deadline:
                    raise AssertionError(
                        f"Odoo did not answer /web/health within 120 s (last error: {last_error!r})"
                    )
                time.sleep(0.5)
            yield url, logfile
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope='session')
def odoo_system():
    workdir = tempfile.mkdtemp(prefix='mypos-system-tests-')
    system = OdooSystem(workdir)
    try:
        yield system
    finally:
        system.cleanup()
        if os.environ.get('MYPOS_SYSTEM_KEEP_DB') != '1':
            shutil.rmtree(workdir, ignore_errors=True)
