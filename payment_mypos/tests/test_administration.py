# Part of payment_mypos. License LGPL-3.
"""Provider administration (issue 4): test connection, disconnect, capabilities, configuration
pack, access to the credentials.

The connection tests talk to the fake myPOS (`ipc.testing.FakeMyPOS`, in place of the HTTP
exchange): its signed answers, fault switches and store settings produce each failure.
"""

import base64
import json
import socket
from unittest.mock import patch

from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged

from odoo.addons.payment_mypos import const, ipc, utils
from odoo.addons.payment_mypos.ipc.testing import FakeMyPOS
from odoo.addons.payment_mypos.tests.common import (
    SANDBOX_STORE_KEY,
    MyPOSCommon,
    generate_key_pair,
    read_test_file,
)
from odoo.addons.payment_mypos.tests.common_fake import TRANSPORT_POST

LIVE_SID = '000000000012345'
LIVE_WALLET = '40012345678'


def make_pack(**values):
    """Return the base64 Configuration Pack of `values` (docs/mypos-protocol.md §6.3)."""
    return base64.b64encode(json.dumps(values).encode()).decode()


def closed_port_url():
    """Return a loopback URL on which nothing listens."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    return f'http://127.0.0.1:{port}/vmp/checkout-test'


class MyPOSAdministrationCommon(MyPOSCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.store_key, cls.store_certificate = generate_key_pair()
        cls.live_values = {
            'mypos_sid': LIVE_SID,
            'mypos_wallet_number': LIVE_WALLET,
            'mypos_key_index': 3,
            'mypos_private_key': cls.store_key,
            'mypos_public_certificate': cls.mypos_certificate,
        }


@tagged('post_install', '-at_install')
class TestConnection(MyPOSAdministrationCommon):
    """One test per failure class of the test connection, against the fake myPOS."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # The fake plays myPOS's public sandbox store (its SID, wallet, key index 1, and the
        # sandbox store key to verify requests), with a throw-away myPOS key pair of its own.
        cls.mypos = FakeMyPOS(SANDBOX_STORE_KEY, key_pair=generate_key_pair())
        cls.startClassPatcher(patch(TRANSPORT_POST, cls.mypos.post))

    def setUp(self):
        super().setUp()
        self.mypos.reset()
        self.env['ir.config_parameter'].set_param('payment_mypos.sandbox_url', self.mypos.url)
        # Test state, empty credentials (the sandbox store's), the fake's certificate.
        self.provider.mypos_public_certificate = self.mypos.certificate_pem

    def _test_connection(self, expect_success=False):
        action = self.provider.action_mypos_test_connection()
        self.assertEqual(action['tag'], 'display_notification')
        self.assertEqual(action['params']['type'], 'success' if expect_success else 'danger')
        # The outcome is recorded on the provider, failure included.
        self.assertEqual(self.provider.mypos_last_test_success, expect_success)
        self.assertTrue(self.provider.mypos_last_test_date)
        self.assertEqual(self.provider.mypos_last_test_result, action['params']['message'])
        return self.provider.mypos_last_test_result

    def test_success(self):
        """A signed answer that verifies with the configured certificate is a success."""
        outcome = self._test_connection(expect_success=True)
        self.assertIn("signature verifies", outcome)
        calls = self.mypos.api_calls()
        self.assertEqual([call['method'] for call in calls], ['IPCGetTxnStatus'])
        self.assertTrue(calls[0]['order_id'].startswith('odoo_connection_test_'))
        # Each test asks about a fresh dummy order.
        self._test_connection(expect_success=True)
        self.assertNotEqual(self.mypos.api_calls()[1]['order_id'], calls[0]['order_id'])

    def test_unreachable(self):
        self.env['ir.config_parameter'].set_param('payment_mypos.sandbox_url', closed_port_url())
        self.assertIn("Endpoint unreachable", self._test_connection())

    def test_timeout(self):
        """An answer later than the request timeout is reported as a timeout (that the call is
        given up at its deadline is integration_tests/' business: it needs a real socket)."""
        self.mypos.set_faults(api_timeout=ipc.const.REQUEST_TIMEOUT + 5, api_faults_remaining=1)
        outcome = self._test_connection()
        self.assertIn("Endpoint timed out", outcome)
        self.assertEqual(len(self.mypos.api_calls()), 1)

    def test_http_error_and_garbage(self):
        self.mypos.set_faults(api_http_status=503, api_faults_remaining=1)
        self.assertIn("Endpoint error", self._test_connection())
        self.assertIn("503", self.provider.mypos_last_test_result)
        self.mypos.set_faults(api_garbage=True, api_faults_remaining=1)
        self.assertIn("Not a myPOS answer", self._test_connection())

    def test_request_signature_refused(self):
        """myPOS refuses a request signed with a key it does not have: private key or index."""
        self.provider.mypos_private_key = self.store_key
        outcome = self._test_connection()
        self.assertIn("Request signature refused", outcome)
        self.assertIn("E_SIGNATURE_FAILED", outcome)
        self.assertEqual(self.mypos.api_calls()[0]['status'], 2)

    def test_wrong_key_index(self):
        self.provider.mypos_key_index = 2
        outcome = self._test_connection()
        self.assertIn("key index (2) is not the store's latest", outcome)

    def test_invalid_sid(self):
        self.provider.mypos_sid = '000000000000011'
        outcome = self._test_connection()
        self.assertIn("Invalid Store ID (SID)", outcome)
        self.assertIn("E_INVALID_SID", outcome)

    def test_wallet_problem(self):
        self.provider.mypos_wallet_number = '61938166611'
        outcome = self._test_connection()
        self.assertIn("Wallet or store problem", outcome)
        self.assertIn("E_INVALID_PARAMS", outcome)

    def test_answer_signature_does_not_verify(self):
        """The configured myPOS certificate is not the one myPOS signs with."""
        self.provider.mypos_public_certificate = self.mypos_certificate
        outcome = self._test_connection()
        self.assertIn("The answer's signature does not verify", outcome)
        self.assertIn("myPOS certificate", outcome)
        # Same outcome when the answer itself is tampered with.
        self.provider.mypos_public_certificate = self.mypos.certificate_pem
        self.mypos.set_faults(api_bad_signature=True, api_faults_remaining=1)
        self.assertIn("The answer's signature does not verify", self._test_connection())

    def test_live_credentials_in_test_state(self):
        """A live store's credentials against the sandbox are refused; the outcome says why."""
        self.provider.write(self.live_values)
        self.provider.mypos_public_certificate = self.mypos.certificate_pem
        outcome = self._test_connection()
        self.assertIn("Live credentials in test mode?", outcome)
        self.assertEqual(self.mypos.api_calls()[0]['status'], 4)

    def test_sandbox_credentials_in_live_state(self):
        """Sandbox credentials in live state are refused before anything is sent."""
        self.env['ir.config_parameter'].set_param('web.base.url', 'https://shop.example.com')
        self.provider.write(
            {
                'state': 'enabled',
                'mypos_sid': ipc.const.SANDBOX_SID,
                'mypos_wallet_number': ipc.const.SANDBOX_WALLET_NUMBER,
                'mypos_key_index': ipc.const.SANDBOX_KEY_INDEX,
                'mypos_private_key': SANDBOX_STORE_KEY,
            }
        )
        outcome = self._test_connection()
        self.assertIn("Sandbox credentials in live mode", outcome)
        self.assertFalse(self.mypos.api_calls())

    def test_webhook_url_in_live_state(self):
        """In live state the webhook must be public https on the default port."""
        self.provider.write(dict(self.live_values, state='enabled'))
        self.env['ir.config_parameter'].set_param('web.base.url', 'http://localhost:8069')
        outcome = self._test_connection()
        self.assertIn("is not https", outcome)
        self.assertIn("port 8069", outcome)
        self.assertIn("cannot reach from the internet", outcome)
        self.assertFalse(self.mypos.api_calls())
        cases = {
            'https://shop.example.com': 0,
            'https://shop.example.com:8443': 1,
            'https://127.0.0.1': 1,
            'https://192.168.1.20': 1,
            'https://odoo.localhost': 1,
            'http://shop.example.com': 1,
        }
        for base_url, count in cases.items():
            with self.subTest(base_url=base_url):
                self.env['ir.config_parameter'].set_param('web.base.url', base_url)
                self.assertEqual(len(self.provider._mypos_webhook_problems()), count)

    def test_disabled_provider_refused(self):
        self.provider.state = 'disabled'
        with self.assertRaisesRegex(UserError, "disabled"):
            self.provider.action_mypos_test_connection()


@tagged('post_install', '-at_install')
class TestDisconnect(MyPOSAdministrationCommon):
    def test_disconnect_then_notification(self):
        """Disconnecting asks with the count of open payments, clears the credentials but the
        certificate, and a notification for a payment under way is still applied."""
        self.provider.write(self.live_values)
        tx = self._create_mypos_transaction()
        pending_tx = self._create_mypos_transaction(reference='Test Transaction 2')
        pending_tx._set_pending()
        done_tx = self._create_mypos_transaction(reference='Test Transaction 3')
        done_tx._set_done()

        action = self.provider.action_mypos_disconnect()
        self.assertEqual(action['res_model'], 'payment.mypos.disconnect.wizard')
        wizard = self.env[action['res_model']].with_context(**action['context']).create({})
        self.assertEqual(wizard.provider_id, self.provider)
        self.assertEqual(wizard.open_transaction_count, 2)
        self.assertIn("2 myPOS transaction(s)", wizard.summary)

        with self.assertLogs('odoo.addons.payment_mypos.models.payment_provider_admin') as logs:
            wizard.action_confirm()
        self.assertIn(
            f"disconnected from provider {self.provider.id} by user {self.env.uid} (2 open",
            logs.output[0],
        )
        self.assertEqual(self.provider.state, 'disabled')
        self.assertFalse(self.provider.mypos_sid)
        self.assertFalse(self.provider.mypos_wallet_number)
        self.assertFalse(self.provider.mypos_key_index)
        self.assertFalse(self.provider.mypos_private_key_pem)
        self.assertEqual(self.provider.mypos_public_certificate, self.mypos_certificate)

        # myPOS notifies the payment that was under way: it is verified and applied.
        fields = self._notification_fields(tx, SID=LIVE_SID)
        response = self._post(self.webhook_url, self._sign(fields))
        self.assertEqual((response.status_code, response.text), (200, 'OK'))
        self.assertEqual(tx.state, 'done')
        # A message not signed by myPOS is still refused.
        other_key, _certificate = generate_key_pair()
        fields = self._notification_fields(pending_tx, SID=LIVE_SID)
        response = self._post(self.webhook_url, self._sign(fields, other_key))
        self.assertEqual(response.status_code, 400)
        self.assertEqual(pending_tx.state, 'pending')

    def test_disconnect_without_open_payments(self):
        self.provider.write(self.live_values)
        action = self.provider.action_mypos_disconnect()
        wizard = self.env[action['res_model']].with_context(**action['context']).create({})
        self.assertEqual(wizard.open_transaction_count, 0)
        self.assertIn("No myPOS transaction", wizard.summary)


@tagged('post_install', '-at_install')
class TestConfigurationPack(MyPOSAdministrationCommon):
    def setUp(self):
        super().setUp()
        self.sandbox_pack = read_test_file('configuration-pack-test.b64.txt')

    def test_import_good_pack(self):
        """The sandbox pack fills the five credentials; the pack itself is never read back."""
        result = self.provider.web_save(
            {'mypos_configuration_pack': self.sandbox_pack},
            {'mypos_configuration_pack': {}, 'mypos_sid': {}, 'mypos_environment_warning': {}},
        )
        self.assertFalse(result[0]['mypos_configuration_pack'])
        self.assertEqual(result[0]['mypos_sid'], ipc.const.SANDBOX_SID)
        self.assertFalse(result[0]['mypos_environment_warning'])
        self.assertEqual(
            (
                self.provider.mypos_sid,
                self.provider.mypos_wallet_number,
                self.provider.mypos_key_index,
            ),
            (ipc.const.SANDBOX_SID, ipc.const.SANDBOX_WALLET_NUMBER, ipc.const.SANDBOX_KEY_INDEX),
        )
        self.assertEqual(self.provider.mypos_private_key_pem, ipc.normalize_pem(SANDBOX_STORE_KEY))
        self.assertIn('BEGIN CERTIFICATE', self.provider.mypos_public_certificate)

        action = self.provider.action_mypos_import_configuration_pack()
        self.assertEqual(action['params']['type'], 'success')
        for value in (ipc.const.SANDBOX_SID, ipc.const.SANDBOX_WALLET_NUMBER, 'key index: 1'):
            self.assertIn(value, action['params']['message'])

    def test_malformed_pack_refused(self):
        """A malformed pack is refused with a clear message and changes nothing."""
        self.provider.write(self.live_values)
        good = json.loads(base64.b64decode(self.sandbox_pack))
        cases = {
            'not base64 !': "not base64-encoded JSON",
            base64.b64encode(b'<xml/>').decode(): "not base64-encoded JSON",
            make_pack(**{k: v for k, v in good.items() if k != 'pk'}): "lacks pk",
            make_pack(**dict(good, sid='12AB')): "Store ID",
            make_pack(**dict(good, idx='x')): "key index",
            make_pack(**dict(good, pc='garbage')): "myPOS certificate",
            make_pack(**dict(good, extra='1')): "unknown keys",
            self.sandbox_pack[:-20]: "not base64-encoded JSON",
        }
        for pack, reason in cases.items():
            with self.subTest(reason=reason):
                with self.assertRaisesRegex(ValidationError, f"cannot be imported.*{reason}"):
                    self.provider.write({'mypos_configuration_pack': pack})
                self.assertEqual(self.provider.mypos_sid, LIVE_SID)
                self.assertEqual(self.provider.mypos_wallet_number, LIVE_WALLET)
                self.assertEqual(self.provider.mypos_key_index, 3)
                self.assertEqual(self.provider.mypos_private_key_pem, self.store_key)
                self.assertEqual(self.provider.mypos_public_certificate, self.mypos_certificate)

    def test_sandbox_pack_in_live_state_warns(self):
        self.provider.write(dict(self.live_values, state='enabled'))
        self.assertFalse(self.provider.mypos_environment_warning)
        self.provider.write({'mypos_configuration_pack': self.sandbox_pack})
        self.assertEqual(self.provider.mypos_sid, ipc.const.SANDBOX_SID)
        self.assertIn("public sandbox credentials", self.provider.mypos_environment_warning)
        action = self.provider.action_mypos_import_configuration_pack()
        self.assertEqual(action['params']['type'], 'warning')
        self.assertIn("public sandbox credentials", action['params']['message'])

    def test_live_pack_in_test_state_warns(self):
        pack = make_pack(
            sid=LIVE_SID,
            cn=LIVE_WALLET,
            idx=3,
            pk=self.store_key,
            pc=self.mypos_certificate,
        )
        self.provider.write({'mypos_configuration_pack': pack})
        self.assertEqual((self.provider.mypos_sid, self.provider.mypos_key_index), (LIVE_SID, 3))
        self.assertIn("Test Mode", self.provider.mypos_environment_warning)
        self.provider.state = 'enabled'
        self.assertFalse(self.provider.mypos_environment_warning)


@tagged('post_install', '-at_install')
class TestCapabilities(MyPOSAdministrationCommon):
    def _compatible(self, report=None):
        return self.env['payment.provider']._get_compatible_providers(
            self.company.id,
            self.partner.id,
            self.amount,
            currency_id=self.currency.id,
            report=report,
        )

    def test_capabilities_are_shown_not_stored(self):
        """Online payments on, terminal payments "coming soon": shown, with no column of their
        own, and myPOS is offered at checkout."""
        self.assertEqual(
            (self.provider.mypos_online_payments, self.provider.mypos_terminal_payments),
            (True, False),
        )
        for name in ('mypos_online_payments', 'mypos_terminal_payments'):
            self.assertFalse(self.provider._fields[name].store, name)
        self.assertIn(self.provider, self._compatible())
        self.assertFalse(self.env['payment.provider'].new({'code': 'none'}).mypos_online_payments)


@tagged('post_install', '-at_install')
class TestCredentialAccess(MyPOSAdministrationCommon):
    """Item 6: no secret reaches the log (who may read the credentials: test_secrets.py)."""

    def test_no_secret_in_log(self):
        """Importing a pack and testing the connection log no private key nor pack."""
        pack = make_pack(
            sid=LIVE_SID,
            cn=LIVE_WALLET,
            idx=3,
            pk=self.store_key,
            pc=self.mypos_certificate,
        )
        self.env['ir.config_parameter'].set_param('payment_mypos.sandbox_url', closed_port_url())
        with self.assertLogs('odoo.addons.payment_mypos', level='DEBUG') as logs:
            self.provider.write({'mypos_configuration_pack': pack})
            self.provider.action_mypos_test_connection()
            with self.assertRaises(ValidationError):
                self.provider.write({'mypos_configuration_pack': pack[:-8]})
        output = '\n'.join(logs.output)
        key_lines = [line for line in self.store_key.splitlines() if 'PRIVATE KEY' not in line]
        for secret in [pack, pack[:40], *key_lines, *SANDBOX_STORE_KEY.splitlines()[1:-1]]:
            self.assertNotIn(secret.strip(), output)


@tagged('post_install', '-at_install')
class TestProviderForm(MyPOSAdministrationCommon):
    def test_form_renders_administration(self):
        """The provider form shows the administration parts, in a real browser, without error."""
        self.provider.write(
            {
                'mypos_last_test_date': '2026-11-24 10:00:00',
                'mypos_last_test_result': "Endpoint unreachable: (test)",
                'mypos_last_test_success': False,
            }
        )
        code = """
            const waitFor = async (selector) => {
                for (let attempt = 0; attempt < 150; attempt++) {
                    const element = document.querySelector(selector);
                    if (element) {
                        return element;
                    }
                    await new Promise((resolve) => setTimeout(resolve, 100));
                }
                throw new Error(`not found: ${selector}`);
            };
            (async () => {
                await waitFor("button[name='action_mypos_test_connection']");
                await waitFor("button[name='action_mypos_disconnect']");
                await waitFor("div[name='mypos_configuration_pack']");
                const failed = await waitFor(".alert-danger div[name='mypos_last_test_result']");
                if (!failed.textContent.includes('Endpoint unreachable')) {
                    throw new Error('last test outcome not shown');
                }
                document.querySelector("a[name='configuration']").click();
                await waitFor("div[name='mypos_online_payments']");
                await waitFor("div[name='mypos_terminal_payments']");
                console.log('test successful');
            })().catch((error) => console.error(error.message));
        """
        self.browser_js(
            f'/odoo/action-payment.action_payment_provider/{self.provider.id}',
            code,
            login='admin',
            timeout=90,
        )


@tagged('post_install', '-at_install')
class TestStatusExplanations(MyPOSAdministrationCommon):
    def test_every_status_explained(self):
        """Each status myPOS documents has a name and an explanation with cause and fix
        (https://developers.mypos.com/apis/checkout-api/checkout-getting-started/error-messages)."""
        for code in [*range(26), 99]:
            with self.subTest(code=code):
                self.assertIn(code, ipc.const.STATUS_NAMES)
                explanation = str(const.STATUS_EXPLANATIONS.get(code) or '')
                self.assertTrue(explanation)
                text = utils.explain_status(self.env, str(code), "myPOS message")
                if code:
                    self.assertIn(ipc.const.STATUS_NAMES[code], text)
                    self.assertIn(explanation, text)
                    self.assertIn("myPOS message", text)
