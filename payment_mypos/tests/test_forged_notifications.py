# Part of payment_mypos. License LGPL-3.
"""Reliability suite (docs/RELIABILITY.md), item 1: a table of forged or odd requests to the
webhook, one line per case. Each is refused (or, for a repeat, acknowledged idempotently), never
answered with a 5xx, and changes no money state of any transaction."""

import base64
import json
from urllib.parse import urlencode

from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.payment_mypos.tests.common import SANDBOX_STORE_KEY, MyPOSCommon, generate_key_pair
from odoo.addons.payment_mypos.tests.common_reliability import (
    MUTED_LOGGERS,
    RawHttpMixin,
    write_report,
)

FORM = {'Content-Type': 'application/x-www-form-urlencoded'}
ONE_MB = 1024 * 1024
XML_NOTIFY = b'<IPC_response><IPCmethod>IPCPurchaseNotify</IPCmethod></IPC_response>'
BROKEN_MULTIPART = b'--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n'

# Outcomes: refused (400, REFUSED: ...), idempotent (200 OK, nothing changes), 405, or too large
# (400 or 413).
REFUSED, IDEMPOTENT, NOT_ALLOWED, TOO_LARGE = 'refused', 'idempotent', 'not_allowed', 'too_large'
FORM_TYPE, OCTETS = FORM['Content-Type'], 'application/octet-stream'
MULTIPART = 'multipart/form-data; boundary=y'  # Not the body's boundary.
BIG_FORM = b'IPCmethod=IPCPurchaseNotify&Note=' + b'x' * ONE_MB

# (case, state before, expected outcome, builder (a `_build_<name>` method below), its arguments)
CASES = [
    # Signature
    ('no signature', None, REFUSED, 'unsigned'),
    ('empty signature', None, REFUSED, 'signature', 'empty'),
    ('signed with another key', None, REFUSED, 'signed_with', 'other'),
    ("signed with myPOS's public sandbox store key", None, REFUSED, 'signed_with', 'sandbox'),
    ('signature truncated by 8 characters', None, REFUSED, 'signature', 'truncated'),
    ('signature without base64 padding', None, REFUSED, 'signature', 'unpadded'),
    ('signature re-encoded base64url', None, REFUSED, 'signature', 'base64url'),
    ('signature re-encoded as hex', None, REFUSED, 'signature', 'hex'),
    ('signature with MIME line breaks', None, REFUSED, 'signature', 'mime'),
    ('signature with one bit flipped', None, REFUSED, 'signature', 'bit_flipped'),
    ("another transaction's valid signature", None, REFUSED, 'other_tx_signature'),
    # Fields
    ('fields reordered (Amount and Currency swapped)', None, REFUSED, 'swapped', 2, 3),
    ('extra field after the signature', None, REFUSED, 'inserted', None, 'Note', 'x'),
    ('extra empty field inserted', None, REFUSED, 'inserted', 5, 'Note', ''),
    ('duplicate field (same value)', None, REFUSED, 'inserted', None, 'OrderID', '{order}'),
    ('duplicate field in another case', None, REFUSED, 'inserted', 0, 'orderid', '{order}'),
    ('signed field removed (PAN)', None, REFUSED, 'dropped', 'PAN'),
    ('signed without IPC_Trnref', None, REFUSED, 'signed_without', 'IPC_Trnref'),
    ('signed without OrderID', None, REFUSED, 'signed_without', 'OrderID'),
    ('signed without IPCmethod', None, REFUSED, 'signed_without', 'IPCmethod'),
    ('value tampered after signing (PAN)', None, REFUSED, 'tampered', 'PAN', '0008'),
    ('unsigned NUL byte in OrderID', None, REFUSED, 'unsigned', 'OrderID', '{order}\x00'),
    ('101 fields', None, REFUSED, 'padded', 90),
    # Content checked after the signature
    ('wrong SID (signed)', None, REFUSED, 'signed', 'SID', '000000000000011'),
    ('amount +0.01 (signed)', None, REFUSED, 'signed', 'Amount', '{amount+0.01}'),
    ('amount -0.01 (signed)', None, REFUSED, 'signed', 'Amount', '{amount-0.01}'),
    ('amount with a decimal comma (signed)', None, REFUSED, 'signed', 'Amount', '{amount,}'),
    ('negative amount (signed)', None, REFUSED, 'signed', 'Amount', '-{amount}'),
    ('other currency USD (signed)', None, REFUSED, 'signed', 'Currency', 'USD'),
    ('currency in lower case (signed)', None, REFUSED, 'signed', 'Currency', 'eur'),
    ('unknown OrderID (signed)', None, REFUSED, 'signed', 'OrderID', 'S99999-1_deadbeef_9'),
    ("another provider's reference as OrderID", 'dummy', REFUSED, 'signed', 'OrderID', '{dummy}'),
    ('IPCPurchaseOK (a browser return)', None, REFUSED, 'signed', 'IPCmethod', 'IPCPurchaseOK'),
    ('IPCRefund on the webhook (signed)', None, REFUSED, 'signed', 'IPCmethod', 'IPCRefund'),
    ('unknown IPCmethod (signed)', None, REFUSED, 'signed', 'IPCmethod', 'IPCPurchaseRefund'),
    # States
    ('replayed notification (repeat)', 'done', IDEMPOTENT, 'signed'),
    ('replayed notification after a refund', 'refunded', IDEMPOTENT, 'signed'),
    ('second payment, another IPC_Trnref', 'done', REFUSED, 'signed', 'IPC_Trnref', '999999'),
    ('payment after cancel', 'cancel', REFUSED, 'signed'),
    # Bodies and transport
    ('empty body', None, REFUSED, 'body', b'', FORM_TYPE),
    ('1 MB form body', None, TOO_LARGE, 'body', BIG_FORM, FORM_TYPE),
    ('1 MB body without content type', None, TOO_LARGE, 'body', b'x' * ONE_MB, ''),
    ('non-UTF-8 form body', None, REFUSED, 'non_utf8_form'),
    ('non-UTF-8 octet-stream body', None, REFUSED, 'body', b'\xff\xfe\x00garbage', OCTETS),
    ('JSON body', None, REFUSED, 'json'),
    ('XML body', None, REFUSED, 'body', XML_NOTIFY, 'text/xml'),
    ('multipart body, broken boundary', None, REFUSED, 'body', BROKEN_MULTIPART, MULTIPART),
    ('signed fields in the query string of an empty POST', None, REFUSED, 'in_query', 'POST'),
    ('GET with the signed fields', None, NOT_ALLOWED, 'in_query', 'GET'),
    ('PUT with the signed fields', None, NOT_ALLOWED, 'put'),
]


@tagged('post_install', '-at_install')
class TestForgedNotifications(RawHttpMixin, MyPOSCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.other_key, _other_certificate = generate_key_pair()

    # === The state the transaction is in before the forged request === #

    def _prepare(self, tx, preparation):
        if preparation in ('done', 'refunded'):
            response = self._raw('POST', self.webhook_url, self._signed(tx))
            self.assertEqual((response.status_code, response.text, tx.state), (200, 'OK', 'done'))
        if preparation == 'refunded':
            tx._create_child_transaction(10.0, is_refund=True)._set_done()
        elif preparation == 'cancel':
            tx._set_canceled()
        elif preparation == 'dummy':
            self._create_transaction(
                'redirect', provider_id=self.dummy_provider.id, reference=f'{tx.reference}-dummy'
            )
        self.env.flush_all()

    # === Builders: (HTTP method, body, headers) of each kind of case === #

    def _value(self, tx, template):
        """Fill a value of the table from the transaction: its OrderID, amounts, a reference."""
        return {
            '{order}': tx.mypos_order_id,
            '{order}\x00': tx.mypos_order_id + '\x00',
            '{amount+0.01}': f'{tx.amount + 0.01:.2f}',
            '{amount-0.01}': f'{tx.amount - 0.01:.2f}',
            '{amount,}': f'{tx.amount:.2f}'.replace('.', ','),
            '-{amount}': f'-{tx.amount:.2f}',
            '{dummy}': f'{tx.reference}-dummy',
        }.get(template, template)

    def _signed(self, tx, name=None, value=None, key=None):
        overrides = {name: self._value(tx, value)} if name else {}
        return self._sign(self._notification_fields(tx, **overrides), key)

    def _build_signed(self, tx, name=None, value=None):
        return 'POST', self._signed(tx, name, value), None

    def _build_unsigned(self, tx, name=None, value=None):
        fields = self._notification_fields(tx)
        if name:
            fields = [(key, self._value(tx, value) if key == name else v) for key, v in fields]
        return 'POST', fields, None

    def _build_signed_with(self, tx, key):
        key = self.other_key if key == 'other' else SANDBOX_STORE_KEY
        return 'POST', self._signed(tx, key=key), None

    def _build_signature(self, tx, how):
        fields = self._signed(tx)
        signature = fields[-1][1]
        raw = base64.b64decode(signature)
        signature = {
            'empty': '',
            'truncated': signature[:-8],
            'unpadded': signature.rstrip('='),
            'base64url': base64.urlsafe_b64encode(raw).decode().rstrip('=') + '~',
            'hex': raw.hex(),
            'mime': signature[:76] + '\r\n' + signature[76:],
            'bit_flipped': base64.b64encode(bytes([raw[0] ^ 1]) + raw[1:]).decode(),
        }[how]
        return 'POST', fields[:-1] + [('Signature', signature)], None

    def _build_other_tx_signature(self, tx):
        other = self._create_mypos_transaction(reference=f'{tx.reference}-other', amount=5.0)
        return 'POST', self._signed(tx)[:-1] + [self._signed(other)[-1]], None

    def _build_swapped(self, tx, first, second):
        fields = self._signed(tx)
        fields[first], fields[second] = fields[second], fields[first]
        return 'POST', fields, None

    def _build_inserted(self, tx, position, name, value):
        fields = self._signed(tx)
        fields.insert(len(fields) if position is None else position, (name, self._value(tx, value)))
        return 'POST', fields, None

    def _build_dropped(self, tx, name):
        return 'POST', [(key, value) for key, value in self._signed(tx) if key != name], None

    def _build_signed_without(self, tx, name):
        fields = [(key, value) for key, value in self._notification_fields(tx) if key != name]
        return 'POST', self._sign(fields), None

    def _build_tampered(self, tx, name, value):
        return 'POST', [(key, value if key == name else v) for key, v in self._signed(tx)], None

    def _build_padded(self, tx, count):
        return 'POST', self._signed(tx) + [(f'X{i}', 'x') for i in range(count)], None

    def _build_body(self, _tx, body, content_type):
        return 'POST', body, {'Content-Type': content_type}

    def _build_non_utf8_form(self, tx):
        return 'POST', urlencode(self._signed(tx)).encode() + b'&Note=%ff%fe\xff', FORM

    def _build_json(self, tx):
        body = json.dumps(dict(self._signed(tx))).encode()
        return 'POST', body, {'Content-Type': 'application/json'}

    def _build_in_query(self, tx, method):
        headers = FORM if method == 'POST' else {}
        return method, b'' if method == 'POST' else None, {**headers, '_params': self._signed(tx)}

    def _build_put(self, tx):
        return 'PUT', self._signed(tx), None

    # === The test === #

    def _check_outcome(self, name, expected, response):
        status, text = response.status_code, response.text[:120]
        self.assertLess(status, 500, f"{name}: {status} {text}")
        if expected == REFUSED:
            self.assertEqual(status, 400, f"{name}: {status} {text}")
            self.assertTrue(text.startswith('REFUSED: '), text)
        elif expected == IDEMPOTENT:
            self.assertEqual((status, response.text), (200, 'OK'), name)
        else:
            self.assertIn(status, (405,) if expected == NOT_ALLOWED else (400, 413), name)
            self.assertNotEqual(response.text, 'OK')

    def test_forged_and_odd_notifications(self):
        results = []
        for index, (name, preparation, expected, build, *args) in enumerate(CASES):
            with self.subTest(case=name):
                tx = self._create_mypos_transaction(reference=f'FORGE-{index}')
                self._prepare(tx, preparation)
                method, body, headers = getattr(self, f'_build_{build}')(tx, *args)
                headers = dict(headers or {})
                params = headers.pop('_params', None)
                before, state_before = self._money_snapshot(), tx.state
                with mute_logger(*MUTED_LOGGERS):
                    response = self._raw(method, self.webhook_url, body, headers, params)
                after = self._money_snapshot()
                results.append(
                    {
                        'case': name,
                        'prior_state': state_before,
                        'expected': expected,
                        'status': response.status_code,
                        'answer': response.text[:120],
                        'money_state_unchanged': before == after,
                    }
                )
                self._check_outcome(name, expected, response)
                self.assertEqual(before, after, f"{name}: the money state changed")
                self.assertEqual(tx.state, state_before)
                if preparation == 'refunded':
                    refund = tx.child_transaction_ids
                    self.assertEqual((len(refund), refund.state, refund.amount), (1, 'done', -10.0))
        self.assertEqual(len(results), len(CASES))
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
