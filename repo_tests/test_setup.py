"""tools/setup on a machine that is already set up: a second run changes nothing and says so; bad
input is refused with a message. (Building a series from scratch takes minutes and a network or a
local clone: done by hand, see README's developers' section.)"""

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SETUP = REPO / 'tools' / 'setup'
SERIES = os.environ.get('MYPOS_ODOO_SERIES', '')


def _run(*args):
    return subprocess.run(
        [str(SETUP), *args], capture_output=True, text=True, cwd=REPO, timeout=600, check=False
    )


def _files(venv):
    """Every file of the virtualenv and its modification time (Python's bytecode caches aside)."""
    return {
        path: path.stat().st_mtime_ns
        for path in venv.rglob('*')
        if path.is_file() and '__pycache__' not in path.parts
    }


def test_unknown_series_refused():
    proc = _run('17.0', '--no-apt')
    assert proc.returncode != 0
    assert "unknown series '17.0'" in proc.stderr


def test_missing_source_refused(tmp_path):
    proc = _run(SERIES or '19.0', '--no-apt', '--source', str(tmp_path / 'nowhere'))
    assert proc.returncode != 0
    assert 'nowhere' in proc.stderr


@pytest.mark.skipif(not SERIES, reason="run by tools/test, which names the series under test")
def test_second_run_changes_nothing():
    """The series tools/test runs on was set up: running tools/setup again keeps the tree, does
    not call pip, and leaves every file of the virtualenv as it was."""
    venv = Path(os.environ.get('ODOO_PYTHON') or Path.home() / f"odoo{SERIES[:2]}-venv/bin/python")
    venv = venv.parent.parent
    if not (venv / '.payment_mypos-setup-stamp').exists():
        _run(SERIES, '--no-apt')  # A venv set up by hand: the first run writes the stamp.
    before = _files(venv)
    proc = _run(SERIES, '--no-apt')
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'pip not run' in proc.stderr
    assert f'Odoo {SERIES} is set up' in proc.stderr
    assert _files(venv) == before
