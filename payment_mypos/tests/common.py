# Part of payment_mypos. License LGPL-3.

import contextlib
from urllib.parse import urlsplit

from odoo.tests import common as odoo_test_common
from odoo.tools import file_open

from odoo.addons.payment.tests.http_common import PaymentHttpCommon
from odoo.addons.payment_mypos import compat, ipc
from odoo.addons.payment_mypos.controllers.main import MyPOSController
from odoo.addons.payment_mypos.ipc import testing as ipc_testing

# What the tests write differently on Odoo 18.0 and 19.0 (the addon's own differences: compat.py).
SALE_LINE_TAXES = 'tax_ids' if compat.ODOO_19 else 'tax_id'  # sale.order.line's taxes
USER_GROUPS = 'group_ids' if compat.ODOO_19 else 'groups_id'  # res.users' groups


def refund(tx, amount):
    """Refund `amount` of the payment `tx` as the backend's Refund button does; the refund
    (18.0: `_send_refund_request` on the payment; 19.0: `_refund`)."""
    if compat.ODOO_19:
        return tx._refund(amount_to_refund=amount)
    return tx._send_refund_request(amount_to_refund=amount)


def allow_callbacks(case, browser=None):
    """Let requests the test did not make (the emulator's notifications, a browser's) reach Odoo
    while the test waits for them: 19.0's HttpCase refuses any request without its test cookie
    outside of this; 18.0 lets them all in."""
    if compat.ODOO_19:
        return case.allow_requests(browser=browser, all_requests=True)
    return contextlib.nullcontext()


def reading(case):
    """Hold Odoo's test HTTP server off while the test reads through the cursor it shares with
    the requests (a browser's, the emulator's): 18.0's registry test lock, 19.0's module one."""
    if compat.ODOO_19:
        return odoo_test_common._registry_test_lock
    return case.registry.test_lock


def generate_key_pair(bits=1024):
    """Return (private key PEM, self-signed certificate PEM) of a throw-away RSA pair."""
    return ipc_testing.generate_key_pair(bits)


public_key_pem = ipc.public_key_pem


def read_addon_file(path):
    with file_open(f'payment_mypos/{path}') as file:
        return file.read()


def read_test_file(name):
    return read_addon_file(f'tests/data/{name}')


SANDBOX_STORE_KEY = read_addon_file('data/sandbox/store-private-key.pem')

# The loggers whose warnings tests expect, each muted only where a test expects it: a call to
# myPOS without a usable answer; a person asked to check a payment; the status check; saved cards
# and charges; refunds and reversals.
CALLS_LOGGER = 'odoo.addons.payment_mypos.models.payment_provider'
PEOPLE_LOGGER = 'odoo.addons.payment_mypos.models.payment_transaction_people'
STATUS_LOGGER = 'odoo.addons.payment_mypos.models.payment_transaction_status'
TOKEN_LOGGER = 'odoo.addons.payment_mypos.models.payment_transaction_token'
REFUND_LOGGER = 'odoo.addons.payment_mypos.models.payment_transaction_refund'

# The provider fields only administrators may see: the credentials and what is derived from them.
SECRET_FIELDS = [
    'mypos_sid',
    'mypos_wallet_number',
    'mypos_key_index',
    'mypos_private_key',
    'mypos_private_key_pem',
    'mypos_public_certificate',
    'mypos_configuration_pack',
    'mypos_private_key_info',
    'mypos_disconnected_sid',
    'mypos_last_test_result',
    'mypos_environment_warning',
]


class MyPOSCommon(PaymentHttpCommon):
    """A myPOS provider in test state whose "myPOS certificate" is a throw-away pair's, so that the
    tests can sign notifications as myPOS would."""

    @classmethod
    def _request_handler(cls, s, r, /, **kw):
        """Override of `odoo.tests` to let a call to the loopback emulator keep its (connect, read)
        timeouts: 19.0's check of the timeout (raised to 10 s in tests) refuses a pair."""
        if isinstance(kw.get('timeout'), tuple) and urlsplit(r.url).hostname == '127.0.0.1':
            return odoo_test_common._super_send(s, r, **kw)
        return super()._request_handler(s, r, **kw)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.mypos_private_key, cls.mypos_certificate = generate_key_pair()
        cls.provider = cls._prepare_provider(
            'mypos',
            update_values={
                'mypos_public_certificate': cls.mypos_certificate,
            },
        )
        cls.payment_method = cls.env.ref('payment.payment_method_card')
        cls.payment_method_id = cls.payment_method.id
        cls.payment_method_code = cls.payment_method.code
        cls.currency = cls.currency_euro
        cls.webhook_url = MyPOSController._webhook_url
        cls.return_url = MyPOSController._return_url
        cls.cancel_url = MyPOSController._cancel_url

    def setUp(self):
        super().setUp()
        # The calls recorded before sending are committed on a connection of their own, outside
        # the test's transaction: each test removes its own.
        Outbox = self.env['payment.mypos.outbox']
        with Outbox._mypos_cursor() as cr:
            cr.execute('SELECT COALESCE(MAX(id), 0) FROM payment_mypos_outbox')
            self._outbox_before = cr.fetchone()[0]
        self.addCleanup(self._forget_outbox, self._outbox_before)

    def _forget_outbox(self, last_id):
        with self.env['payment.mypos.outbox']._mypos_cursor() as cr:
            cr.execute('DELETE FROM payment_mypos_outbox WHERE id > %s', [last_id])

    def _outbox(self):
        """The calls this test recorded (committed) before sending them, oldest first."""
        with self.env['payment.mypos.outbox']._mypos_cursor() as cr:
            cr.execute(
                'SELECT * FROM payment_mypos_outbox WHERE id > %s ORDER BY id',
                [self._outbox_before],
            )
            return cr.dictfetchall()

    def _create_mypos_transaction(self, **values):
        tx = self._create_transaction('redirect', **values)
        tx._mypos_get_order_id()
        return tx

    def _notification_fields(self, tx, method='IPCPurchaseNotify', **overrides):
        """Return the unsigned fields myPOS posts for `tx`, in myPOS's order
        (https://developers.mypos.com/apis/checkout-api/purchase-notify)."""
        fields = [
            ('IPCmethod', method),
            ('SID', ipc.const.SANDBOX_SID),
            ('Amount', f'{tx.amount:.2f}'),
            ('Currency', tx.currency_id.name),
            ('OrderID', tx.mypos_order_id),
        ]
        if method in ('IPCPurchaseNotify', 'IPCPurchaseOK'):
            fields += [
                ('IPC_Trnref', '410227'),
                ('RequestSTAN', '083107'),
                ('RequestDateTime', '2026-11-24 14:49:48'),
                ('PaymentMethod', '1'),
                ('BillingDescriptor', 'myPOS  * TESTSTORE'),
                ('PAN', '0007'),
                ('CardType', '3'),
            ]
        elif method == 'IPCPreAuthorizationNotify':
            # https://developers.mypos.com/apis/checkout-api/pre-authorization-notify
            fields += [
                ('IPC_Trnref', '410228'),
                ('RequestSTAN', '083108'),
                ('RequestDateTime', '2026-11-24 14:49:48'),
                ('PreAuthExpDate', '261224'),
                ('BillingDescriptor', 'myPOS  * TESTSTORE'),
            ]
        fields = [(name, overrides.pop(name, value)) for name, value in fields]
        return fields + list(overrides.items())

    def _sign(self, fields, private_key=None):
        return ipc.sign_fields(fields, private_key or self.mypos_private_key)

    def _post(self, url, data, **kwargs):
        """POST `data` (pairs, kept in order, or raw bytes) through the real HTTP server."""
        response = self.url_open(url, data=data, allow_redirects=False, **kwargs)
        self.env.invalidate_all()
        return response
