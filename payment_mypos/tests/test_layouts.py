# Part of payment_mypos. License LGPL-3.
"""The strict reading of myPOS's messages (docs/mypos-protocol.md §3.3a): decisive values at their
documented places, in formats without '-', names never trusted; anything else refused with a clear
reason."""

import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from odoo.tests import BaseCase, tagged

from odoo.addons.payment_mypos import ipc
from odoo.addons.payment_mypos.ipc import testing as ipc_testing
from odoo.addons.payment_mypos.tests.common import generate_key_pair

MYPOS_KEY, MYPOS_CERT = generate_key_pair()
SID = '000000000000010'
NOTIFY = [
    ('IPCmethod', 'IPCPurchaseNotify'),
    ('SID', SID),
    ('Amount', '1000.00'),
    ('Currency', 'EUR'),
    ('OrderID', 'S1_ab12cd34_7'),
    ('IPC_Trnref', '410227'),
    ('RequestDateTime', '2026-11-24 14:49:48'),
    ('CardType', '3'),
]


def signed(fields):
    return ipc.sign_fields(fields, MYPOS_KEY)


def replace(fields, index, pair):
    return [*fields[:index], pair, *fields[index + 1 :]]


@tagged('post_install', '-at_install')
class TestReadForm(BaseCase):
    def test_genuine_notification(self):
        message = ipc.read_form(signed(NOTIFY)).verify(MYPOS_CERT)
        self.assertEqual(
            (message.method, message.sid, message.amount, message.currency),
            ('IPCPurchaseNotify', SID, '1000.00', 'EUR'),
        )
        self.assertEqual((message.order_id, message.trnref), ('S1_ab12cd34_7', '410227'))
        self.assertEqual(message.extra('cardtype'), '3')
        self.assertEqual(message.order_id_readings[:2], ('S1_ab12cd34_7', 'S1_ab12cd34_7-410227'))

    def test_names_differing_in_case_are_read_alike(self):
        fields = [(name.upper(), value) for name, value in NOTIFY]
        self.assertEqual(ipc.read_form(signed(fields)).verify(MYPOS_CERT).trnref, '410227')

    def test_reference_example_is_refused(self):
        """The example of docs/mypos-protocol.md §3.3a: a cancel re-cut and re-named as a
        notification."""
        cancel = signed(
            [
                ('IPCmethod', 'IPCPurchaseCancel'),
                ('SID', SID),
                ('Amount', '1000.00'),
                ('Currency', 'EUR'),
                ('OrderID', 'IPCPurchaseNotify-S00099_x_1-T_x_2'),
            ]
        )
        pieces = '-'.join(value for _name, value in cancel[:-1]).split('-')
        names = ['x', 'SID', 'Amount', 'Currency', 'IPCmethod', 'OrderID', 'IPC_Trnref']
        forged = [*zip(names, pieces, strict=True), cancel[-1]]
        self.assertTrue(ipc.verify(pieces, cancel[-1][1], MYPOS_CERT))  # It does verify...
        with self.assertRaisesRegex(ipc.MalformedMessage, "field 1 must be IPCmethod"):
            ipc.read_form(forged)  # ...but it is not read.

    def test_misplaced_names_refused(self):
        cases = {
            'swapped': [NOTIFY[0], NOTIFY[2], NOTIFY[1], *NOTIFY[3:]],
            'missing trnref': [*NOTIFY[:5], *NOTIFY[6:]],
            'OrderID again among extras': [*NOTIFY, ('orderid', 'S2_ab12cd34_8')],
            'Amount among extras': [*NOTIFY, ('AMOUNT', '1.00')],
            'trnref in a rollback': [
                ('IPCmethod', 'IPCPurchaseRollback'),
                *NOTIFY[1:5],
                ('IPC_Trnref', '1'),
            ],
        }
        for name, fields in cases.items():
            with self.subTest(name), self.assertRaises(ipc.MalformedMessage):
                ipc.read_form(signed(fields))

    def test_formats_refused_before_any_lookup(self):
        bad = {
            1: [
                '00000000000001',
                '0000000000000100',
                '00000000000001a',
                '０００００００００００００１０',
            ],
            2: ['-1000.00', '1e3', '1,000.00', '١٠٠٠.00', ' 1000.00', '1000.'],
            3: ['eur', 'EURO', 'E-R'],
            4: ['S1 x', 'S1-', '-S1', 'S1/x', 'x' * 81, ''],
            5: ['4102-27', '', 'T 1'],
        }
        for index, values in bad.items():
            for value in values:
                with self.subTest(field=NOTIFY[index][0], value=value):
                    fields = replace(NOTIFY, index, (NOTIFY[index][0], value))
                    with self.assertRaises(ipc.MalformedMessage):
                        ipc.read_form(signed(fields))

    def test_signature_must_be_last_and_verify(self):
        fields = signed(NOTIFY)
        with self.assertRaises(ipc.IPCError):
            ipc.read_form([fields[-1], *fields[:-1]])
        other_key, _cert = generate_key_pair()
        with self.assertRaises(ipc.InvalidSignature):
            ipc.read_form(ipc.sign_fields(NOTIFY, other_key)).verify(MYPOS_CERT)

    def test_methods_of_the_route_only(self):
        with self.assertRaisesRegex(ipc.MalformedMessage, "IPCPurchaseNotify is not accepted"):
            ipc.read_form(signed(NOTIFY), methods=('IPCPurchaseOK',))

    def test_legacy_order_id_readings(self):
        """An OrderID issued with '-' is read, with every other OrderID a re-cut could name."""
        fields = replace(NOTIFY, 4, ('OrderID', 'S00042-1_ab12cd34_7'))
        message = ipc.read_form(signed(fields)).verify(MYPOS_CERT)
        self.assertEqual(message.order_id, 'S00042-1_ab12cd34_7')
        self.assertEqual(message.order_id_readings[:2], ('S00042', 'S00042-1_ab12cd34_7'))

    def test_readings_go_through_double_dashes(self):
        """An old OrderID holding '--' cannot hide the readings past it."""
        fields = replace(NOTIFY, 4, ('OrderID', 'S1_ab12cd34_7--x_ab12cd34_9'))
        readings = ipc.read_form(signed(fields)).verify(MYPOS_CERT).order_id_readings
        self.assertIn('S1_ab12cd34_7', readings)
        self.assertIn('S1_ab12cd34_7--x_ab12cd34_9', readings)

    @settings(max_examples=300, deadline=None, database=None, derandomize=True)
    @given(
        pairs=st.lists(
            st.tuples(
                st.sampled_from(['IPCmethod', 'SID', 'Amount', 'OrderID', 'Signature', 'x'])
                | st.text(max_size=8),
                st.text(max_size=20),
            ),
            max_size=12,
        )
    )
    def test_any_input_is_read_or_refused_cleanly(self, pairs):
        try:
            message = ipc.read_form(pairs).verify(MYPOS_CERT)
        except ipc.IPCError as error:
            self.assertTrue(str(error))  # Refused, with a reason.
        else:
            self.fail(f"forged pairs were read: {message}")

    @settings(max_examples=300, deadline=None, database=None, derandomize=True)
    @given(
        method=st.sampled_from(sorted(ipc.const.PAYMENT_METHODS)),
        card_type=st.sampled_from('12345678'),
        when=st.datetimes(datetime.datetime(2000, 1, 1), datetime.datetime(2099, 12, 31)),
        typed=st.lists(
            st.sampled_from(['5', '1,5', '2 ', '06', '1-2']) | st.text(max_size=8),
            min_size=2,
            max_size=2,
        ),  # fmt: skip
        cuts=st.lists(st.booleans(), min_size=40, max_size=40),
        named=st.integers(0, 40),
    )
    def test_recut_ok_names_no_other_method(self, method, card_type, when, typed, cuts, named):
        """The browser's OK, re-cut and re-labelled by the shopper who holds it, reads as no
        `PaymentMethod` but the one used or the card's `CardType` (a digit: so the method is read
        from the notification only); never a date's piece nor anything the shopper typed."""
        extras = [
            ('RequestSTAN', f'{when.microsecond % 1000000:06d}'),
            ('RequestDateTime', when.strftime('%Y-%m-%d %H:%M:%S')),
            ('PaymentMethod', method),
            ('BillingDescriptor', 'myPOS  * FAKE'),
        ]
        if method == '1':
            extras += [('PAN', '0007'), ('CardType', card_type)]
        customer = ipc.customer_fields(email=typed[0], name=f'{typed[1]} {typed[0]}')
        extras += [(name, value) for name, value in customer if name != 'CustomerPhone']
        ok = signed([('IPCmethod', 'IPCPurchaseOK'), *NOTIFY[1:6], *extras])
        pieces = '-'.join(value for _name, value in ok[6:-1]).split('-')
        values, current = [], pieces[0]
        for index, piece in enumerate(pieces[1:]):
            cut = cuts[index] if index < len(cuts) else True
            values, current = (values + [current], piece) if cut else (values, f'{current}-{piece}')
        values.append(current)
        names = [f'X{index}' for index in range(len(values))]
        names[named % len(values)] = 'PaymentMethod'
        recut = [*ok[:6], *zip(names, values, strict=True), ok[-1]]
        message = ipc.read_form(recut, methods=('IPCPurchaseOK',)).verify(MYPOS_CERT)
        try:
            read = ipc.read_payment_method(message)
        except ipc.MalformedMessage:
            return
        self.assertIn(read, {method, card_type if method == '1' else method}, recut)


@tagged('post_install', '-at_install')
class TestReadAnswer(BaseCase):
    def _answer(self, tree):
        elements = ''.join(
            f'<{name}>{value}</{name}>' for name, value in ipc_testing.sign_tree(tree, MYPOS_KEY)
        )
        body = f'<IPC_response>{elements}</IPC_response>'
        return ipc.check_answer(body.encode(), MYPOS_CERT)

    def test_refund_answer(self):
        tree = [
            ('IPCMethod', 'IPCRefund'),
            ('IPC_Trnref', '410227'),
            ('Amount', '10.00'),
            ('Currency', 'EUR'),
            ('Status', '0'),
            ('StatusMsg', 'Success'),
        ]
        answer = ipc.layouts.read_answer(self._answer(tree), 'IPCRefund')
        self.assertEqual(
            (answer.trnref, answer.amount, answer.currency, answer.status, answer.status_msg),
            ('410227', '10.00', 'EUR', '0', 'Success'),
        )

    def test_misread_answers_refused(self):
        good = [
            ('IPCmethod', 'IPCRefund'),
            ('IPC_Trnref', '410227'),
            ('Amount', '10.00'),
            ('Currency', 'EUR'),
            ('Status', '0'),
        ]
        cases = {
            'another method': replace(good, 0, ('IPCmethod', 'IPCGetTxnStatus')),
            'amount out of place': [good[0], good[2], good[1], *good[3:]],
            'no Status': good[:4],
            'Status twice': [*good, ('status', '0')],
            'trnref with a dash': replace(good, 1, ('IPC_Trnref', '41-0227')),
        }
        for name, tree in cases.items():
            with self.subTest(name), self.assertRaises(ipc.IPCError):
                ipc.layouts.read_answer(self._answer(tree), 'IPCRefund')

    def test_too_deep_answers_refused(self):
        for body in ('{"a":' * 50 + '"x"' + '}' * 50, '<a>' * 50 + 'x' + '</a>' * 50):
            with self.subTest(body[:5]), self.assertRaisesRegex(ipc.MalformedMessage, "deeper"):
                ipc.parse_response(body)
        body = '{"a":' * 100000 + '"x"' + '}' * 100000  # Past Python's own recursion limit.
        with self.assertRaises(ipc.MalformedMessage):
            ipc.parse_response(body)
