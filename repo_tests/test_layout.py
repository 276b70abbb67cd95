"""The repository's layout rules: the protocol package depends on nothing of ours and no Odoo,
myPOS's side of it stays out of production code, no file finds code by editing sys.path, and
every Python file outside the models stays readable in one sitting (a model grows by further
`_inherit` files in models/, as Odoo's own do, not by free functions)."""

import ast
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
IPC_DIR = REPO / 'payment_mypos' / 'ipc'
MAX_LINES = 600
# Odoo's habit: a model's logic stays on the model, split across _inherit files as it grows.
NO_LINE_LIMIT = 'payment_mypos/models/'


def _tracked_python_files():
    names = subprocess.run(
        ['git', 'ls-files', '*.py'], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    return [REPO / name for name in names]


def _imports(path):
    """(absolute module or None, relative level, imported names) of each import in `path`."""
    for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, 0, ()
        elif isinstance(node, ast.ImportFrom):
            yield node.module, node.level, tuple(alias.name for alias in node.names)


@pytest.mark.parametrize('path', sorted(IPC_DIR.glob('*.py')), ids=lambda path: path.name)
def test_ipc_imports_only_itself_and_libraries(path):
    """Nothing under ipc/ imports Odoo, the addon, the emulator, or climbs out of ipc/."""
    for module, level, _names in _imports(path):
        assert level <= 1, f"{path.name} imports from outside ipc/ (level {level})"
        top = (module or '').split('.')[0]
        assert top not in ('odoo', 'payment_mypos', 'mypos_emulator'), f"{path.name}: {module}"


def test_production_code_never_imports_the_testing_module():
    """ipc/testing.py (myPOS's side: keys, certificates, signed answers) is for the emulator and
    the tests only."""
    addon = REPO / 'payment_mypos'
    for path in addon.rglob('*.py'):
        if 'tests' in path.relative_to(addon).parts or path == IPC_DIR / 'testing.py':
            continue
        for module, _level, names in _imports(path):
            assert 'testing' not in names and not (module or '').endswith('testing'), path


def test_the_protocol_is_imported_by_the_odoo_side_not_the_reverse():
    """Models and controllers reach the protocol through ipc/; ipc/ never reaches them (above)."""
    users = [
        path
        for path in (REPO / 'payment_mypos').rglob('*.py')
        if any(module == 'ipc' or 'ipc' in names for module, _level, names in _imports(path))
    ]
    names = {path.relative_to(REPO).as_posix() for path in users}
    assert 'payment_mypos/models/payment_provider.py' in names
    assert 'payment_mypos/controllers/main.py' in names


def test_no_file_edits_sys_path():
    """The wrappers (tools/test, tools/bench, ...) set PYTHONPATH; no Python file edits sys.path
    to find the protocol or the emulator."""
    edits = ('sys.path.' + 'insert', 'sys.path.' + 'append')  # Not found in this file itself.
    offenders = [
        path.relative_to(REPO).as_posix()
        for path in _tracked_python_files()
        if any(edit in path.read_text(encoding='utf-8') for edit in edits)
    ]
    assert not offenders, offenders


def test_python_files_stay_short():
    long_files = {
        name: count
        for path in _tracked_python_files()
        if not (name := path.relative_to(REPO).as_posix()).startswith(NO_LINE_LIMIT)
        and (count := len(path.read_text(encoding='utf-8').splitlines())) > MAX_LINES
    }
    assert not long_files, long_files
