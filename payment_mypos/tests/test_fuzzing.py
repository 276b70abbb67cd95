# Part of payment_mypos. License LGPL-3.
"""Property-based fuzzing (hypothesis) of what reaches the webhook and the browser returns, through
Odoo's real HTTP server (docs/RELIABILITY.md)."""

import base64
import collections
from urllib.parse import urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odoo.tests import tagged

from odoo.addons.payment_mypos import ipc
from odoo.addons.payment_mypos.tests.common import MyPOSCommon
from odoo.addons.payment_mypos.tests.common_reliability import CONTROLLER_LOGGER, RawHttpMixin

FORM = {'Content-Type': 'application/x-www-form-urlencoded'}
METHODS = [
    'IPCPurchaseNotify',
    'IPCPurchaseRollback',
    'IPCPurchaseOK',
    'IPCPurchaseCancel',
    'IPCRefund',
    'IPCGetTxnStatus',
    'ipcpurchasenotify',
    '',
]


def _sig(fields):
    return dict(fields)['Signature']


def _with_signature(fields, signature):
    return [(name, signature if name == 'Signature' else value) for name, value in fields]


def _without(fields, name):
    return [(key, value) for key, value in fields if key != name]


def _replace(fields, name, new):
    return [(key, new if key == name else value) for key, value in fields]


def _tamper(signed_fields, operation, position, new, other):
    """A copy of `signed_fields` with one field replaced, dropped, duplicated, swapped or added."""
    fields = list(signed_fields)
    if operation == 'replace':
        fields[position] = (fields[position][0], new)
    elif operation == 'drop':
        del fields[position]
    elif operation == 'duplicate':
        fields.insert(other, fields[position])
    elif operation == 'swap':
        fields[position], fields[other] = fields[other], fields[position]
    else:
        fields.insert(position, (f'X{other}', new))
    return fields


@tagged('post_install', '-at_install')
class TestFuzzing(RawHttpMixin, MyPOSCommon):
    """Property-based generation (hypothesis) of notification bodies and browser returns.
    Zero 5xx, the webhook never answers OK to unsigned or tampered input, and no such input
    changes any transaction."""

    EXAMPLES = {  # per generator; >= 1,000 in total, with room for hypothesis's early stops
        'webhook: random field lists': 350,
        'webhook: random bytes and content types': 120,
        'webhook: real fields, random valid-looking signature': 150,
        'webhook: signed notification, then tampered': 250,
        'return/cancel: random field lists (POST or GET)': 150,
        'return/cancel: signed cancel, then tampered': 120,
    }

    def setUp(self):
        super().setUp()
        self.tx_draft = self._create_mypos_transaction(reference='FUZZ-DRAFT')
        self.tx_pending = self._create_mypos_transaction(reference='FUZZ-PENDING', amount=20.0)
        self.tx_pending._set_pending()
        self.tx_done = self._create_mypos_transaction(reference='FUZZ-DONE', amount=7.5)
        response = self._raw(
            'POST', self.webhook_url, self._sign(self._notification_fields(self.tx_done))
        )
        self.assertEqual(response.text, 'OK')
        self.txs = self.tx_draft + self.tx_pending + self.tx_done
        self.examples = collections.Counter()  # By generator.

    def _check(self, generator, method, path, body, headers=None, params=None, unsigned=True):
        before = self._money_snapshot()
        response = self._raw(method, path, body, headers, params)
        after = self._money_snapshot()
        self.examples[generator] += 1
        self.assertLess(response.status_code, 500, f"{method} {path} {body!r}: {response.text}")
        if path == self.webhook_url and unsigned:
            self.assertNotEqual(response.text, 'OK', f"{body!r}")
        if path != self.webhook_url:
            self.assertIn(response.status_code, (302, 303), f"{method} {path} {body!r}")
        self.assertEqual(before, after, f"{method} {path} {body!r} changed the money state")

    def test_fuzz_notifications_and_returns(self):
        txs = self.txs
        order_ids = [tx.mypos_order_id for tx in txs]
        amounts = [f'{tx.amount:.2f}' for tx in txs]
        common = dict(
            deadline=None, database=None, derandomize=False, suppress_health_check=list(HealthCheck)
        )

        # The names of a real notification (the layout's head, the details, `Signature`).
        field_names = [
            name for name, _value in self._sign(self._notification_fields(self.tx_draft))
        ]
        unicode_text = st.text(max_size=40)
        value = st.one_of(
            unicode_text,
            st.sampled_from(
                order_ids
                + amounts
                + METHODS
                + ['EUR', 'USD', ipc.const.SANDBOX_SID, '410227', '']
                + ['1', '2', '5', '1,5', '3', ' 1']  # PaymentMethod values and near misses.
            ),
        )
        name = st.one_of(st.sampled_from(field_names), st.text(min_size=1, max_size=12))
        pairs = st.lists(st.tuples(name, value), max_size=16)
        b64_signature = st.binary(min_size=0, max_size=260).map(
            lambda raw: base64.b64encode(raw).decode()
        )

        @settings(max_examples=self.EXAMPLES['webhook: random field lists'], **common)
        @given(fields=pairs, encoded=st.booleans())
        def webhook_random_fields(fields, encoded):
            body = urlencode(fields).encode() if encoded else fields
            self._check(
                'webhook: random field lists',
                'POST',
                self.webhook_url,
                body,
                FORM if encoded else None,
            )

        content_types = st.sampled_from(
            [
                'application/x-www-form-urlencoded',
                'application/json',
                'text/plain',
                'multipart/form-data',
                'multipart/form-data; boundary=--x',
                'application/xml',
                'application/x-www-form-urlencoded; charset=latin-1',
                '',
            ]
        )

        @settings(max_examples=self.EXAMPLES['webhook: random bytes and content types'], **common)
        @given(body=st.binary(max_size=3000), content_type=content_types)
        def webhook_random_bytes(body, content_type):
            self._check(
                'webhook: random bytes and content types',
                'POST',
                self.webhook_url,
                body,
                {'Content-Type': content_type},
            )

        @settings(
            max_examples=self.EXAMPLES['webhook: real fields, random valid-looking signature'],
            **common,
        )
        @given(
            index=st.integers(0, len(txs) - 1),
            signature=b64_signature,
            method=st.sampled_from(METHODS[:4]),
        )
        def webhook_random_signature(index, signature, method):
            fields = self._notification_fields(txs[index], method=method)
            self._check(
                'webhook: real fields, random valid-looking signature',
                'POST',
                self.webhook_url,
                fields + [('Signature', signature)],
            )

        signed_draft = self._sign(self._notification_fields(self.tx_draft))

        @settings(
            max_examples=self.EXAMPLES['webhook: signed notification, then tampered'], **common
        )
        @given(
            operation=st.sampled_from(['replace', 'drop', 'duplicate', 'swap', 'insert']),
            position=st.integers(0, len(signed_draft) - 1),
            new=value,
            other=st.integers(0, len(signed_draft) - 1),
        )
        def webhook_tampered(operation, position, new, other):
            fields = _tamper(signed_draft, operation, position, new, other)
            values = [v for k, v in fields if k != 'Signature']
            if (
                values == [v for k, v in signed_draft if k != 'Signature']
                and dict(fields).get('Signature') == _sig(signed_draft)
                and len({k.lower() for k, _v in fields}) == len(fields)
            ):
                return  # Unchanged values (e.g. a field swapped with itself): still signed.
            self._check(
                'webhook: signed notification, then tampered', 'POST', self.webhook_url, fields
            )

        routes = st.sampled_from([self.return_url, self.cancel_url])

        @settings(
            max_examples=self.EXAMPLES['return/cancel: random field lists (POST or GET)'], **common
        )
        @given(fields=pairs, route=routes, use_get=st.booleans(), signature=b64_signature)
        def return_random_fields(fields, route, use_get, signature):
            if fields and fields[-1][0] == 'Signature':
                fields[-1] = ('Signature', signature)
            if use_get:
                self._check(
                    'return/cancel: random field lists (POST or GET)',
                    'GET',
                    route,
                    None,
                    params=urlencode(fields),
                )
            else:
                self._check(
                    'return/cancel: random field lists (POST or GET)', 'POST', route, fields
                )

        signed_cancel = self._sign(
            self._notification_fields(self.tx_draft, method='IPCPurchaseCancel')
        )

        @settings(
            max_examples=self.EXAMPLES['return/cancel: signed cancel, then tampered'], **common
        )
        @given(
            position=st.integers(0, len(signed_cancel) - 2),
            new=value,
            route=routes,
            use_get=st.booleans(),
        )
        def return_tampered(position, new, route, use_get):
            fields = list(signed_cancel)
            if fields[position][1] == new:
                return
            fields[position] = (fields[position][0], new)
            if use_get:
                self._check(
                    'return/cancel: signed cancel, then tampered',
                    'GET',
                    route,
                    None,
                    params=urlencode(fields),
                )
            else:
                self._check('return/cancel: signed cancel, then tampered', 'POST', route, fields)

        with self.assertLogs(CONTROLLER_LOGGER, 'WARNING'):  # Each refusal, for the merchant.
            webhook_random_fields()
            webhook_random_bytes()
            webhook_random_signature()
            webhook_tampered()
            return_random_fields()
            return_tampered()
        self.assertGreaterEqual(sum(self.examples.values()), 1000, self.examples)
        self.assertEqual(
            (self.tx_draft.state, self.tx_pending.state, self.tx_done.state),
            ('draft', 'pending', 'done'),
        )
