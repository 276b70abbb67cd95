# Part of payment_mypos. License LGPL-3.
"""Pre-authorisation (manual capture) in the protocol functions: the signed form, its notify read by
position, the three calls' answers; no database involved."""

import base64
import datetime

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odoo.tests import BaseCase, tagged

from odoo.addons.payment_mypos import ipc
from odoo.addons.payment_mypos.ipc import testing as ipc_testing
from odoo.addons.payment_mypos.ipc.fake_rules import render_answer
from odoo.addons.payment_mypos.tests.common import (
    SANDBOX_STORE_KEY,
    generate_key_pair,
    public_key_pem,
)

MYPOS_KEY, MYPOS_CERT = generate_key_pair()
SID = ipc.const.SANDBOX_SID
STORE = ipc.Credentials(SID, ipc.const.SANDBOX_WALLET_NUMBER, 1, SANDBOX_STORE_KEY, MYPOS_CERT)
HEAD = [('SID', SID), ('Amount', '150.00'), ('Currency', 'EUR'), ('OrderID', 'S7_ab12cd34_9')]
NOTIFY = [
    ('IPCmethod', 'IPCPreAuthorizationNotify'),
    *HEAD,
    ('IPC_Trnref', '410230'),
    ('RequestSTAN', '000017'),
    ('RequestDateTime', '2026-12-05 01:40:50'),
    ('PreAuthExpDate', '270104'),
    ('BillingDescriptor', 'myPOS  * TESTSTORE'),
]
PURCHASE_NOTIFY = [
    ('IPCmethod', 'IPCPurchaseNotify'),
    *HEAD,
    ('IPC_Trnref', '410230'),
    ('RequestSTAN', '000017'),
    ('RequestDateTime', '2026-12-05 01:40:50'),
    ('PaymentMethod', '1'),
    ('BillingDescriptor', 'myPOS  * TESTSTORE'),
]


def signed(fields, key=MYPOS_KEY):
    return ipc.sign_fields(fields, key)


def replace(fields, index, pair):
    return [*fields[:index], pair, *fields[index + 1 :]]


def answer(tree, output_format='json'):
    """A signed answer of myPOS as the transport returns it, checked as the addon checks it."""
    body = render_answer(ipc_testing.sign_tree(tree, MYPOS_KEY), output_format)
    return ipc.check_answer(body, MYPOS_CERT)


def recut(fields, cuts, names):
    """The values of `fields` joined with '-', cut again after the given tokens, named."""
    tokens = '-'.join(value for _name, value in fields).split('-')
    bounds = [0, *sorted(cuts), len(tokens)]
    values = ['-'.join(tokens[start:end]) for start, end in zip(bounds, bounds[1:], strict=False)]
    return list(zip(names, values, strict=True))


@tagged('post_install', '-at_install')
class TestPreAuthorizationForm(BaseCase):
    def _build(self, **kwargs):
        values = dict(
            source='Odoo tests',
            order_id='S7_ab12cd34_9',
            amount_minor=15000,
            decimals=2,
            currency='EUR',
            item_name='S00007',
            url_ok='https://shop.example/payment/mypos/return',
            url_cancel='https://shop.example/payment/mypos/cancel',
            url_notify='https://shop.example/payment/mypos/webhook',
            language='BG',
        )
        return ipc.build_preauthorization(STORE, **{**values, **kwargs})

    def test_signed_fields_in_sdk_order(self):
        """The fields of myPOS's PHP SDK (IPC/PreAuthorization.php), in its order, signed with the
        store's key over exactly these values: no cart, method, token request or customer."""
        fields = self._build()
        expected = [
            ('IPCmethod', 'IPCPreAuthorization'),
            ('IPCVersion', '1.4'),
            ('IPCLanguage', 'BG'),
            ('SID', '000000000000010'),
            ('WalletNumber', '61938166610'),
            ('KeyIndex', '1'),
            ('Source', 'Odoo tests'),
            ('ItemName', 'S00007'),
            ('Currency', 'EUR'),
            ('Amount', '150.00'),
            ('OrderID', 'S7_ab12cd34_9'),
            ('URL_OK', 'https://shop.example/payment/mypos/return'),
            ('URL_Cancel', 'https://shop.example/payment/mypos/cancel'),
            ('URL_Notify', 'https://shop.example/payment/mypos/webhook'),
            ('Note', ''),
        ]
        self.assertEqual(fields[:-1], expected)
        self.assertEqual(fields[-1][0], 'Signature')
        payload = (
            'IPCPreAuthorization-1.4-BG-000000000000010-61938166610-1-Odoo tests-S00007-EUR-150.00'
            '-S7_ab12cd34_9-https://shop.example/payment/mypos/return'
            '-https://shop.example/payment/mypos/cancel-https://shop.example/payment/mypos/webhook-'
        )
        key = ipc.load_public_key(public_key_pem(SANDBOX_STORE_KEY))
        key.verify(  # Raises if the signature is not over exactly these values.
            base64.b64decode(fields[-1][1]),
            base64.b64encode(payload.encode()),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )

    def test_amounts_at_the_wire(self):
        self.assertEqual(dict(self._build(amount_minor=1500, decimals=0))['Amount'], '1500')
        self.assertEqual(dict(self._build(amount_minor=5))['Amount'], '0.05')
        for amount in (0, -100):
            with self.subTest(amount), self.assertRaises(ipc.IPCError):
                self._build(amount_minor=amount)

    def test_item_name_and_note_are_cleaned(self):
        """ItemName and Note are signed text a shopper may re-label: no '-', no method name, never
        empty (myPOS requires an ItemName)."""
        cases = {
            'S00042-1': 'S00042\u20101',
            'IPCRefund': 'S7_ab12cd34_9',
            '': 'S7_ab12cd34_9',
            'Room 12\n<b>2 nights</b>': 'Room 12 b 2 nights /b',
        }
        for item_name, expected in cases.items():
            with self.subTest(item_name):
                self.assertEqual(dict(self._build(item_name=item_name))['ItemName'], expected)
        self.assertEqual(dict(self._build(note='deposit-1'))['Note'], 'deposit\u20101')
        fields = self._build(item_name='S1-x', note='a-b')
        self.assertNotIn('-', ''.join(value for name, value in fields if name != 'Signature'))

    def test_calls_asked_in_json(self):
        """The three calls' own fields follow the standard ones; answers in JSON."""
        for method, params in (
            ('IPCPreAuthCompletion', [('OrderID', 'S7'), ('Amount', '1.00'), ('Currency', 'EUR')]),
            (
                'IPCPreAuthCancellation',
                [('OrderID', 'S7'), ('Amount', '1.00'), ('Currency', 'EUR')],
            ),
            ('IPCPreAuthStatus', [('OrderID', 'S7')]),
        ):
            with self.subTest(method):
                fields = ipc.build_request(STORE, method, params, source='tests')
                self.assertEqual(fields[0], ('IPCmethod', method))
                self.assertEqual(fields[7:-2], params)
                self.assertEqual(fields[-2], ('OutputFormat', 'json'))


@tagged('post_install', '-at_install')
class TestPreAuthorizationNotify(BaseCase):
    def test_notify_read_by_position(self):
        message = ipc.read_form(signed(NOTIFY)).verify(MYPOS_CERT)
        self.assertEqual(
            (message.method, message.sid, message.amount, message.currency, message.order_id),
            ('IPCPreAuthorizationNotify', SID, '150.00', 'EUR', 'S7_ab12cd34_9'),
        )
        self.assertEqual((message.trnref, message.expiry), ('410230', datetime.date(2027, 1, 4)))
        self.assertEqual(message.extras, (('BillingDescriptor', 'myPOS  * TESTSTORE'),))
        self.assertIsNone(message.preauth_status)
        self.assertEqual(message.order_id_readings[0], 'S7_ab12cd34_9')
        only = (ipc.const.PREAUTH_NOTIFY_METHOD,)
        self.assertEqual(ipc.read_form(signed(NOTIFY), methods=only).order_id, 'S7_ab12cd34_9')

    def test_expiry_dates(self):
        """PreAuthExpDate is YYMMDD and a real date; anything else is refused."""
        good = {'270104': (2027, 1, 4), '280229': (2028, 2, 29), '991231': (2099, 12, 31)}
        for value, date in good.items():
            with self.subTest(value):
                fields = replace(NOTIFY, 8, ('PreAuthExpDate', value))
                self.assertEqual(
                    ipc.read_form(signed(fields)).verify(MYPOS_CERT).expiry.timetuple()[:3], date
                )
        for value in (
            '270229',
            '271301',
            '270100',
            '270132',
            '000000',
            '27010',
            '2701044',
            '27-1-4',
            '04/01/2027',
            '２７０１０４',
            ' 70104',
            '',
        ):
            with self.subTest(value), self.assertRaises(ipc.MalformedMessage):
                ipc.read_form(signed(replace(NOTIFY, 8, ('PreAuthExpDate', value))))

    def test_request_fields_in_their_formats(self):
        bad = {
            6: ['1234567', '12a', '', '-1', '١٢'],
            7: [
                '2026-13-05 01:40:50',
                '2026-02-30 01:40:50',
                '2026-12-05T01:40:50',
                '2026-12-05 1:40:50',
                '2026-12-05 01:40:60',
                '2026-12-05',
                '',
            ],
        }
        for index, values in bad.items():
            for value in values:
                with self.subTest(field=NOTIFY[index][0], value=value):
                    fields = replace(NOTIFY, index, (NOTIFY[index][0], value))
                    with self.assertRaises(ipc.MalformedMessage):
                        ipc.read_form(signed(fields))

    def test_misplaced_names_refused(self):
        cases = {
            'no expiry': NOTIFY[:8] + NOTIFY[9:],
            'STAN and date swapped': [*NOTIFY[:6], NOTIFY[7], NOTIFY[6], *NOTIFY[8:]],
            'expiry again among extras': [*NOTIFY, ('preauthexpdate', '270105')],
            'OrderID again among extras': [*NOTIFY, ('OrderID', 'S8_ab12cd34_1')],
            'expiry in a purchase notify': [*PURCHASE_NOTIFY, ('PreAuthExpDate', '270104')],
            'expiry in a pre-auth cancel': [
                ('IPCmethod', 'IPCPreAuthorizationCancel'),
                *HEAD,
                ('PreAuthExpDate', '270104'),
            ],
        }
        for name, fields in cases.items():
            with self.subTest(name), self.assertRaises(ipc.MalformedMessage):
                ipc.read_form(signed(fields))

    def test_browser_returns(self):
        """The OK carries the notify's fields (unread: no expiry from it); the cancel the head."""
        ok = [('IPCmethod', 'IPCPreAuthorizationOK'), *NOTIFY[1:]]
        message = ipc.read_form(signed(ok)).verify(MYPOS_CERT)
        self.assertEqual(
            (message.order_id, message.trnref, message.expiry), (HEAD[3][1], '410230', None)
        )
        cancel = ipc.read_form(signed([('IPCmethod', 'IPCPreAuthorizationCancel'), *HEAD]))
        message = cancel.verify(MYPOS_CERT)
        self.assertEqual(
            (message.method, message.amount, message.trnref),
            ('IPCPreAuthorizationCancel', '150.00', ''),
        )
        with self.assertRaisesRegex(ipc.MalformedMessage, "IPCPreAuthorizationOK is not accepted"):
            ipc.read_form(signed(ok), methods=(ipc.const.PREAUTH_NOTIFY_METHOD,))

    def test_relabelled_messages(self):
        """The method is signed: a purchase notify under the pre-authorisation's names is refused or
        read as the purchase notify it is, and the reverse, never as the other one."""
        preauth_names = [name for name, _value in NOTIFY]
        as_preauth = list(zip(preauth_names, (v for _n, v in PURCHASE_NOTIFY), strict=True))
        with self.assertRaises(ipc.MalformedMessage):  # PreAuthExpDate is out of its place.
            ipc.read_form(signed(as_preauth))
        without_expiry = as_preauth[:8]
        message = ipc.read_form(signed(without_expiry)).verify(MYPOS_CERT)
        self.assertEqual((message.method, message.expiry), ('IPCPurchaseNotify', None))
        with self.assertRaisesRegex(ipc.MalformedMessage, "not accepted"):
            ipc.read_form(signed(without_expiry), methods=(ipc.const.PREAUTH_NOTIFY_METHOD,))
        purchase_names = [name for name, _value in PURCHASE_NOTIFY]
        as_purchase = list(zip(purchase_names, (v for _n, v in NOTIFY), strict=True))
        with self.assertRaisesRegex(ipc.MalformedMessage, "field 9 must be PreAuthExpDate"):
            ipc.read_form(signed(as_purchase))
        with self.assertRaisesRegex(ipc.MalformedMessage, "not accepted"):
            ipc.read_form(signed(NOTIFY), methods=tuple(ipc.const.NOTIFY_METHODS.values()))


# Genuine messages myPOS signs about pre-authorisations (and a purchase, to re-label), with
# OrderIDs of today and of before 18.0.1.1.0 (with '-'), and a BillingDescriptor holding '-' and
# a date, so that re-cuts have the most to work with.
LEGACY_ORDER_ID = 'S00042-2026-12_c0ffee00_3'
GENUINE = [
    NOTIFY,
    replace(
        replace(NOTIFY, 4, ('OrderID', LEGACY_ORDER_ID)),
        9,
        ('BillingDescriptor', 'A-2026-12-05 01:40:50-270104'),
    ),
    replace(NOTIFY, 5, ('IPC_Trnref', '2026')),
    [('IPCmethod', 'IPCPreAuthorizationOK'), *NOTIFY[1:]],
    [('IPCmethod', 'IPCPreAuthorizationCancel'), *HEAD],
    [('IPCmethod', 'IPCPreAuthorizationCancel'), *HEAD[:3], ('OrderID', LEGACY_ORDER_ID)],
    PURCHASE_NOTIFY,
]
RECUT_NAMES = (
    *ipc.const.FORM_LAYOUTS['IPCPreAuthorizationNotify'],
    *ipc.const.FORM_LAYOUTS['IPCPurchaseNotify'],
    'BillingDescriptor',
    'preauthexpdate',
    'x',
)


@tagged('post_install', '-at_install')
class TestPreAuthorizationRecuts(BaseCase):
    def test_recut_names_nothing_else(self):
        """docs/mypos-protocol.md §3.3a for the pre-authorisation: whatever cut and names a holder
        of a genuine signature gives its values, what is read is that message (its method, amount,
        currency, reference and expiry), about its OrderID (a legacy one: one of its readings), or
        nothing."""
        read = []
        layouts = [ipc.const.FORM_LAYOUTS[method] for method in ipc.const.FORM_LAYOUTS]

        @settings(
            max_examples=600,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(data=st.data())
        def check(data):
            genuine = signed(data.draw(st.sampled_from(GENUINE)))
            original = ipc.read_form(genuine).verify(MYPOS_CERT)
            tokens = '-'.join(value for _name, value in genuine[:-1]).split('-')
            positions = st.integers(1, len(tokens) - 1)
            cuts = data.draw(st.sets(positions, max_size=len(tokens) - 1))
            if data.draw(st.booleans()):  # Near the genuine cut: a few boundaries moved.
                sizes = [len(value.split('-')) for _name, value in genuine[:-1]]
                bounds = {sum(sizes[:end]) for end in range(1, len(sizes))}
                cuts = bounds - data.draw(st.sets(st.sampled_from(sorted(bounds)), max_size=3))
                cuts |= data.draw(st.sets(positions, max_size=3))
            names = data.draw(
                st.lists(
                    st.sampled_from(RECUT_NAMES), min_size=len(cuts) + 1, max_size=len(cuts) + 1
                )
            )
            if data.draw(st.booleans()):  # A layout's names first: the cuts that could be read.
                layout = data.draw(st.sampled_from(layouts))
                names = [*layout, *(f'x{index}' for index in range(len(names)))][: len(names)]
            variant = [*recut(genuine[:-1], cuts, names), genuine[-1]]
            try:
                message = ipc.read_form(variant).verify(MYPOS_CERT)
            except ipc.IPCError:
                return
            read.append(variant)
            decisive = ('method', 'sid', 'amount', 'currency', 'trnref', 'expiry')
            self.assertEqual(
                [getattr(message, name) for name in decisive],
                [getattr(original, name) for name in decisive],
                variant,
            )
            if original.method == ipc.const.PREAUTH_NOTIFY_METHOD:
                # Its date and time (the one value with '-', at fixed places) pins every boundary.
                self.assertEqual(message.order_id, original.order_id, variant)
            else:
                self.assertIn(message.order_id, original.order_id_readings, variant)

        check()
        self.assertGreater(len(read), 20)  # Cuts that were read, and checked.

    def test_every_cut_of_a_legacy_notify(self):
        """Every cut of the notify with the most '-' (a legacy OrderID, a descriptor holding a date
        and an expiry), named as a notify: only the genuine reading is read."""
        genuine = signed(GENUINE[1])
        tokens = '-'.join(value for _name, value in genuine[:-1]).split('-')
        names = [*ipc.const.FORM_LAYOUTS['IPCPreAuthorizationNotify'], *map(str, range(99))]
        read = set()
        for mask in range(2 ** (len(tokens) - 1)):
            cuts = [index for index in range(1, len(tokens)) if mask >> (index - 1) & 1]
            try:
                form = ipc.read_form(
                    [*recut(genuine[:-1], cuts, names[: len(cuts) + 1]), genuine[-1]]
                )
            except ipc.IPCError:
                continue
            message = form.verify(MYPOS_CERT)
            read.add((message.order_id, message.trnref, message.amount, message.expiry))
        self.assertEqual(read, {(LEGACY_ORDER_ID, '410230', '150.00', datetime.date(2027, 1, 4))})

    @settings(max_examples=300, deadline=None, database=None, derandomize=True)
    @given(
        pairs=st.lists(
            st.tuples(
                st.sampled_from([*RECUT_NAMES, 'Signature']) | st.text(max_size=8),
                st.sampled_from(
                    ['IPCPreAuthorizationNotify', 'IPCPreAuthorizationOK', '270104', SID, 'EUR']
                )
                | st.text(max_size=20),
            ),
            max_size=12,
        )
    )
    def test_any_input_is_read_or_refused_cleanly(self, pairs):
        try:
            message = ipc.read_form(pairs).verify(MYPOS_CERT)
        except ipc.IPCError as error:
            self.assertTrue(str(error))
        else:
            self.fail(f"forged pairs were read: {message}")


COMPLETION = [
    ('IPCmethod', 'IPCPreAuthCompletion'),
    ('Amount', '120.00'),
    ('Currency', 'EUR'),
    ('OrderID', 'S7_ab12cd34_9'),
    ('Status', '0'),
    ('StatusMsg', 'Success'),
]
CANCELLATION = [
    ('IPCmethod', 'IPCPreAuthCancellation'),
    ('Amount', '150.00'),
    ('Currency', 'EUR'),
    ('Status', '0'),
    ('StatusMsg', 'Success'),
]
STATUS = [
    ('IPCmethod', 'IPCPreAuthStatus'),
    ('OrderID', 'S7_ab12cd34_9'),
    ('IPCPreAuthStatus', '1'),
    ('PreAuthExpDate', '04/01/2027'),
    ('Status', '0'),
    ('StatusMsg', 'Success'),
]


@tagged('post_install', '-at_install')
class TestPreAuthorizationAnswers(BaseCase):
    def test_completion_and_cancellation(self):
        for output_format in ('json', 'xml'):
            with self.subTest(output_format):
                read = ipc.layouts.read_answer(
                    answer(COMPLETION, output_format), 'IPCPreAuthCompletion'
                )
                self.assertEqual(
                    (read.amount, read.currency, read.order_id, read.trnref, read.status),
                    ('120.00', 'EUR', 'S7_ab12cd34_9', '', '0'),
                )
                self.assertEqual((read.expiry, read.preauth_status), (None, None))
                read = ipc.layouts.read_answer(
                    answer(CANCELLATION, output_format), 'IPCPreAuthCancellation'
                )
                self.assertEqual((read.amount, read.currency, read.order_id), ('150.00', 'EUR', ''))

    def test_status_read_by_name(self):
        """IPCPreAuthStatus and PreAuthExpDate in either order (the page's table and its example
        differ), the expiry DD/MM/YYYY or empty."""
        swapped = [*STATUS[:2], STATUS[3], STATUS[2], *STATUS[4:]]
        for name, tree in {'table order': STATUS, 'example order': swapped}.items():
            with self.subTest(name):
                read = ipc.layouts.read_answer(answer(tree), 'IPCPreAuthStatus')
                self.assertEqual(
                    (read.order_id, read.preauth_status, read.expiry),
                    ('S7_ab12cd34_9', ipc.PreAuthStatus.PENDING, datetime.date(2027, 1, 4)),
                )
        for code in (1, 3, 4, 5, 6):
            tree = replace(STATUS, 2, ('IPCPreAuthStatus', str(code)))
            self.assertEqual(
                ipc.layouts.read_answer(answer(tree), 'IPCPreAuthStatus').preauth_status, code
            )
        for expiry in ('', None):
            tree = (
                replace(STATUS, 3, ('PreAuthExpDate', expiry))
                if expiry is not None
                else [*STATUS[:3], *STATUS[4:]]
            )
            self.assertIsNone(ipc.layouts.read_answer(answer(tree), 'IPCPreAuthStatus').expiry)

    def test_status_values_refused(self):
        cases = [
            *(
                replace(STATUS, 2, ('IPCPreAuthStatus', code))
                for code in ('0', '2', '7', '01', '', 'x', '١')
            ),
            [*STATUS[:2], *STATUS[3:]],  # No IPCPreAuthStatus.
            *(
                replace(STATUS, 3, ('PreAuthExpDate', expiry))
                for expiry in (
                    '31/02/2027',
                    '2027-01-04',
                    '270104',
                    '4/1/2027',
                    '04/13/2027',
                    ' 04/01/2027',
                )
            ),
            [*STATUS, ('ipcpreauthstatus', '3')],  # Twice.
        ]
        for tree in cases:
            with self.subTest(tree), self.assertRaises(ipc.IPCError):
                ipc.layouts.read_answer(answer(tree), 'IPCPreAuthStatus')

    def test_misread_answers_refused(self):
        """Each answer only as its own call's, every decisive value at its place."""
        cases = {
            ('completion as status', 'IPCPreAuthStatus'): COMPLETION,
            ('completion as cancellation', 'IPCPreAuthCancellation'): COMPLETION,
            ('cancellation as completion', 'IPCPreAuthCompletion'): CANCELLATION,
            ('refund as completion', 'IPCPreAuthCompletion'): [
                ('IPCmethod', 'IPCRefund'),
                *COMPLETION[1:],
            ],
            ('amount out of place', 'IPCPreAuthCompletion'): [
                COMPLETION[0],
                COMPLETION[2],
                COMPLETION[1],
                *COMPLETION[3:],
            ],
            ('amount with a dash', 'IPCPreAuthCancellation'): replace(
                CANCELLATION, 1, ('Amount', '-1.00')
            ),
            ('OrderID twice', 'IPCPreAuthCompletion'): [*COMPLETION, ('orderid', 'S8')],
            ('no Status', 'IPCPreAuthCancellation'): CANCELLATION[:3],
        }
        for (name, method), tree in cases.items():
            with self.subTest(name), self.assertRaises(ipc.IPCError):
                ipc.layouts.read_answer(answer(tree), method)
