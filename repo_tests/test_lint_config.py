"""tools/lint and .pre-commit-config.yaml run the same lint tools at the same versions."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# pre-commit repository -> PyPI distribution pinned in tools/lint-requirements.txt
HOOK_REPOS = {
    'https://github.com/astral-sh/ruff-pre-commit': 'ruff',
    'https://github.com/OCA/pylint-odoo': 'pylint-odoo',
    'https://github.com/OCA/odoo-pre-commit-hooks': 'oca-odoo-pre-commit-hooks',
}


def _pins():
    pins = {}
    for line in (REPO / 'tools/lint-requirements.txt').read_text().splitlines():
        line = line.split('#', 1)[0].strip()
        if line:
            name, version = line.split('==')
            pins[name.strip().lower()] = version.strip()
    return pins


def _hook_revs():
    text = (REPO / '.pre-commit-config.yaml').read_text()
    return dict(re.findall(r'^\s*- repo: (\S+)\n\s*rev: (\S+)', text, flags=re.M))


def test_pre_commit_revs_match_lint_requirements():
    pins, revs = _pins(), _hook_revs()
    for repo, dist in HOOK_REPOS.items():
        assert repo in revs, f"{repo} missing from .pre-commit-config.yaml"
        assert revs[repo] == 'v' + pins[dist], (repo, revs[repo], pins[dist])


def test_every_check_disabled_in_pylintrc_is_justified():
    """Checks that OCA's 18.0 mandatory list enables but .pylintrc does not must be named
    in its "Not enabled, with the reason" section."""
    text = (REPO / '.pylintrc').read_text()
    enabled = set(
        re.findall(
            r'^\s+([a-z0-9-]+),?$', text.split('enable=', 1)[1].split('[REPORTS]')[0], flags=re.M
        )
    )
    oca_mandatory_18 = {
        'assignment-from-none',
        'attribute-deprecated',
        'dangerous-default-value',
        'development-status-allowed',
        'duplicate-key',
        'eval-used',
        'license-allowed',
        'manifest-author-string',
        'manifest-deprecated-key',
        'manifest-required-author',
        'manifest-required-key',
        'manifest-version-format',
        'method-compute',
        'method-inverse',
        'method-required-super',
        'method-search',
        'pointless-statement',
        'pointless-string-statement',
        'print-used',
        'redundant-keyword-arg',
        'reimported',
        'return-in-init',
        'sql-injection',
        'too-few-format-args',
        'translation-field',
        'translation-required',
        'unreachable',
        'use-vim-comment',
        'attribute-string-redundant',
        'consider-merging-classes-inherited',
        'context-overridden',
        'except-pass',
        'invalid-commit',
        'manifest-maintainers-list',
        'missing-readme',
        'missing-return',
        'odoo-addons-relative-import',
        'renamed-field-parameter',
        'resource-not-exist',
        'test-folder-imported',
        'translation-contains-variable',
        'translation-positional-used',
        'website-manifest-key-not-valid-uri',
        'external-request-timeout',
    }
    reasons = text.split('# Not enabled, with the reason:', 1)[1]
    for check in sorted(oca_mandatory_18 - enabled):
        assert f'* {check}' in reasons, f"{check} is disabled without a reason in .pylintrc"
