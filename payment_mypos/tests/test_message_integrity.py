# Part of payment_mypos. License LGPL-3.
"""Message integrity (docs/RELIABILITY.md): myPOS signs values, not names nor boundaries
(docs/mypos-protocol.md §3.3a). A shopper holding a genuine myPOS signature (the cancel of their
own payment) re-cuts its values at '-' and re-names the pieces; none of that may change any money
state."""

import json
import socket
from datetime import timedelta
from urllib.parse import urlencode, urlsplit

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odoo import Command, fields
from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.payment_mypos import ipc
from odoo.addons.payment_mypos.tests.common import (
    SALE_LINE_TAXES,
    allow_callbacks,
    generate_key_pair,
    read_test_file,
)
from odoo.addons.payment_mypos.tests.common_fake import MyPOSFakeCommon
from odoo.addons.payment_mypos.tests.common_reliability import (
    CONTROLLER_LOGGER,
    RawHttpMixin,
)

# The names an attacker would put on the pieces: every name the module reads, and some others.
NAMES = (*ipc.const.FORM_LAYOUTS['IPCPurchaseNotify'], 'ipcmethod', 'CardType', 'RequestSTAN', 'x')
LEGACY_TAG = 'c0ffee00'


def recut(fields, cuts, names):
    """Return the values of `fields` joined with '-', cut again after the given tokens, named."""
    tokens = '-'.join(value for _name, value in fields).split('-')
    bounds = [0, *sorted(cuts), len(tokens)]
    values = ['-'.join(tokens[start:end]) for start, end in zip(bounds, bounds[1:], strict=False)]
    return list(zip(names, values, strict=True))


@tagged('post_install', '-at_install')
class TestReCutMessages(RawHttpMixin, MyPOSFakeCommon):
    """The attack of the integrity issue, end to end over the real HTTP server and the fake."""

    def setUp(self):
        super().setUp()
        documents = {}
        self.order = None  # The victim's sales order, when sale is installed.
        if 'sale.order' in self.env:
            product = self.env['product.product'].create({'name': "Chair", 'list_price': 1000.0})
            self.order = self.env['sale.order'].create(
                {
                    'partner_id': self.partner.id,
                    'order_line': [
                        Command.create({'product_id': product.id, 'price_unit': 1000.0})
                    ],
                }
            )
            self.order.order_line[SALE_LINE_TAXES] = False
            documents = {'sale_order_ids': [Command.set(self.order.ids)]}
        self.victim = self._create_mypos_transaction(amount=1000.0, reference='S31353', **documents)

    def _attacker_tx(self, reference, legacy_order_id=None):
        """The shopper's own transaction; `legacy_order_id` as issued before OrderIDs lost '-'."""
        tx = self._create_transaction('redirect', amount=1000.0, reference=reference)
        if legacy_order_id:
            tx.mypos_order_id = legacy_order_id
        tx._mypos_get_order_id()
        return tx

    def _signed_cancel(self, tx):
        """Cancel on myPOS's page: the browser receives myPOS's signed IPCPurchaseCancel."""
        result = self.mypos.cancel(self._purchase_fields(tx))
        self.assertEqual(result.return_fields[0], ('IPCmethod', 'IPCPurchaseCancel'))
        return result.return_fields

    def _payments_of(self, tx):
        """The accounting payments of `tx` (none can exist without account_payment)."""
        if 'account.payment' not in self.env:
            return 0
        return self.env['account.payment'].search_count([('payment_transaction_id', '=', tx.id)])

    def test_recut_cancel_does_not_pay_another_order(self):
        """The exact attack: crafted reference, genuine cancel, values re-cut and re-named."""
        crafted = f'IPCPurchaseNotify-{self.victim.mypos_order_id}-T'
        for legacy in (False, True):
            with self.subTest(legacy_order_id=legacy):
                attacker = self._attacker_tx(
                    f'{crafted}{int(legacy)}',
                    legacy_order_id=legacy and f'{crafted}_{LEGACY_TAG}_{legacy + 90}',
                )
                self.assertEqual('-' in attacker.mypos_order_id, legacy)
                cancel = self._signed_cancel(attacker)
                names = ['x', 'SID', 'Amount', 'Currency', 'IPCmethod', 'OrderID', 'IPC_Trnref']
                pieces = '-'.join(value for _name, value in cancel[:-1]).split('-')
                forged = list(zip(names, pieces, strict=False)) + [cancel[-1]]
                before = self._money_snapshot()
                with mute_logger(CONTROLLER_LOGGER):
                    response = self._raw('POST', self.webhook_url, forged)
                self.assertEqual(response.status_code, 400)
                self.assertTrue(response.text.startswith('REFUSED: '), response.text)
                self.assertEqual(self._money_snapshot(), before)
                self.assertEqual(self.victim.state, 'draft')
                if self.order:
                    self.assertEqual(self.order.state, 'draft')
                self.assertEqual(self._payments_of(self.victim), 0)
                self.assertFalse(self.victim.mypos_log_ids)

    def test_recut_cancel_does_not_cancel_another_payment(self):
        """A genuine cancel whose OrderID starts with a victim's is no cancel of the victim."""
        attacker = self._attacker_tx(
            'C1', legacy_order_id=f'{self.victim.mypos_order_id}-x_{LEGACY_TAG}_91'
        )
        cancel = self._signed_cancel(attacker)
        head, order_id, signature = cancel[:4], cancel[4][1], cancel[-1]
        victim_id, rest = order_id.split('-', 1)
        forged = [*head, ('OrderID', victim_id), ('Note', rest), signature]
        for route in (self.cancel_url, self.return_url, self.webhook_url):
            with self.subTest(route=route), mute_logger(CONTROLLER_LOGGER):
                response = self._raw('POST', route, forged)
                self.assertLess(response.status_code, 500)
                self.assertNotEqual(response.text, 'OK')
                self.assertEqual((self.victim.state, attacker.state), ('draft', 'draft'))
        # Even as myPOS signed it, the cancel is refused: two of its readings name a transaction.
        with mute_logger(CONTROLLER_LOGGER):
            self._raw('POST', self.cancel_url, cancel)
        self.assertEqual((self.victim.state, attacker.state), ('draft', 'draft'))

    def test_legacy_order_ids_still_settle(self):
        """A payment issued before the upgrade (OrderID with '-') is still notified and paid."""
        tx = self._attacker_tx('OLD', legacy_order_id=f'S00042-1_{LEGACY_TAG}_92')
        tx, result = self._pay(tx)
        self.assertEqual((result.outcome, tx.state), ('paid', 'done'))
        self.assertEqual(tx.provider_reference, result.ipc_trnref)

    def test_real_sandbox_messages_still_settle(self):
        """myPOS's own sandbox notification (2024) pays, its cancel (2019) cancels, over HTTP."""
        vectors = json.loads(read_test_file('test_vectors.json'))
        incoming = vectors['incoming_messages_signed_by_mypos_verify_with_mypos-public-cert.pem']
        self.provider.mypos_public_certificate = False  # Test state: myPOS's sandbox certificate.
        notify = next(vector for vector in incoming if 'raw_body' in vector)
        paid = self._create_transaction(
            'redirect', amount=200.0, reference='MRT', mypos_order_id='MRT000020240730'
        )
        response = self._raw(
            'POST',
            self.webhook_url,
            notify['raw_body'].encode(),
            {'Content-Type': 'application/x-www-form-urlencoded'},
        )
        self.assertEqual((response.status_code, response.text), (200, 'OK'))
        self.assertEqual((paid.state, paid.provider_reference), ('done', '410227'))
        cancel = next(
            v for v in incoming if ['IPCmethod', 'IPCPurchaseCancel'] in v.get('fields', [])
        )
        cancelled = self._create_transaction(
            'redirect', amount=200.0, reference='CNL', mypos_order_id=cancel['fields'][4][1]
        )
        self._raw(
            'POST',
            self.cancel_url,
            [*map(tuple, cancel['fields']), ('Signature', cancel['Signature'])],
        )
        self.assertEqual(cancelled.state, 'cancel')

    def test_browser_messages_refused_on_webhook(self):
        """Genuine browser messages (OK, cancel) are refused on the notify URL."""
        tx = self._create_mypos_transaction(amount=1000.0, reference='B1')
        cancel = self._signed_cancel(tx)
        with mute_logger(CONTROLLER_LOGGER):
            response = self._raw('POST', self.webhook_url, cancel)
        self.assertEqual(
            (response.status_code, response.text),
            (400, 'REFUSED: IPCPurchaseCancel is not accepted on this URL'),
        )
        self.assertEqual(tx.state, 'draft')


@tagged('post_install', '-at_install')
class TestReCutProperty(RawHttpMixin, MyPOSFakeCommon):
    """Every other cut and naming of genuine signed messages changes no money state."""

    EXAMPLES = 150

    def test_recuts_change_no_money_state(self):
        victim = self._create_mypos_transaction(amount=1000.0, reference='V1')
        draft = self._create_transaction(
            'redirect',
            amount=1000.0,
            reference='A1',
            mypos_order_id=f'IPCPurchaseNotify-{victim.mypos_order_id}-T_{LEGACY_TAG}_93',
        )
        prefixed = self._create_transaction(
            'redirect',
            amount=1000.0,
            reference='A2',
            mypos_order_id=f'{victim.mypos_order_id}-x_{LEGACY_TAG}_94',
        )
        paid = self._create_mypos_transaction(amount=1000.0, reference='P1')
        self._raw('POST', self.webhook_url, self._sign(self._notification_fields(paid)))
        self.assertEqual(paid.state, 'done')
        genuine = []
        for tx in (victim, draft, prefixed, paid):
            for method in ('IPCPurchaseNotify', 'IPCPurchaseRollback', 'IPCPurchaseOK'):
                genuine.append(self._sign(self._notification_fields(tx, method=method)))
            genuine.append(self._sign(self._notification_fields(tx, method='IPCPurchaseCancel')))
        routes = (self.webhook_url, self.return_url, self.cancel_url)
        tried = {'count': 0, 'ok': 0, 'changed': 0, 'http_5xx': 0}

        @settings(
            max_examples=self.EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(data=st.data())
        def check(data):
            fields = data.draw(st.sampled_from(genuine))
            tokens = '-'.join(value for _name, value in fields[:-1]).split('-')
            cuts = data.draw(st.sets(st.integers(1, len(tokens) - 1), max_size=len(tokens) - 1))
            names = data.draw(
                st.lists(st.sampled_from(NAMES), min_size=len(cuts) + 1, max_size=len(cuts) + 1)
            )
            variant = recut(fields[:-1], cuts, names)
            # The genuine head, under any spelling of its names, is the genuine message.
            size = len(ipc.const.FORM_LAYOUTS[fields[0][1]])
            head = [(name.lower(), value) for name, value in fields[:size]]
            if [(name.lower(), value) for name, value in variant[:size]] == head:
                return
            route = data.draw(st.sampled_from(routes))
            before = self._money_snapshot()
            with mute_logger(CONTROLLER_LOGGER):
                response = self._raw('POST', route, [*variant, fields[-1]])
            after = self._money_snapshot()
            tried['count'] += 1
            tried['ok'] += response.text == 'OK'
            tried['changed'] += before != after
            tried['http_5xx'] += response.status_code >= 500
            self.assertLess(response.status_code, 500, variant)
            self.assertNotEqual(response.text, 'OK', variant)
            self.assertEqual(before, after, variant)

        check()
        self.assertGreater(tried['count'], self.EXAMPLES // 2)


@tagged('post_install', '-at_install')
class TestWebhookInputRules(RawHttpMixin, MyPOSFakeCommon):
    """Bounds and rules of the integrity issue, each over the real HTTP server."""

    def test_chunked_body_limit(self):
        """A chunked body is bounded like a declared one, before Odoo parses it."""
        tx = self._create_mypos_transaction()
        big = b'IPCmethod=IPCPurchaseNotify&Note=' + b'x' * (ipc.MAX_FORM_BYTES + 10)
        with mute_logger(CONTROLLER_LOGGER):
            response = self._raw('POST', self.webhook_url, iter([big[:1000], big[1000:]]))
        self.assertEqual(response.status_code, 400)
        self.assertEqual(
            response.text, f'REFUSED: the body is larger than {ipc.MAX_FORM_BYTES} bytes'
        )
        body = urlencode(self._sign(self._notification_fields(tx))).encode()
        response = self._raw(
            'POST',
            self.webhook_url,
            iter([body[:50], body[50:]]),
            {'Content-Type': 'application/x-www-form-urlencoded'},
        )
        self.assertEqual((response.status_code, response.text, tx.state), (200, 'OK', 'done'))

    def _send_raw(self, head, body):
        """Send bytes as they are to the test server; return the status line's code."""
        port = urlsplit(self.base_url()).port
        with (
            allow_callbacks(self),  # No test cookie in a raw request (19.0 refuses it otherwise).
            socket.create_connection(('127.0.0.1', port), timeout=30) as connection,
        ):
            connection.sendall(
                f'POST {self.webhook_url} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n'.encode()
                + head
                + b'Content-Type: application/x-www-form-urlencoded\r\n\r\n'
                + body
            )
            answer = b''
            while True:  # The server closes the connection after a refusal (Connection: close).
                try:
                    data = connection.recv(65536)
                except ConnectionResetError:  # The unread rest of the body: the answer is in.
                    break
                if not data:
                    break
                answer += data
        return int(answer.split(b' ', 2)[1]), answer

    def test_chunked_body_with_a_false_length_and_broken_chunks(self):
        """A chunked body is bounded whatever length it declares; broken chunks are no 500."""
        size = ipc.MAX_FORM_BYTES + 10
        body = b'%x\r\nIPCmethod=x&Note=' % (size + 17) + b'x' * size + b'\r\n0\r\n\r\n'
        with mute_logger(CONTROLLER_LOGGER, 'odoo.service.server'):
            status, answer = self._send_raw(
                b'Content-Length: 5\r\nTransfer-Encoding: chunked\r\n', body
            )
            self.assertEqual(status, 400, answer[:200])
            self.assertIn(b'REFUSED: the body is larger than', answer)
            status, answer = self._send_raw(
                b'Transfer-Encoding: chunked\r\n', b'zz\r\nIPCmethod=x\r\n0\r\n\r\n'
            )
        self.assertEqual(status, 400, answer[:200])

    def test_unverified_input_not_logged(self):
        """Nothing of a message reaches the server log before its signature verifies."""
        tx = self._create_mypos_transaction()
        fields = self._notification_fields(tx, CustomerEmail='shopper@example.com')
        forged = self._sign(fields, generate_key_pair()[0])
        with self.assertLogs(level='DEBUG') as logs:
            self._raw('POST', self.webhook_url, forged)
        self.assertFalse([line for line in logs.output if 'shopper@example.com' in line])
        self.assertEqual(tx.state, 'draft')

    def test_unrequested_card_token_refused(self):
        """A card token in a notification means a re-labelled form ("store the card only")."""
        tx = self._create_mypos_transaction()
        data = self._sign(self._notification_fields(tx, CardToken='TKN-1234', ExpDate='3012'))
        with mute_logger(CONTROLLER_LOGGER):
            response = self._raw('POST', self.webhook_url, data)
        self.assertEqual(response.status_code, 400)
        self.assertRegex(response.text, "card token that Odoo never asked for")
        self.assertEqual(tx.state, 'draft')

    def test_purchase_never_matches_its_absolute_amount(self):
        tx = self._create_mypos_transaction()
        tx.amount = -tx.amount
        data = self._sign(self._notification_fields(tx, Amount=f'{-tx.amount:.2f}'))
        with mute_logger(CONTROLLER_LOGGER):
            response = self._raw('POST', self.webhook_url, data)
        self.assertEqual(response.status_code, 400)
        self.assertRegex(response.text, "does not match the transaction's")
        self.assertEqual(tx.state, 'draft')

    def test_live_payment_never_verified_with_the_sandbox_certificate(self):
        """Opened live, then the provider back in test mode without a certificate: refused."""
        tx = self._create_mypos_transaction()
        tx.mypos_live = True
        self.provider.mypos_public_certificate = False  # Test state: the sandbox's is used.
        data = self._sign(self._notification_fields(tx))
        with mute_logger(CONTROLLER_LOGGER):
            response = self._raw('POST', self.webhook_url, data)
        self.assertEqual(response.status_code, 400)
        self.assertRegex(response.text, "opened in live mode")
        self.assertEqual(tx.state, 'draft')

    def test_status_check_backoff_never_overflows(self):
        tx = self._create_mypos_transaction()
        for count in (0, 7, 40, 10**6):
            tx.mypos_check_count = count
            tx._mypos_schedule_check()
            self.assertLessEqual(
                tx.mypos_next_check, fields.Datetime.now() + timedelta(hours=12, minutes=1)
            )
