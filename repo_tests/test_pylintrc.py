""".pylintrc keeps OCA's mandatory checks, or says why not."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


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
