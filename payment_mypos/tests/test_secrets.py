# Part of payment_mypos. License LGPL-3.
"""The store's secrets never reach a non-admin, a browser or a log (docs/RELIABILITY.md)."""

import base64
import json
import logging

from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.payment_mypos.tests.common import (
    SECRET_FIELDS,
    USER_GROUPS,
    MyPOSCommon,
    generate_key_pair,
)
from odoo.addons.payment_mypos.tests.common_reliability import RawHttpMixin


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
    """Credentials out of reach of non-admins through RPC and the payment pages; the
    private key in no log line, error message or form."""

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
                USER_GROUPS: [
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
                USER_GROUPS: [(6, 0, [cls.env.ref('base.group_portal').id])],
            }
        )
        cls.public_user = cls.env.ref('base.public_user')

    def _secrets(self):
        """The texts that must never be shown: the private key (body, each line, start)."""
        return [self.key_body, self.key_body[:40], *[line for line in self.key_lines if line]]

    def _assert_no_secret(self, text, where):
        for secret in self._secrets():
            self.assertNotIn(secret, text, f"private key material in {where}")

    def test_credentials_admin_only(self):
        """No credential reaches a non-admin: not through the model (admin-only), and not even if
        another module opened the model to everyone (with export rights)."""
        users = (self.internal_user, self.portal_user, self.public_user)
        for field in SECRET_FIELDS:  # sudo() code must not leak them either.
            self.assertEqual(self.provider._fields[field].groups, 'base.group_system', field)
        for user in users:
            with self.subTest(user=user.login), self.assertRaises(AccessError):
                self.provider.with_user(user).read(['name'])
        self.env['ir.model.access'].create(
            [
                {
                    'name': f'test read payment.provider {group.name}',
                    'model_id': self.env['ir.model']._get_id('payment.provider'),
                    'group_id': group.id,
                    'perm_read': True,
                }
                for group in self.env.ref('base.group_user')
                + self.env.ref('base.group_portal')
                + self.env.ref('base.group_public')
            ]
        )
        for user in users:
            provider = self.provider.with_user(user)
            self.assertEqual(provider.read(['name'])[0]['name'], self.provider.name)
            self.assertFalse(set(SECRET_FIELDS) & set(provider.fields_get()))
            for field in SECRET_FIELDS:
                with self.subTest(user=user.login, field=field):
                    with self.assertRaises(AccessError):
                        provider.read([field])
                    with self.assertRaises(AccessError):
                        provider.search_read([('id', '=', self.provider.id)], [field])
                    if self.provider._fields[field].store:  # Nor can the values be probed.
                        with self.assertRaises(AccessError):
                            provider.search([(field, '!=', False)])
                    # Without export rights: UserError; with them (the internal user), an
                    # AccessError or empty cells.
                    try:
                        rows = provider.export_data([field])['datas']
                    except (AccessError, UserError):
                        rows = []
                    self.assertFalse(any(cell for row in rows for cell in row), field)
            # The transaction, which they may see in the portal, carries no credential.
            tx_fields = set(self.env['payment.transaction'].with_user(user).fields_get())
            self.assertFalse({f for f in tx_fields if 'private' in f or 'wallet' in f})

    def test_json_rpc_as_internal_user(self):
        """/web/dataset/call_kw as a logged-in internal user: no credential in any answer."""
        self.authenticate('rel_internal', 'rel_internal_pw1')
        calls = [
            ('read', [[self.provider.id], SECRET_FIELDS], {}),
            ('read', [[self.provider.id]], {}),
            ('search_read', [[('id', '=', self.provider.id)]], {'fields': []}),
            ('search_read', [[('mypos_private_key_pem', 'ilike', 'M')]], {'fields': ['name']}),
            ('export_data', [[self.provider.id], ['mypos_private_key_pem', 'mypos_sid']], {}),
            ('fields_get', [], {}),
            (
                'web_read',
                [[self.provider.id]],
                {'specification': {field: {} for field in SECRET_FIELDS}},
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
            if method != 'fields_get':
                self.assertIn('error', response.json(), f'{method}: {text[:300]}')

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
        try:
            # 1. Rendering the redirect form.
            tx = self._create_mypos_transaction(reference='REL-SECRET-1')
            html = tx._get_processing_values()['redirect_form_html']
            self._assert_no_secret(html, 'the redirect form')
            self.assertNotIn('BEGIN CERTIFICATE', html)
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
            # 3. Browser return and cancel.
            self._raw(
                'POST',
                self.return_url,
                self._sign(self._notification_fields(tx, method='IPCPurchaseOK', SID=self.sid)),
            )
            # 4. Refund (myPOS unreachable) and status check.
            try:
                tx.action_refund(amount_to_refund=1.0)
            except (UserError, ValidationError) as error:
                errors.append(str(error))
            for child in tx.child_transaction_ids:
                errors.append(child.state_message or '')
            tx2 = self._create_mypos_transaction(reference='REL-SECRET-2')
            tx2._mypos_check_status()
            # 5. Test connection.
            _ok, message = self.provider._mypos_test_connection()
            errors.append(message)
            # 6. Errors around the key itself: a broken key, a truncated one, a key as the
            #    certificate, a broken configuration pack.
            broken = self.store_key.replace(self.key_lines[3], self.key_lines[3][::-1])
            for values in (
                {'mypos_private_key': broken},
                {'mypos_private_key': self.store_key[: len(self.store_key) // 2]},
                {'mypos_public_certificate': self.store_key},
                {'mypos_configuration_pack': base64.b64encode(self.store_key.encode()).decode()},
            ):
                try:
                    with self.env.cr.savepoint():
                        self.provider.write(values)
                except (UserError, ValidationError) as error:
                    errors.append(str(error))
                else:
                    errors.append('')  # Accepted: nothing to leak (certificate = key's public?)
        finally:
            root.removeHandler(capture)
            root.setLevel(levels[0])
            odoo_logger.setLevel(levels[1])
        log_text = '\n'.join(capture.records)
        self.assertGreater(len(capture.records), 5)
        self._assert_no_secret(log_text, 'the logs')
        self._assert_no_secret('\n'.join(errors), 'an error message')

    def other_key(self):
        return generate_key_pair()[0]
