"""The addon builds as an installable wheel with whool, OCA's build backend.

Plain pytest (Odoo is only needed by the install test, which runs it in a subprocess).
The wheel is built the way an integrator would, for the series under test: ``tools/wheel
SERIES`` (``pip wheel`` on a copy of the tracked files whose manifest version carries the series),
without build isolation (whool must be installed: ``pip install whool``).

whool packages the files *tracked by git*, so a data file that was never ``git add``-ed is
missing from the wheel (and from CI's fresh clone): test_every_module_file_is_packaged
says which.
"""

import ast
import email.parser
import os
import re
import shutil
import socket
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ADDON = 'payment_mypos'
ADDON_DIR = REPO / ADDON
PREFIX = f'odoo/addons/{ADDON}/'
# Files Odoo loads from an addon directory (code, data, assets, keys, translations).
NEEDED_SUFFIXES = {
    '.py',
    '.xml',
    '.csv',
    '.sql',
    '.pem',
    '.png',
    '.svg',
    '.jpg',
    '.html',
    '.po',
    '.pot',
    '.js',
    '.scss',
    '.css',
    '.json',
    '.txt',
    '.rst',
}
IGNORED_DIRS = {'__pycache__', 'build', 'dist'}


def _manifest():
    return ast.literal_eval((ADDON_DIR / '__manifest__.py').read_text(encoding='utf-8'))


def _git_files():
    """The addon's files as whool sees them (``git ls-files`` in the addon directory)."""
    try:
        out = subprocess.run(
            ['git', 'ls-files', '-z'], cwd=ADDON_DIR, check=True, capture_output=True, text=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: whool would package every file of the directory")
    return {name for name in out.split('\0') if name}


def _series():
    """The Odoo series the wheel is built and installed for: the one tools/test runs (it exports
    MYPOS_ODOO_SERIES), else this Python's Odoo, else the first supported one."""
    if os.environ.get('MYPOS_ODOO_SERIES'):
        return os.environ['MYPOS_ODOO_SERIES']
    try:
        from odoo import release
    except ImportError:
        return '18.0'
    return f'{release.version_info[0]}.{release.version_info[1]}'


SERIES = _series()


@pytest.fixture(scope='module')
def wheel_path(tmp_path_factory):
    pytest.importorskip('whool', reason="whool is not installed (pip install whool)")
    out_dir = tmp_path_factory.mktemp('wheel')
    # tools/wheel builds from a copy of the tracked files: the checkout is not modified.
    proc = subprocess.run(
        [str(REPO / 'tools' / 'wheel'), SERIES, str(out_dir)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=dict(os.environ, PYTHON=sys.executable),
    )
    assert proc.returncode == 0, f"tools/wheel failed:\n{proc.stdout}\n{proc.stderr}"
    wheels = list(out_dir.glob('*.whl'))
    assert len(wheels) == 1, wheels
    assert proc.stdout.strip() == str(wheels[0])
    return wheels[0]


@pytest.fixture(scope='module')
def wheel_names(wheel_path):
    with zipfile.ZipFile(wheel_path) as zf:
        return set(zf.namelist())


@pytest.fixture(scope='module')
def wheel_metadata(wheel_path, wheel_names):
    (meta_name,) = [n for n in wheel_names if n.endswith('.dist-info/METADATA')]
    with zipfile.ZipFile(wheel_path) as zf:
        text = zf.read(meta_name).decode('utf-8')
    return email.parser.Parser().parsestr(text)


def test_wheel_name_and_version(wheel_path, wheel_metadata):
    version = _manifest()['version']
    # No series in the manifest: the same source installs on 18.0 and 19.0.
    assert re.fullmatch(r'\d+\.\d+\.\d+', version), version
    assert wheel_metadata['Name'] == 'odoo-addon-payment_mypos'
    assert wheel_metadata['Version'] == f'{SERIES}.{version}'
    assert (
        wheel_path.name == f"odoo_addon_payment_mypos-{wheel_metadata['Version']}-py3-none-any.whl"
    )
    assert wheel_metadata['License'] == _manifest()['license']
    assert f'Framework :: Odoo :: {SERIES}' in wheel_metadata.get_all('Classifier')


def test_wheel_dependencies(wheel_metadata):
    requires = set(wheel_metadata.get_all('Requires-Dist') or [])
    assert f'odoo=={SERIES}.*' in requires, requires
    for dep in _manifest().get('external_dependencies', {}).get('python', []):
        assert dep in requires, (dep, requires)
    # 'mail' and 'payment' ship with Odoo: no odoo-addon-* requirement for them.
    assert not [r for r in requires if r.startswith(('odoo-addon-mail', 'odoo-addon-payment'))]


def test_wheel_contains_exactly_the_tracked_files(wheel_names):
    tracked = _git_files() - {'pyproject.toml'}
    packaged = {n[len(PREFIX) :] for n in wheel_names if n.startswith(PREFIX)}
    assert packaged == tracked
    others = {n for n in wheel_names if not n.startswith(PREFIX) and '.dist-info/' not in n}
    assert not others, others
    assert '__manifest__.py' in packaged and '__init__.py' in packaged
    assert 'pyproject.toml' not in packaged


def test_every_module_file_is_packaged(wheel_names):
    """Each file Odoo may load (by suffix) that exists in the addon is in the wheel."""
    missing = []
    for root, dirs, files in os.walk(ADDON_DIR):
        dirs[:] = [d for d in dirs if d not in IGNORED_DIRS and not d.startswith('.')]
        for name in files:
            path = Path(root, name)
            if path.suffix in NEEDED_SUFFIXES:
                rel = path.relative_to(ADDON_DIR).as_posix()
                if PREFIX + rel not in wheel_names:
                    missing.append(rel)
    assert not missing, (
        "not in the wheel because git does not track them (git add them): "
        + ", ".join(sorted(missing))
    )


def test_manifest_files_are_packaged(wheel_names):
    manifest = _manifest()
    needed = list(manifest.get('data', [])) + list(manifest.get('demo', []))
    for bundle in manifest.get('assets', {}).values():
        needed += [a for a in bundle if isinstance(a, str) and '*' not in a]
    needed += [
        'static/description/icon.png',
        'static/description/icon.svg',
        'static/description/index.html',
        'data/sandbox/store-private-key.pem',
        'data/sandbox/mypos-public-cert.pem',
    ]
    needed += [f'i18n/{p.name}' for p in (ADDON_DIR / 'i18n').glob('*.po*')]
    missing = [p for p in needed if PREFIX + p.removeprefix(f'{ADDON}/') not in wheel_names]
    assert not missing, missing


def _odoo_python_env(site_dir):
    """Environment for a subprocess that imports Odoo plus the installed wheel."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(p for p in (env.get('PYTHONPATH'), str(site_dir)) if p)
    env.pop('ODOO_RC', None)
    return env


@pytest.fixture(scope='module')
def installed_site(wheel_path, tmp_path_factory):
    """The wheel pip-installed into a fresh directory (as into site-packages)."""
    site_dir = tmp_path_factory.mktemp('site')
    proc = subprocess.run(
        [
            sys.executable,
            '-m',
            'pip',
            'install',
            '--no-deps',
            '--no-index',
            '-q',
            '--disable-pip-version-check',
            '--target',
            str(site_dir),
            str(wheel_path),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    return site_dir


def test_installed_wheel_is_an_odoo_addon(installed_site):
    """Odoo finds the pip-installed addon with its default addons path (no repo checkout)."""
    pytest.importorskip('odoo', reason="Odoo is not importable from this Python")
    assert (installed_site / 'odoo/addons/payment_mypos/__manifest__.py').is_file()
    code = (
        "import odoo\n"
        "from odoo.tools import config\n"
        "config.parse_config([])\n"
        "from odoo.modules.module import get_module_path, get_manifest\n"
        "print(get_module_path('payment_mypos'))\n"
        "print(get_manifest('payment_mypos')['version'])\n"
    )
    proc = subprocess.run(
        [sys.executable, '-c', code],
        capture_output=True,
        text=True,
        cwd=installed_site.parent,
        env=_odoo_python_env(installed_site),
    )
    assert proc.returncode == 0, proc.stderr
    path, version = proc.stdout.split()[-2:]
    assert Path(path) == installed_site / 'odoo/addons/payment_mypos'
    assert version == f"{SERIES}.{_manifest()['version']}"


@pytest.mark.skipif(
    not shutil.which('createdb') or not shutil.which('dropdb'),
    reason="PostgreSQL client tools not found",
)
def test_installed_wheel_installs_in_odoo(installed_site, tmp_path):
    """`odoo-bin -i payment_mypos --test-enable` works from the wheel alone (repository not in the
    path): the addon installs, and its tests run under Odoo's runner and pass, none skipped (myPOS
    is played by the in-memory fake of ipc/testing.py, which the wheel holds). Two classes only:
    the status check (through the fake and Odoo's HTTP server) and the signatures (myPOS's
    vectors); tools/odoo-tests runs the whole suite on the addon alone."""
    release = pytest.importorskip('odoo.release', reason="Odoo is not importable from this Python")
    # 19.0's odoo/ is a namespace package (no odoo.__file__): its release.py sits in it on both.
    odoo_bin = Path(release.__file__).resolve().parent.parent / 'odoo-bin'
    cmd = [sys.executable, str(odoo_bin)] if odoo_bin.is_file() else [sys.executable, '-m', 'odoo']
    db = f'payment_mypos_wheel_{uuid.uuid4().hex[:8]}'
    env = _odoo_python_env(installed_site)
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    try:
        proc = subprocess.run(
            cmd
            + [
                '-d',
                db,
                '-i',
                ADDON,
                '--test-enable',
                f'--test-tags=/{ADDON}:TestStatusCheck,/{ADDON}:TestSignatures',
                '--stop-after-init',
                '--http-interface=127.0.0.1',
                f'--http-port={port}',
                '--without-demo=all',
                '--max-cron-threads=0',
                f'--data-dir={tmp_path}',
                '--log-level=info',
                f'--logfile={tmp_path / "odoo.log"}',
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=1200,
        )
        log = (
            (tmp_path / 'odoo.log').read_text(errors='replace')
            if (tmp_path / 'odoo.log').exists()
            else ''
        )
        assert proc.returncode == 0, f"{proc.stderr}\n{log[-5000:]}"
        assert re.search(r'odoo\.tests\.result: 0 failed, 0 error\(s\) of \d+ tests', log), log[
            -5000:
        ]
        ran = re.search(rf'odoo\.tests\.stats: {ADDON}: (\d+) tests', log)
        assert ran and int(ran.group(1)) >= 15, log[-5000:]
        # Skips of a test, or of a whole class in its setUpClass (logged by odoo.tests.suite).
        skips = [
            line for line in log.splitlines() if ' skipped ' in line and f'{ADDON}.tests' in line
        ]
        assert not skips, skips
        state = subprocess.run(
            [
                'psql',
                '-X',
                '-A',
                '-t',
                '-d',
                db,
                '-c',
                "select state from ir_module_module where name = 'payment_mypos'",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert state == 'installed'
    finally:
        subprocess.run(['dropdb', '--if-exists', '--force', db], capture_output=True)
