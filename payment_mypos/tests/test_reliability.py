# Part of payment_mypos. License LGPL-3.
"""Reliability and security suite, part 1 (docs/RELIABILITY.md): forged and odd notifications,
fuzzing, and secrets. Everything goes through Odoo's real HTTP server."""

import base64
import collections
import json
import logging
import time
from urllib.parse import urlencode

from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.payment_mypos import ipc
from odoo.addons.payment_mypos.tests.common import (
    SANDBOX_STORE_KEY,
    MyPOSCommon,
    generate_key_pair,
)
from odoo.addons.payment_mypos.tests.test_reliability_common import (
    MUTED_LOGGERS,
    RawHttpMixin,
    write_report,
)

try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
except ImportError:  # tools/test and .ci/run install it; without it the fuzz test is skipped.
    given = None

FORM = {'Content-Type': 'application/x-www-form-urlencoded'}
NOTIFY_FIELD_NAMES = [
    'IPCmethod',
    'SID',
    'Amount',
    'Currency',
    'OrderID',
    'IPC_Trnref',
    'RequestSTAN',
    'RequestDateTime',
    'PaymentMethod',
    'BillingDescriptor',
    'PAN',
    'CardType',
    'Signature',
]
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


@tagged('post_install', '-at_install')
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


class TestForgedNotifications(RawHttpMixin, MyPOSCommon):
    """Item 1: a table of named forged or odd requests to the webhook. Each must be refused (or,
    for repeats, acknowledged idempotently), never answered with a 5xx, and change no money
    state of any transaction."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.other_key, _other_certificate = generate_key_pair()

    # === Preparations: the state the transaction is in before the forged request === #

    def _make_done(self, tx):
        response = self._raw('POST', self.webhook_url, self._sign(self._notification_fields(tx)))
        self.assertEqual((response.status_code, response.text, tx.state), (200, 'OK', 'done'))

    def _make_done_and_refunded(self, tx):
        self._make_done(tx)
        refund = tx._create_child_transaction(10.0, is_refund=True)
        refund._set_done()
        self.env.flush_all()

    def _make_cancelled(self, tx):
        tx._set_canceled()
        self.env.flush_all()

    # === The cases === #

    def _cases(self):
        """(name, preparation, expected outcome, request builder(tx) -> (method, body, headers))

        Outcomes: 'refused' (4xx, not OK), 'idempotent' (200 OK, nothing changes), 'not_allowed'
        (405), 'too_large' (400 or 413)."""
        notify = self._notification_fields
        sign = self._sign

        def post(fields_or_body, headers=None):
            return 'POST', fields_or_body, headers

        def signed(tx, **overrides):
            return sign(notify(tx, **overrides))

        def reencode(tx, transform):
            fields = signed(tx)
            return post(_with_signature(fields, transform(_sig(fields))))

        def raw_signature(tx):
            return base64.b64decode(_sig(signed(tx)))

        def other_tx_signature(tx):
            other = self._create_mypos_transaction(reference=f'{tx.reference}-other', amount=5.0)
            return post(_with_signature(signed(tx), _sig(sign(notify(other))))), other

        return [
            # Signature
            ('no signature', None, 'refused', lambda tx: post(notify(tx))),
            ('empty signature', None, 'refused', lambda tx: post(notify(tx) + [('Signature', '')])),
            (
                'signed with another key',
                None,
                'refused',
                lambda tx: post(sign(notify(tx), self.other_key)),
            ),
            (
                "signed with myPOS's public sandbox store key",
                None,
                'refused',
                lambda tx: post(sign(notify(tx), SANDBOX_STORE_KEY)),
            ),
            (
                'signature truncated by 8 characters',
                None,
                'refused',
                lambda tx: reencode(tx, lambda s: s[:-8]),
            ),
            (
                'signature without base64 padding',
                None,
                'refused',
                lambda tx: reencode(tx, lambda s: s.rstrip('=')),
            ),
            (
                'signature re-encoded base64url',
                None,
                'refused',
                lambda tx: reencode(
                    tx,
                    lambda s: (
                        base64.urlsafe_b64encode(base64.b64decode(s)).decode().rstrip('=') + '~'
                    ),
                ),
            ),
            (
                'signature re-encoded as hex',
                None,
                'refused',
                lambda tx: reencode(tx, lambda s: base64.b64decode(s).hex()),
            ),
            (
                'signature with MIME line breaks',
                None,
                'refused',
                lambda tx: reencode(tx, lambda s: s[:76] + '\r\n' + s[76:]),
            ),
            (
                'signature with one bit flipped',
                None,
                'refused',
                lambda tx: post(
                    _with_signature(
                        signed(tx),
                        base64.b64encode(
                            bytes([raw_signature(tx)[0] ^ 1]) + raw_signature(tx)[1:]
                        ).decode(),
                    )
                ),
            ),
            (
                "another transaction's valid signature",
                None,
                'refused',
                lambda tx: other_tx_signature(tx)[0],
            ),
            # Fields
            (
                'fields reordered (Amount and Currency swapped)',
                None,
                'refused',
                lambda tx: post([signed(tx)[i] for i in (0, 1, 3, 2, *range(4, len(signed(tx))))]),
            ),
            (
                'extra field after the signature',
                None,
                'refused',
                lambda tx: post(signed(tx) + [('Note', 'x')]),
            ),
            (
                'extra empty field inserted',
                None,
                'refused',
                lambda tx: post(signed(tx)[:5] + [('Note', '')] + signed(tx)[5:]),
            ),
            (
                'duplicate field (same value)',
                None,
                'refused',
                lambda tx: post(signed(tx) + [('OrderID', tx.mypos_order_id)]),
            ),
            (
                'duplicate field in another case',
                None,
                'refused',
                lambda tx: post([('orderid', tx.mypos_order_id)] + signed(tx)),
            ),
            (
                'signed field removed (PAN)',
                None,
                'refused',
                lambda tx: post(_without(signed(tx), 'PAN')),
            ),
            (
                'signed without IPC_Trnref',
                None,
                'refused',
                lambda tx: post(sign(_without(notify(tx), 'IPC_Trnref'))),
            ),
            (
                'signed without OrderID',
                None,
                'refused',
                lambda tx: post(sign(_without(notify(tx), 'OrderID'))),
            ),
            (
                'signed without IPCmethod',
                None,
                'refused',
                lambda tx: post(sign(_without(notify(tx), 'IPCmethod'))),
            ),
            (
                'value tampered after signing (PAN)',
                None,
                'refused',
                lambda tx: post(_replace(signed(tx), 'PAN', '0008')),
            ),
            (
                'unsigned NUL byte in OrderID',
                None,
                'refused',
                lambda tx: post(_replace(notify(tx), 'OrderID', tx.mypos_order_id + '\x00')),
            ),
            (
                '101 fields',
                None,
                'refused',
                lambda tx: post(signed(tx) + [(f'X{i}', 'x') for i in range(90)]),
            ),
            # Content checked after the signature
            (
                'wrong SID (signed)',
                None,
                'refused',
                lambda tx: post(signed(tx, SID='000000000000011')),
            ),
            (
                'amount +0.01 (signed)',
                None,
                'refused',
                lambda tx: post(signed(tx, Amount='%.2f' % (tx.amount + 0.01))),
            ),
            (
                'amount -0.01 (signed)',
                None,
                'refused',
                lambda tx: post(signed(tx, Amount='%.2f' % (tx.amount - 0.01))),
            ),
            (
                'amount with a decimal comma (signed)',
                None,
                'refused',
                lambda tx: post(signed(tx, Amount=f'{tx.amount:.2f}'.replace('.', ','))),
            ),
            (
                'negative amount (signed)',
                None,
                'refused',
                lambda tx: post(signed(tx, Amount=f'-{tx.amount:.2f}')),
            ),
            (
                'other currency USD (signed)',
                None,
                'refused',
                lambda tx: post(signed(tx, Currency='USD')),
            ),
            (
                'currency in lower case (signed)',
                None,
                'refused',
                lambda tx: post(signed(tx, Currency='eur')),
            ),
            (
                'unknown OrderID (signed)',
                None,
                'refused',
                lambda tx: post(signed(tx, OrderID='S99999-1_deadbeef_9')),
            ),
            (
                "another provider's transaction reference as OrderID (signed)",
                'dummy',
                'refused',
                lambda tx: post(signed(tx, OrderID=f'{tx.reference}-dummy')),
            ),
            (
                'IPCPurchaseOK (a browser return) on the webhook (signed)',
                None,
                'refused',
                lambda tx: post(signed(tx, IPCmethod='IPCPurchaseOK')),
            ),
            (
                'IPCRefund on the webhook (signed)',
                None,
                'refused',
                lambda tx: post(signed(tx, IPCmethod='IPCRefund')),
            ),
            (
                'unknown IPCmethod (signed)',
                None,
                'refused',
                lambda tx: post(signed(tx, IPCmethod='IPCPurchaseRefund')),
            ),
            # States
            ('replayed notification (repeat)', 'done', 'idempotent', lambda tx: post(signed(tx))),
            (
                'replayed notification after a refund',
                'refunded',
                'idempotent',
                lambda tx: post(signed(tx)),
            ),
            (
                'second payment with another IPC_Trnref after done',
                'done',
                'refused',
                lambda tx: post(signed(tx, IPC_Trnref='999999')),
            ),
            ('payment after cancel', 'cancel', 'refused', lambda tx: post(signed(tx))),
            # Bodies and transport
            ('empty body', None, 'refused', lambda tx: post(b'', FORM)),
            (
                '1 MB form body',
                None,
                'too_large',
                lambda tx: post(b'IPCmethod=IPCPurchaseNotify&Note=' + b'x' * (1024 * 1024), FORM),
            ),
            (
                '1 MB body without content type',
                None,
                'too_large',
                lambda tx: post(b'x' * (1024 * 1024), {'Content-Type': ''}),
            ),
            (
                'non-UTF-8 form body',
                None,
                'refused',
                lambda tx: post(urlencode(signed(tx)).encode() + b'&Note=%ff%fe\xff', FORM),
            ),
            (
                'non-UTF-8 octet-stream body',
                None,
                'refused',
                lambda tx: post(
                    b'\xff\xfe\x00garbage', {'Content-Type': 'application/octet-stream'}
                ),
            ),
            (
                'JSON body',
                None,
                'refused',
                lambda tx: post(
                    json.dumps(dict(signed(tx))).encode(), {'Content-Type': 'application/json'}
                ),
            ),
            (
                'XML body',
                None,
                'refused',
                lambda tx: post(
                    b'<IPC_response><IPCmethod>IPCPurchaseNotify</IPCmethod></IPC_response>',
                    {'Content-Type': 'text/xml'},
                ),
            ),
            (
                'multipart body with a broken boundary',
                None,
                'refused',
                lambda tx: post(
                    b'--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n',
                    {'Content-Type': 'multipart/form-data; boundary=y'},
                ),
            ),
            (
                'signed fields in the query string of an empty POST',
                None,
                'refused',
                lambda tx: ('POST', b'', {**FORM, '_params': signed(tx)}),
            ),
            (
                'GET with the signed fields',
                None,
                'not_allowed',
                lambda tx: ('GET', None, {'_params': signed(tx)}),
            ),
            (
                'PUT with the signed fields',
                None,
                'not_allowed',
                lambda tx: ('PUT', signed(tx), None),
            ),
        ]

    def test_forged_and_odd_notifications(self):
        dummy_counter = 0
        results = []
        for index, (name, preparation, expected, build) in enumerate(self._cases()):
            with self.subTest(case=name):
                tx = self._create_mypos_transaction(reference=f'FORGE-{index}')
                if preparation == 'done':
                    self._make_done(tx)
                elif preparation == 'refunded':
                    self._make_done_and_refunded(tx)
                elif preparation == 'cancel':
                    self._make_cancelled(tx)
                elif preparation == 'dummy':
                    dummy_counter += 1
                    self._create_transaction(
                        'redirect',
                        provider_id=self.dummy_provider.id,
                        reference=f'{tx.reference}-dummy',
                    )
                spec = build(tx)
                method, body, headers = spec
                headers = dict(headers or {})
                params = headers.pop('_params', None)
                before = self._money_snapshot()
                state_before = tx.state
                with mute_logger(*MUTED_LOGGERS):
                    response = self._raw(method, self.webhook_url, body, headers, params)
                after = self._money_snapshot()
                status, text = response.status_code, response.text[:120]
                result = {
                    'case': name,
                    'prior_state': state_before,
                    'expected': expected,
                    'status': status,
                    'answer': text,
                    'money_state_unchanged': before == after,
                }
                results.append(result)
                self.assertLess(status, 500, f"{name}: {status} {text}")
                self.assertEqual(before, after, f"{name}: the money state changed")
                self.assertEqual(tx.state, state_before)
                if expected == 'refused':
                    self.assertEqual(status, 400, f"{name}: {status} {text}")
                    self.assertTrue(text.startswith('REFUSED: '), text)
                elif expected == 'idempotent':
                    self.assertEqual((status, response.text), (200, 'OK'), name)
                elif expected == 'not_allowed':
                    self.assertEqual(status, 405, name)
                    self.assertNotEqual(response.text, 'OK')
                elif expected == 'too_large':
                    self.assertIn(status, (400, 413), f"{name}: {status} {text}")
                    self.assertNotEqual(response.text, 'OK')
                if preparation == 'refunded':
                    refund = tx.child_transaction_ids
                    self.assertEqual((len(refund), refund.state, refund.amount), (1, 'done', -10.0))
        self.assertGreaterEqual(len(results), 25)
        write_report(
            'forged',
            {
                'cases': results,
                'total': len(results),
                'http_5xx': sum(1 for r in results if r['status'] >= 500),
                'answered_ok': sum(1 for r in results if r['answer'] == 'OK'),
                'state_changes': sum(1 for r in results if not r['money_state_unchanged']),
            },
        )


@tagged('post_install', '-at_install')
class TestFuzzing(RawHttpMixin, MyPOSCommon):
    """Item 2: property-based generation (hypothesis) of notification bodies and browser returns.
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
        self.stats = collections.OrderedDict()

    def _check(self, generator, method, path, body, headers=None, params=None, unsigned=True):
        before = self._money_snapshot()
        response = self._raw(method, path, body, headers, params)
        after = self._money_snapshot()
        stat = self.stats.setdefault(
            generator,
            {
                'examples': 0,
                'status': collections.Counter(),
                'answered_ok': 0,
                'state_changes': 0,
            },
        )
        stat['examples'] += 1
        stat['status'][str(response.status_code)] += 1
        if response.text == 'OK':
            stat['answered_ok'] += 1
        if before != after:
            stat['state_changes'] += 1
        self.assertLess(response.status_code, 500, f"{method} {path} {body!r}: {response.text}")
        if path == self.webhook_url and unsigned:
            self.assertNotEqual(response.text, 'OK', f"{body!r}")
        if path != self.webhook_url:
            self.assertIn(response.status_code, (302, 303), f"{method} {path} {body!r}")
        self.assertEqual(before, after, f"{method} {path} {body!r} changed the money state")

    def test_fuzz_notifications_and_returns(self):
        if given is None:
            self.skipTest("hypothesis is not installed")
        started = time.time()
        txs = self.txs
        order_ids = [tx.mypos_order_id for tx in txs]
        amounts = [f'{tx.amount:.2f}' for tx in txs]
        common = dict(
            deadline=None, database=None, derandomize=False, suppress_health_check=list(HealthCheck)
        )

        unicode_text = st.text(max_size=40)
        value = st.one_of(
            unicode_text,
            st.sampled_from(
                order_ids + amounts + METHODS + ['EUR', 'USD', ipc.const.SANDBOX_SID, '410227', '']
            ),
        )
        name = st.one_of(st.sampled_from(NOTIFY_FIELD_NAMES), st.text(min_size=1, max_size=12))
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

        with mute_logger(*MUTED_LOGGERS):
            webhook_random_fields()
            webhook_random_bytes()
            webhook_random_signature()
            webhook_tampered()
            return_random_fields()
            return_tampered()

        total = sum(stat['examples'] for stat in self.stats.values())
        self.assertGreaterEqual(total, 1000)
        self.assertEqual(
            (self.tx_draft.state, self.tx_pending.state, self.tx_done.state),
            ('draft', 'pending', 'done'),
        )
        write_report(
            'fuzz',
            {
                'generators': {
                    name: dict(stat, status=dict(sorted(stat['status'].items())))
                    for name, stat in self.stats.items()
                },
                'total_examples': total,
                'http_5xx': sum(
                    count
                    for stat in self.stats.values()
                    for code, count in stat['status'].items()
                    if code >= '500'
                ),
                'state_changes': sum(stat['state_changes'] for stat in self.stats.values()),
                'seconds': round(time.time() - started, 1),
            },
        )


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record must not break the test
            text = str(record.msg)
        if record.exc_info:
            text += '\n' + logging.Formatter().formatException(record.exc_info)
        self.records.append(text)


@tagged('post_install', '-at_install')
class TestSecrets(RawHttpMixin, MyPOSCommon):
    """Item 5: credentials out of reach of non-admins through RPC and the payment pages; the
    private key in no log line, error message or form."""

    CREDENTIAL_FIELDS = [
        'mypos_sid',
        'mypos_wallet_number',
        'mypos_key_index',
        'mypos_private_key',
        'mypos_private_key_pem',
        'mypos_public_certificate',
        'mypos_configuration_pack',
    ]

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.store_key, _store_certificate = generate_key_pair()
        cls.sid, cls.wallet = '000000000054321', '40098765432'
        cls.provider.write(
            {
                'mypos_sid': cls.sid,
                'mypos_wallet_number': cls.wallet,
                'mypos_key_index': 7,
                'mypos_private_key': cls.store_key,
                'is_published': True,
            }
        )
        # Never the Internet: server calls go to a closed port on loopback.
        cls.env['ir.config_parameter'].sudo().set_param(
            'payment_mypos.sandbox_url', 'http://127.0.0.1:9/vmp/checkout-test'
        )
        cls.key_body = ''.join(cls.store_key.strip().splitlines()[1:-1])
        cls.key_lines = [line for line in cls.store_key.splitlines() if 'PRIVATE KEY' not in line]
        cls.internal_user = cls.env['res.users'].create(
            {
                'name': 'Rel Internal',
                'login': 'rel_internal',
                'password': 'rel_internal_pw1',
                'groups_id': [
                    (
                        6,
                        0,
                        [
                            cls.env.ref('base.group_user').id,
                            cls.env.ref('base.group_allow_export').id,
                        ],
                    )
                ],
            }
        )
        cls.portal_user = cls.env['res.users'].create(
            {
                'name': 'Rel Portal',
                'login': 'rel_portal',
                'password': 'rel_portal_pw1',
                'groups_id': [(6, 0, [cls.env.ref('base.group_portal').id])],
            }
        )
        cls.public_user = cls.env.ref('base.public_user')
        cls.report = {'checks': []}

    def _record(self, route, who, what, outcome):
        self.report['checks'].append(
            {'route': route, 'user': who, 'what': what, 'outcome': outcome}
        )

    def _secrets(self):
        """The texts that must never be shown: the private key (body, each line, start)."""
        return [self.key_body, self.key_body[:40], *[line for line in self.key_lines if line]]

    def _assert_no_secret(self, text, where):
        for secret in self._secrets():
            self.assertNotIn(secret, text, f"private key material in {where}")

    @classmethod
    def tearDownClass(cls):
        write_report('secrets', cls.report)
        super().tearDownClass()

    def test_orm_for_non_admins(self):
        """read, search_read, export_data, fields_get and searching on the credential fields."""
        for user in (self.internal_user, self.portal_user, self.public_user):
            provider = self.provider.with_user(user)
            self.assertFalse(set(self.CREDENTIAL_FIELDS) & set(provider.fields_get()))
            self._record('ORM fields_get', user.login, 'credential fields listed', 'none')
            for field in self.CREDENTIAL_FIELDS:
                with self.assertRaises(AccessError):
                    provider.read([field])
                with self.assertRaises(AccessError):
                    provider.search_read([('id', '=', self.provider.id)], [field])
                # Without export rights: UserError; with them (the internal user): AccessError.
                # Without export rights: UserError. With them (the internal user), either an
                # AccessError or empty cells.
                try:
                    rows = provider.export_data([field])['datas']
                except UserError:
                    rows = []
                self.assertFalse(any(cell for row in rows for cell in row), field)
                if self.provider._fields[field].store:
                    with self.assertRaises(AccessError):
                        provider.search([(field, '!=', False)])
            self._record(
                'ORM read/search_read/search',
                user.login,
                f'{len(self.CREDENTIAL_FIELDS)} credential fields',
                'AccessError',
            )
            self._record(
                'ORM export_data',
                user.login,
                f'{len(self.CREDENTIAL_FIELDS)} credential fields',
                'UserError (no export right)'
                if user != self.internal_user
                else 'no value exported',
            )
            # The transaction, which they may see in the portal, carries no credential.
            tx_fields = set(self.env['payment.transaction'].with_user(user).fields_get())
            self.assertFalse({f for f in tx_fields if 'private' in f or 'wallet' in f})

    def test_json_rpc_as_internal_user(self):
        """/web/dataset/call_kw as a logged-in internal user: no credential in any answer."""
        self.authenticate('rel_internal', 'rel_internal_pw1')
        calls = [
            ('read', [[self.provider.id], self.CREDENTIAL_FIELDS], {}),
            ('read', [[self.provider.id]], {}),
            ('search_read', [[('id', '=', self.provider.id)]], {'fields': []}),
            ('search_read', [[('mypos_private_key_pem', 'ilike', 'M')]], {'fields': ['name']}),
            ('export_data', [[self.provider.id], ['mypos_private_key_pem', 'mypos_sid']], {}),
            ('fields_get', [], {}),
            (
                'web_read',
                [[self.provider.id]],
                {'specification': {field: {} for field in self.CREDENTIAL_FIELDS}},
            ),
        ]
        for method, args, kwargs in calls:
            with self.subTest(method=method), mute_logger('odoo.http'):
                response = self.url_open(
                    f'/web/dataset/call_kw/payment.provider/{method}',
                    data=json.dumps(
                        {
                            'jsonrpc': '2.0',
                            'method': 'call',
                            'id': 1,
                            'params': {
                                'model': 'payment.provider',
                                'method': method,
                                'args': args,
                                'kwargs': kwargs,
                            },
                        }
                    ),
                    headers={'Content-Type': 'application/json'},
                )
            self.assertEqual(response.status_code, 200)
            text = response.text
            self._assert_no_secret(text, f'call_kw {method}')
            for value in (self.sid, self.wallet, self.mypos_certificate.splitlines()[1]):
                self.assertNotIn(value, text, f'call_kw {method}')
            answer = response.json()
            outcome = (
                'error: ' + answer['error']['data']['name'].rsplit('.', 1)[-1]
                if 'error' in answer
                else 'answered without credentials'
            )
            if method != 'fields_get':
                self.assertIn('error', answer, f'{method}: {text[:300]}')
            what = {
                'read': 'credential fields' if len(args) > 1 else 'all fields',
                'search_read': 'all fields'
                if not kwargs.get('fields')
                else 'search on the stored private key',
                'export_data': 'private key, SID',
                'fields_get': 'field list',
                'web_read': 'credential fields',
            }[method]
            self._record(f'JSON-RPC call_kw {method}', 'rel_internal', what, outcome)

    def test_payment_form_html(self):
        """The payment form (/payment/pay) as the public user and as a portal user."""
        partner = self.portal_user.partner_id
        amount = 12.34
        token = self._generate_test_access_token(partner.id, amount, self.currency.id)
        url = (
            f'/payment/pay?reference=REL-SECRETS&amount={amount}&currency_id={self.currency.id}'
            f'&partner_id={partner.id}&company_id={self.env.company.id}&access_token={token}'
        )
        for login, password in ((None, None), ('rel_portal', 'rel_portal_pw1')):
            with self.subTest(user=login or 'public'):
                if login:
                    self.authenticate(login, password)
                else:
                    self.opener.cookies.clear()
                response = self.url_open(url)
                self.assertEqual(response.status_code, 200)
                html = response.text
                self.assertIn('data-provider-code="mypos"', html, "myPOS is offered")
                self._assert_no_secret(html, '/payment/pay')
                for value in (
                    self.sid,
                    self.wallet,
                    self.mypos_certificate.splitlines()[1],
                    'PRIVATE KEY',
                    'BEGIN CERTIFICATE',
                ):
                    self.assertNotIn(value, html)
                self._record(
                    '/payment/pay (payment form HTML)',
                    login or 'public',
                    'SID, wallet, key, certificate',
                    'absent',
                )

    def test_redirect_form_and_logs(self):
        """The redirect form carries no key; no log record of the main flows shows it; nor do the
        error messages (ValidationError texts, transaction state messages, refusal answers)."""
        capture = _Capture()
        root = logging.getLogger()
        odoo_logger = logging.getLogger('odoo')
        levels = (root.level, odoo_logger.level)
        root.addHandler(capture)
        root.setLevel(logging.DEBUG)
        odoo_logger.setLevel(logging.DEBUG)
        errors = []
        flows = []
        try:
            # 1. Rendering the redirect form.
            tx = self._create_mypos_transaction(reference='REL-SECRET-1')
            html = tx._get_processing_values()['redirect_form_html']
            self._assert_no_secret(html, 'the redirect form')
            self.assertNotIn('BEGIN CERTIFICATE', html)
            self._record(
                'redirect form (IPCPurchase)',
                'any',
                'private key, certificate',
                'absent (SID and wallet are posted to myPOS by design)',
            )
            flows.append('render redirect form')
            # 2. Webhook: refused (bad signature, amount), then accepted.
            for data in (
                self._sign(self._notification_fields(tx, SID=self.sid), self.other_key()),
                self._sign(self._notification_fields(tx, SID=self.sid, Amount='1.00')),
                self._notification_fields(tx, SID=self.sid),
            ):
                response = self._raw('POST', self.webhook_url, data)
                errors.append(response.text)
            response = self._raw(
                'POST', self.webhook_url, self._sign(self._notification_fields(tx, SID=self.sid))
            )
            self.assertEqual(response.text, 'OK')
            flows.append('webhook refused x3, accepted')
            # 3. Browser return and cancel.
            self._raw(
                'POST',
                self.return_url,
                self._sign(self._notification_fields(tx, method='IPCPurchaseOK', SID=self.sid)),
            )
            flows.append('browser return')
            # 4. Refund (myPOS unreachable) and status check.
            try:
                tx.action_refund(amount_to_refund=1.0)
            except (UserError, ValidationError) as error:
                errors.append(str(error))
            for child in tx.child_transaction_ids:
                errors.append(child.state_message or '')
            flows.append('refund (endpoint unreachable)')
            if hasattr(tx, '_mypos_check_status'):
                tx2 = self._create_mypos_transaction(reference='REL-SECRET-2')
                tx2._mypos_check_status()
                flows.append('status check (endpoint unreachable)')
            # 5. Test connection, if the provider has it.
            if hasattr(self.provider, '_mypos_test_connection'):
                _ok, message = self.provider._mypos_test_connection()
                errors.append(message)
                flows.append('test connection (endpoint unreachable)')
            # 6. Errors around the key itself: a broken key, a truncated one, a key as the
            #    certificate, a broken configuration pack.
            broken = self.store_key.replace(self.key_lines[3], self.key_lines[3][::-1])
            for values in (
                {'mypos_private_key': broken},
                {'mypos_private_key': self.store_key[: len(self.store_key) // 2]},
                {'mypos_public_certificate': self.store_key},
                {'mypos_configuration_pack': base64.b64encode(self.store_key.encode()).decode()},
            ):
                if list(values)[0] not in self.provider._fields:
                    continue
                try:
                    with self.env.cr.savepoint():
                        self.provider.write(values)
                except (UserError, ValidationError) as error:
                    errors.append(str(error))
                else:
                    errors.append('')  # Accepted: nothing to leak (certificate = key's public?)
            flows.append('invalid key / certificate / pack writes')
        finally:
            root.removeHandler(capture)
            root.setLevel(levels[0])
            odoo_logger.setLevel(levels[1])
        log_text = '\n'.join(capture.records)
        self.assertGreater(len(capture.records), 5)
        self._assert_no_secret(log_text, 'the logs')
        self._assert_no_secret('\n'.join(errors), 'an error message')
        self._record(
            'logs (root logger, DEBUG)',
            'any',
            f'{len(capture.records)} records over: ' + ', '.join(flows),
            'no key material',
        )
        self._record('error messages', 'any', f'{len(errors)} messages', 'no key material')

    def other_key(self):
        return generate_key_pair()[0]
