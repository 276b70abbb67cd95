# Part of payment_mypos. License LGPL-3.
"""The forged-message table: every forged or odd request to the webhook, one line per case. Each is
refused with its reason, logged (or, for a repeat, acknowledged idempotently), never answered with
a 5xx, and changes no money state of any transaction."""

import base64
import json
from urllib.parse import urlencode

from odoo.tests import tagged

from odoo.addons.payment_mypos.tests.common import SANDBOX_STORE_KEY, MyPOSCommon, generate_key_pair
from odoo.addons.payment_mypos.tests.common_reliability import CONTROLLER_LOGGER, RawHttpMixin

FORM = {'Content-Type': 'application/x-www-form-urlencoded'}
ONE_MB = 1024 * 1024
XML_NOTIFY = b'<IPC_response><IPCmethod>IPCPurchaseNotify</IPCmethod></IPC_response>'
BROKEN_MULTIPART = b'--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n'

# Outcomes: refused (400, "REFUSED: <reason>", the reason logged), idempotent (200 OK, nothing
# changes), 405, or too large (400 or 413).
REFUSED, IDEMPOTENT, NOT_ALLOWED, TOO_LARGE = 'refused', 'idempotent', 'not_allowed', 'too_large'
FORM_TYPE, OCTETS = FORM['Content-Type'], 'application/octet-stream'
MULTIPART = 'multipart/form-data; boundary=y'  # Not the body's boundary.
BIG_FORM = b'IPCmethod=IPCPurchaseNotify&Note=' + b'x' * ONE_MB
JSON_ONE_FIELD = b'{"IPCmethod": "IPCPurchaseNotify"}'

# The reasons given to myPOS (and logged), as far as they identify the refusal.
NO_SIGNATURE = "the message has no Signature as its last field"
NOT_VERIFIED = "the Signature does not verify with myPOS's certificate"
NO_FIELDS = "the message has no fields"
NO_TRANSACTION = "No transaction found matching OrderID"

# (case, state before, expected outcome, builder (a `_build_<name>` method below), its
# arguments). Every refusal of the webhook is here, once.
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
    ('amount tampered after signing', None, REFUSED, 'tampered', 'Amount', '1.00'),
    ('unsigned NUL byte in OrderID', None, REFUSED, 'unsigned', 'OrderID', '{order}\x00'),
    ('101 fields', None, REFUSED, 'padded', 90),
    # Content checked after the signature
    ('wrong SID (signed)', None, REFUSED, 'signed', 'SID', '000000000000011'),
    ('card token Odoo never asked for (signed)', None, REFUSED, 'signed', 'CardToken', 'TKN-1234'),
    ('amount +0.01 (signed)', None, REFUSED, 'signed', 'Amount', '{amount+0.01}'),
    ('amount -0.01 (signed)', None, REFUSED, 'signed', 'Amount', '{amount-0.01}'),
    ('amount with a decimal comma (signed)', None, REFUSED, 'signed', 'Amount', '{amount,}'),
    ('negative amount (signed)', None, REFUSED, 'signed', 'Amount', '-{amount}'),
    ('other currency USD (signed)', None, REFUSED, 'signed', 'Currency', 'USD'),
    ('currency in lower case (signed)', None, REFUSED, 'signed', 'Currency', 'eur'),
    ('unknown OrderID (signed)', None, REFUSED, 'signed', 'OrderID', 'S99999-1_deadbeef_9'),
    ("another provider's reference as OrderID", 'dummy', REFUSED, 'signed', 'OrderID', '{dummy}'),
    ('IPCPurchaseOK (a browser return)', None, REFUSED, 'signed', 'IPCmethod', 'IPCPurchaseOK'),
    ('IPCPurchaseCancel (browser)', None, REFUSED, 'signed', 'IPCmethod', 'IPCPurchaseCancel'),
    ('IPCRefund on the webhook (signed)', None, REFUSED, 'signed', 'IPCmethod', 'IPCRefund'),
    ('unknown IPCmethod (signed)', None, REFUSED, 'signed', 'IPCmethod', 'IPCPurchaseRefund'),
    # Pre-authorisation (docs/mypos-protocol.md §4.12): the messages of one kind never apply to
    # the other, nor where they do not belong.
    ('pre-auth notify for a purchase (signed)', None, REFUSED, 'preauth_notify'),
    ('purchase notify for a pre-auth (signed)', 'preauth', REFUSED, 'signed'),
    ('IPCPreAuthorizationOK (browser)', 'preauth', REFUSED, 'preauth_notify', 'IPCmethod', 'OK'),
    ('IPCPreAuthorizationCancel (browser)', 'preauth', REFUSED, 'preauth_cancel'),
    ('IPCPreAuthCompletion on the webhook', 'preauth', REFUSED, 'preauth_answer', 'Completion'),
    ('pre-auth notify without PreAuthExpDate', 'preauth', REFUSED, 'preauth_without', 'Exp'),
    (
        'pre-auth notify, PreAuthExpDate not a date',
        'preauth',
        REFUSED,
        'preauth_notify',
        'PreAuthExpDate',
        '261332',
    ),
    ('pre-auth notify, expiry re-cut into the date', 'preauth', REFUSED, 'preauth_recut'),
    ('replayed pre-auth notification', 'authorized', IDEMPOTENT, 'preauth_notify'),
    (
        'second authorisation, another IPC_Trnref',
        'authorized',
        REFUSED,
        'preauth_notify',
        'IPC_Trnref',
        '999999',
    ),
    ('pre-auth notify after cancel', 'preauth_cancel', REFUSED, 'preauth_notify'),
    # Payment methods (docs/mypos-protocol.md §4.13): one method, one the purchase offered.
    ('PaymentMethod not offered (signed)', 'card_only', REFUSED, 'signed', 'PaymentMethod', '2'),
    ('PaymentMethod as a list (signed)', 'card_only', REFUSED, 'signed', 'PaymentMethod', '1,2'),
    ('PaymentMethod 3 (signed)', None, REFUSED, 'signed', 'PaymentMethod', '3'),
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
    ('JSON body of one field', None, REFUSED, 'body', JSON_ONE_FIELD, 'application/json'),
    ('XML body', None, REFUSED, 'body', XML_NOTIFY, 'text/xml'),
    ('multipart body, broken boundary', None, REFUSED, 'body', BROKEN_MULTIPART, MULTIPART),
    ('signed fields in the query string of an empty POST', None, REFUSED, 'in_query', 'POST'),
    ('GET with the signed fields', None, NOT_ALLOWED, 'in_query', 'GET'),
    ('PUT with the signed fields', None, NOT_ALLOWED, 'put'),
]

# The reason of each refusal, as answered to myPOS and logged (as far as it identifies it).
REASONS = {
    'no signature': NO_SIGNATURE,
    'empty signature': NO_SIGNATURE,
    'signed with another key': NOT_VERIFIED,
    "signed with myPOS's public sandbox store key": NOT_VERIFIED,
    'signature truncated by 8 characters': NOT_VERIFIED,
    'signature without base64 padding': NOT_VERIFIED,
    'signature re-encoded base64url': NOT_VERIFIED,
    'signature re-encoded as hex': NOT_VERIFIED,
    'signature with MIME line breaks': NOT_VERIFIED,
    'signature with one bit flipped': NOT_VERIFIED,
    "another transaction's valid signature": NOT_VERIFIED,
    'fields reordered (Amount and Currency swapped)': "field 3 must be Amount, not 'Currency'",
    'extra field after the signature': NO_SIGNATURE,
    'extra empty field inserted': "field 6 must be IPC_Trnref, not 'Note'",
    'duplicate field (same value)': "the field OrderID appears twice",
    'duplicate field in another case': "the field OrderID appears twice",
    'signed field removed (PAN)': NOT_VERIFIED,
    'signed without IPC_Trnref': "field 6 must be IPC_Trnref, not 'RequestSTAN'",
    'signed without OrderID': "field 5 must be OrderID, not 'IPC_Trnref'",
    'signed without IPCmethod': "field 1 must be IPCmethod, not 'SID'",
    'value tampered after signing (PAN)': NOT_VERIFIED,
    'amount tampered after signing': NOT_VERIFIED,
    'unsigned NUL byte in OrderID': "the message holds a NUL character",
    '101 fields': "the message has more than 100 fields",
    'wrong SID (signed)': "for store 000000000000011, not this provider's store",
    'card token Odoo never asked for (signed)': "card token that Odoo never asked for",
    'amount +0.01 (signed)': "The amount 1111.12 does not match the transaction's 1111.11",
    'amount -0.01 (signed)': "The amount 1111.10 does not match the transaction's 1111.11",
    'amount with a decimal comma (signed)': "the Amount '1111,11' is not in myPOS's format",
    'negative amount (signed)': "the Amount '-1111.11' is not in myPOS's format",
    'other currency USD (signed)': "The currency USD does not match the transaction's EUR",
    'currency in lower case (signed)': "the Currency 'eur' is not in myPOS's format",
    'unknown OrderID (signed)': f"{NO_TRANSACTION} S99999-1_deadbeef_9.",
    "another provider's reference as OrderID": f"{NO_TRANSACTION} FORGE-",
    'IPCPurchaseOK (a browser return)': "IPCPurchaseOK is not accepted on this URL",
    'IPCPurchaseCancel (browser)': "IPCPurchaseCancel is not accepted on this URL",
    'IPCRefund on the webhook (signed)': "IPCRefund is not accepted on this URL",
    'unknown IPCmethod (signed)': "IPCPurchaseRefund is not accepted on this URL",
    'second payment, another IPC_Trnref': "already paid with myPOS reference 410227",
    'pre-auth notify for a purchase (signed)': "is a pre-authorisation's message",
    'PaymentMethod not offered (signed)': "which the purchase did not offer (1)",
    'PaymentMethod as a list (signed)': "PaymentMethod",
    'PaymentMethod 3 (signed)': "PaymentMethod",
    'purchase notify for a pre-auth (signed)': "is a purchase's message",
    'IPCPreAuthorizationOK (browser)': "IPCPreAuthorizationOK is not accepted on this URL",
    'IPCPreAuthorizationCancel (browser)': "IPCPreAuthorizationCancel is not accepted on this URL",
    'IPCPreAuthCompletion on the webhook': "IPCPreAuthCompletion is not accepted on this URL",
    'pre-auth notify without PreAuthExpDate': (
        "field 9 must be PreAuthExpDate, not 'BillingDescriptor'"
    ),
    'pre-auth notify, PreAuthExpDate not a date': "PreAuthExpDate",
    'pre-auth notify, expiry re-cut into the date': "is not in myPOS's format",
    'second authorisation, another IPC_Trnref': "already authorised with myPOS reference 410228",
    'pre-auth notify after cancel': "cancelled in Odoo; refusing the authorisation",
    'payment after cancel': "The transaction is cancelled in Odoo; refusing the payment",
    'empty body': NO_FIELDS,
    'non-UTF-8 form body': NO_SIGNATURE,
    'non-UTF-8 octet-stream body': "the body is not UTF-8",
    'JSON body': "field 1 must be IPCmethod, not '{",
    'JSON body of one field': "the body is not a valid form",
    'XML body': "the body is not a valid form",
    'multipart body, broken boundary': NO_FIELDS,
    'signed fields in the query string of an empty POST': NO_FIELDS,
}


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
        elif preparation == 'card_only':
            tx.mypos_payment_methods = '1'
        elif preparation in ('preauth', 'authorized', 'preauth_cancel'):
            tx.mypos_preauth = True
            if preparation == 'preauth_cancel':
                tx._set_canceled()
            if preparation == 'authorized':
                self.env.flush_all()
                response = self._raw('POST', self.webhook_url, self._preauth_signed(tx))
                self.assertEqual(
                    (response.status_code, response.text, tx.state), (200, 'OK', 'authorized')
                )
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

    def _preauth_signed(self, tx, name=None, value=None):
        overrides = {name: self._value(tx, value)} if name else {}
        if overrides.get('IPCmethod') == 'OK':
            overrides['IPCmethod'] = 'IPCPreAuthorizationOK'
        fields = self._notification_fields(tx, 'IPCPreAuthorizationNotify', **overrides)
        return self._sign(fields)

    def _build_preauth_notify(self, tx, name=None, value=None):
        return 'POST', self._preauth_signed(tx, name, value), None

    def _build_preauth_cancel(self, tx):
        fields = self._notification_fields(tx, 'IPCPreAuthorizationCancel')
        return 'POST', self._sign(fields), None

    def _build_preauth_answer(self, tx, what):
        fields = [
            ('IPCmethod', f'IPCPreAuth{what}'),
            ('Amount', f'{tx.amount:.2f}'),
            ('Currency', tx.currency_id.name),
            ('OrderID', tx.mypos_order_id),
            ('Status', '0'),
            ('StatusMsg', 'Success'),
        ]
        return 'POST', self._sign(fields), None

    def _build_preauth_without(self, tx, _what):
        fields = self._notification_fields(tx, 'IPCPreAuthorizationNotify')
        return 'POST', self._sign([f for f in fields if f[0] != 'PreAuthExpDate']), None

    def _build_preauth_recut(self, tx):
        """The signed values cut again at their '-': the expiry moved into the date's place."""
        fields = self._preauth_signed(tx)
        head = fields[:7]  # IPCmethod to RequestSTAN.
        recut = [
            ('RequestDateTime', '2026-11'),
            ('PreAuthExpDate', '24 14:49:48'),
            ('BillingDescriptor', '261224-myPOS  * TESTSTORE'),
        ]
        return 'POST', [*head, *recut, fields[-1]], None

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

    def _check_outcome(self, name, expected, reason, response):
        status, text = response.status_code, response.text[:160]
        self.assertLess(status, 500, f"{name}: {status} {text}")
        if expected == REFUSED:
            self.assertEqual(status, 400, f"{name}: {status} {text}")
            self.assertTrue(text.startswith('REFUSED: '), text)
            self.assertIn(reason, response.text, name)
        elif expected == IDEMPOTENT:
            self.assertEqual((status, response.text), (200, 'OK'), name)
        else:
            self.assertIn(status, (405,) if expected == NOT_ALLOWED else (400, 413), name)
            self.assertNotEqual(response.text, 'OK')

    def test_forged_and_odd_notifications(self):
        self.assertEqual(
            set(REASONS), {name for name, _p, expected, *_b in CASES if expected == REFUSED}
        )
        for index, (name, preparation, expected, build, *args) in enumerate(CASES):
            with self.subTest(case=name):
                tx = self._create_mypos_transaction(reference=f'FORGE-{index}')
                self._prepare(tx, preparation)
                method, body, headers = getattr(self, f'_build_{build}')(tx, *args)
                headers = dict(headers or {})
                params = headers.pop('_params', None)
                before, state_before = self._money_snapshot(), tx.state
                reason = REASONS[name] if expected == REFUSED else None
                if reason:  # Logged for the merchant, with the reason given.
                    with self.assertLogs(CONTROLLER_LOGGER, 'WARNING') as logs:
                        response = self._raw(method, self.webhook_url, body, headers, params)
                    self.assertIn(reason, '\n'.join(logs.output), name)
                else:
                    response = self._raw(method, self.webhook_url, body, headers, params)
                after = self._money_snapshot()
                self._check_outcome(name, expected, reason, response)
                self.assertEqual(before, after, f"{name}: the money state changed")
                self.assertEqual(tx.state, state_before)
                if preparation == 'refunded':
                    refund = tx.child_transaction_ids
                    self.assertEqual((len(refund), refund.state, refund.amount), (1, 'done', -10.0))
