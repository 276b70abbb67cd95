"""IPCIAPurchase: charging a stored card server-to-server, its errors, the token_decline switch,
the api faults on it, and the status and refund of a token purchase."""

import re
import socket

import pytest

from mypos_emulator import EmulatorError, Faults, http_request
from mypos_emulator._ipc import const, ipc

from .helpers import (
    STORE_KEY,
    api_call,
    field,
    post,
    purchase_fields,
    store_card_fields,
    token_purchase_params,
)

CARD = '4006090000000007'
ANSWER_ORDER = ['IPCmethod', 'IPC_Trnref', 'Amount', 'Currency', 'Status', 'StatusMsg', 'Signature']
ERROR_ORDER = ['IPCmethod', 'Status', 'StatusMsg', 'Signature']
NESTED_ORDER = [
    'IPCmethod',
    'SID',
    'Amount',
    'Currency',
    'OrderID',
    'IPC_Trnref',
    'RequestDateTime',
    'Signature',
]
TWO_ROWS = (('Chair', '2', '10.00', '20.00'), ('Delivery', '1', '3.45', '3.45'))


def _stored(emu, merchant, card=CARD, order_id='SAVE-1'):
    """Store a card through the hosted page (CardTokenRequest=1); return its token."""
    result = emu.pay(store_card_fields(merchant.url, order_id), card=card)
    assert result.outcome == 'paid'
    return dict(result.return_fields)['CardToken']


def _charge(emu, order_id, token, amount='23.45', rows=TWO_ROWS, output_format='xml', **options):
    params = token_purchase_params(order_id, token, amount, rows=rows)
    return api_call(emu, 'IPCIAPurchase', params, output_format, **options)


def _code(tree):
    return field(tree, 'Status')


def _charges(emu, order_id):
    """The IPCIAPurchase calls for `order_id` that charged the card."""
    return [
        call
        for call in emu.api_calls()
        if (call['method'], call['order_id'], call['status']) == ('IPCIAPurchase', order_id, 0)
    ]


@pytest.mark.parametrize('output_format', ['xml', 'json'])
def test_token_purchase_charges_the_card(emu, merchant, output_format):
    token = _stored(emu, merchant)
    status, body, _tree = _charge(emu, 'IA-1', token, output_format=output_format)
    assert status == 200
    assert body.lstrip().startswith(b'{' if output_format == 'json' else b'<?xml')
    tree = ipc.check_answer(body, emu.certificate_pem)  # Signed, Status 0.
    assert [key for key, _value in tree] == ANSWER_ORDER
    order = emu.order('IA-1')
    assert dict(tree[:-1]) == {
        'IPCmethod': 'IPCIAPurchase',
        'IPC_Trnref': order['ipc_trnref'],
        'Amount': '23.45',
        'Currency': 'EUR',
        'Status': '0',
        'StatusMsg': 'Success',
    }
    assert {k: order[k] for k in ('status', 'method', 'card_token', 'amount', 'currency')} == {
        'status': 'paid',
        'method': 'IPCIAPurchase',
        'card_token': token,
        'amount': '23.45',
        'currency': 'EUR',
    }
    assert (order['pan'], order['card_type']) == ('0007', '3')
    assert order['ipc_trnref'] != emu.order('SAVE-1')['ipc_trnref']
    # No notification: the merchant only got the one of storing the card.
    assert len(merchant.requests) == 1 and emu.notifications('IA-1') == []
    _status, body, _tree = api_call(emu, 'IPCGetPaymentStatus', [('OrderID', 'IA-1')])
    tree = ipc.check_answer(body, emu.certificate_pem)
    assert (field(tree, 'PaymentStatus'), field(tree, 'IPC_Trnref'), field(tree, 'Amount')) == (
        '1',
        order['ipc_trnref'],
        '23.45',
    )


def test_token_purchase_field_order_is_free(emu, merchant):
    token = _stored(emu, merchant)
    own = token_purchase_params('IA-FREE', token, '5.00')
    fields = ipc.sign_fields(
        [
            ('IPCmethod', 'IPCIAPurchase'),
            ('cardtoken', token),
            *reversed(own[4:]),
            ('sid', const.SANDBOX_SID),
            ('IPCVersion', '1.4'),
            ('currency', 'EUR'),
            ('walletnumber', const.SANDBOX_WALLET_NUMBER),
            ('OutputFormat', 'json'),
            ('keyindex', '1'),
            ('amount', '5.00'),
            ('OrderID', 'IA-FREE'),
        ],
        STORE_KEY,
    )
    _status, headers, body = post(emu.url, fields)
    assert headers['content-type'].startswith('application/json')
    assert field(ipc.check_answer(body, emu.certificate_pem), 'Amount') == '5.00'


def test_txn_status_of_a_token_purchase(emu, merchant):
    token = _stored(emu, merchant)
    _charge(emu, 'IA-TXN', token)
    trnref = emu.order('IA-TXN')['ipc_trnref']
    for output_format in ('xml', 'json'):
        _status, body, _tree = api_call(
            emu, 'IPCGetTxnStatus', [('OrderID', 'IA-TXN')], output_format
        )
        tree = ipc.check_answer(body, emu.certificate_pem)
        assert [key for key, _value in tree] == [
            'IPCMethod',
            'OrderID',
            'OrderStatus',
            'Status',
            'StatusMsg',
            'Signature',
        ]
        nested = field(tree, 'OrderStatus')
        ipc.verify_response(nested, emu.certificate_pem)  # Its own signature.
        assert [key for key, _value in nested] == NESTED_ORDER
        values = dict(nested)
        assert re.fullmatch(r'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d', values.pop('RequestDateTime'))
        assert _without_signature(values) == {
            'IPCmethod': 'IPCIAPurchase',
            'SID': const.SANDBOX_SID,
            'Amount': '23.45',
            'Currency': 'EUR',
            'OrderID': 'IA-TXN',
            'IPC_Trnref': trnref,
        }
    # A refund leaves the purchase's status as it is.
    _refund(emu, trnref, 'IA-TXN-R1', '3.45')
    _status, body, _tree = api_call(emu, 'IPCGetTxnStatus', [('OrderID', 'IA-TXN')])
    assert field(ipc.check_answer(body, emu.certificate_pem), 'OrderStatus') == nested


def _without_signature(values):
    return {k: v for k, v in values.items() if k != 'Signature'}


def _refund(emu, trnref, order_id, amount):
    return api_call(
        emu,
        'IPCRefund',
        [('IPC_Trnref', trnref), ('OrderID', order_id), ('Amount', amount), ('Currency', 'EUR')],
    )


def test_refund_of_a_token_purchase(emu, merchant):
    token = _stored(emu, merchant)
    _charge(emu, 'IA-REF', token)
    trnref = emu.order('IA-REF')['ipc_trnref']
    _status, body, _tree = _refund(emu, trnref, 'IA-REF-R1', '5.00')
    tree = ipc.check_answer(body, emu.certificate_pem)
    assert (field(tree, 'IPC_Trnref'), field(tree, 'Amount')) == (trnref, '5.00')
    assert _code(_refund(emu, trnref, 'IA-REF-R2', '18.46')[2]) == '9'  # 18.45 left.
    assert _code(_refund(emu, trnref, 'IA-REF-R3', '18.45')[2]) == '0'
    assert _code(_refund(emu, trnref, 'IA-REF-R4', '0.01')[2]) == '9'
    assert [(r['amount'], r['refund_order_id']) for r in emu.refunds('IA-REF')] == [
        ('5.00', 'IA-REF-R1'),
        ('18.45', 'IA-REF-R3'),
    ]
    assert emu.order('IA-REF')['refunded'] == '23.45'


TOKEN_ERRORS = [
    ('missing CardToken', 1),
    ('unknown CardToken', 5),
    ('token of another store', 5),
    ('missing OrderID', 1),
    ('OrderID too long', 5),
    ('missing Amount', 1),
    ('zero Amount', 9),
    ('decimal comma', 9),
    ('missing Currency', 1),
    ('currency not enabled', 25),
    ('missing cart', 1),
    ('missing row field', 1),
    ('cart does not add up', 9),
    ('row currency differs', 5),
]


@pytest.mark.parametrize('case, expected', TOKEN_ERRORS, ids=[case for case, _ in TOKEN_ERRORS])
def test_token_purchase_errors(emu, merchant, case, expected):
    token = _stored(emu, merchant)
    params = dict(token_purchase_params('IA-ERR', token, '23.45', rows=TWO_ROWS))
    if case == 'missing CardToken':
        del params['CardToken']
    elif case == 'unknown CardToken':
        params['CardToken'] = 'EMU' + '0' * 32
    elif case == 'token of another store':
        params['CardToken'] = emu.store_card(CARD, sid='000000000000099')
    elif case == 'missing OrderID':
        del params['OrderID']
    elif case == 'OrderID too long':
        params['OrderID'] = 'X' * 81
    elif case == 'missing Amount':
        del params['Amount']
    elif case == 'zero Amount':
        params['Amount'] = '0.00'
    elif case == 'decimal comma':
        params['Amount'] = '23,45'
    elif case == 'missing Currency':
        del params['Currency']
    elif case == 'currency not enabled':
        params.update({'Currency': 'XAU', 'Currency_1': 'XAU', 'Currency_2': 'XAU'})
    elif case == 'missing cart':
        del params['CartItems']
    elif case == 'missing row field':
        del params['Price_2']
    elif case == 'cart does not add up':
        params['Amount'] = '24.00'
    elif case == 'row currency differs':
        params['Currency_2'] = 'USD'
    for output_format in ('xml', 'json'):
        _status, body, tree = api_call(emu, 'IPCIAPurchase', list(params.items()), output_format)
        ipc.verify_response(tree, emu.certificate_pem)  # Error answers are signed too.
        assert [key for key, _value in tree] == ERROR_ORDER
        message = field(tree, 'StatusMsg')
        assert (field(tree, 'IPCmethod'), _code(tree)) == ('IPCIAPurchase', str(expected)), message
    assert emu.order(params.get('OrderID')) is None  # Nothing charged, nothing recorded.


def test_paid_order_id_is_a_duplicate(emu, merchant):
    token = _stored(emu, merchant)
    assert _code(_charge(emu, 'IA-DUP', token)[2]) == '0'
    trnref = emu.order('IA-DUP')['ipc_trnref']
    _status, _body, tree = _charge(emu, 'IA-DUP', token, '1.00', rows=None)
    ipc.verify_response(tree, emu.certificate_pem)
    assert (_code(tree), field(tree, 'StatusMsg')) == (
        '20',
        'a payment was already made with OrderID IA-DUP',
    )
    order = emu.order('IA-DUP')
    assert (order['ipc_trnref'], order['amount']) == (trnref, '23.45')
    assert len(_charges(emu, 'IA-DUP')) == 1
    # OrderIDs paid on the hosted page, including a stored card's, are duplicates too.
    assert emu.pay(purchase_fields(merchant.url, 'HOSTED-1')).outcome == 'paid'
    assert _code(_charge(emu, 'HOSTED-1', token)[2]) == '20'
    assert _code(_charge(emu, 'SAVE-1', token)[2]) == '20'
    # And a hosted purchase of an OrderID paid with a token is refused.
    assert emu.pay(purchase_fields(merchant.url, 'IA-DUP')).status == 20


# === The token_decline switch === #


@pytest.mark.parametrize('decline', [21, 13, 24, 8])
def test_token_decline(emu, merchant, decline):
    token = _stored(emu, merchant)
    emu.set_faults(token_decline=decline)
    for output_format in ('xml', 'json'):
        _status, _body, tree = _charge(emu, 'IA-DECL', token, output_format=output_format)
        ipc.verify_response(tree, emu.certificate_pem)
        assert [key for key, _value in tree] == ERROR_ORDER
        assert (field(tree, 'IPCmethod'), _code(tree)) == ('IPCIAPurchase', str(decline))
        assert field(tree, 'StatusMsg') == (
            f"the stored card was not charged: {const.STATUS_NAMES[decline]} (fault token_decline)"
        )
    order = emu.order('IA-DECL')
    assert (order['status'], order['ipc_trnref'], order['last_message']) == ('declined', None, None)
    assert [a['outcome'] for a in order['attempts']] == ['declined', 'declined']
    # Nothing known about the order: no OrderStatus; PaymentStatus 3 (unsuccessful).
    _status, body, _tree = api_call(emu, 'IPCGetTxnStatus', [('OrderID', 'IA-DECL')])
    tree = ipc.check_answer(body, emu.certificate_pem)
    assert field(tree, 'OrderStatus') is None and _code(tree) == '0'
    _status, body, _tree = api_call(emu, 'IPCGetPaymentStatus', [('OrderID', 'IA-DECL')])
    assert field(ipc.check_answer(body, emu.certificate_pem), 'PaymentStatus') == '3'
    # Other calls are not affected; the switch is sticky; the OrderID may be sent again.
    assert emu.faults.token_decline == decline
    emu.faults.token_decline = None
    _status, body, _tree = _charge(emu, 'IA-DECL', token)
    assert field(ipc.check_answer(body, emu.certificate_pem), 'Status') == '0'
    assert emu.order('IA-DECL')['status'] == 'paid'


def test_token_decline_once(emu, merchant):
    token = _stored(emu, merchant)
    emu.faults = Faults(token_decline=21, api_faults_remaining=1)
    # A status query does not spend it: the switch only applies to IPCIAPurchase.
    api_call(emu, 'IPCGetTxnStatus', [('OrderID', 'SAVE-1')])
    assert emu.faults.token_decline == 21
    assert _code(_charge(emu, 'IA-ONCE', token)[2]) == '21'
    assert _code(_charge(emu, 'IA-ONCE', token)[2]) == '0'
    assert emu.faults.token_decline is None and emu.faults.api_faults_remaining is None


def test_token_decline_values(emu):
    for bad in (0, '0', 42, 'declined', True, 2.5, -21):
        with pytest.raises(EmulatorError):
            emu.set_faults(token_decline=bad)
    assert emu.set_faults(token_decline='24').token_decline == 24
    assert emu.set_faults(token_decline=99).token_decline == 99
    assert emu.set_faults(token_decline=None).token_decline is None
    assert Faults(token_decline=21).api_active('IPCIAPurchase')
    assert not Faults(token_decline=21).api_active('IPCRefund')
    url = f'{emu.base_url}/_emulator/faults'
    status, _headers, _body = http_request('POST', url, '{"token_decline": 21}')
    assert status == 200 and emu.faults.token_decline == 21
    status, _headers, _body = http_request('POST', url, '{"token_decline": 0}')
    assert status == 400 and emu.faults.token_decline == 21


# === Api faults on IPCIAPurchase === #


def test_api_timeout_charges_once(emu, merchant):
    token = _stored(emu, merchant)
    emu.faults.api_timeout = 1.0
    with pytest.raises((socket.timeout, OSError)):
        _charge(emu, 'IA-SLOW', token, timeout=0.3)
    assert emu.order('IA-SLOW')['status'] == 'paid'  # Charged before the (lost) answer.
    emu.faults.api_timeout = 0
    _status, _body, tree = _charge(emu, 'IA-SLOW', token)
    assert _code(tree) == '20'
    assert len(_charges(emu, 'IA-SLOW')) == 1


def test_api_drop_answer_charges_once(emu, merchant):
    token = _stored(emu, merchant)
    emu.faults.api_drop_answer = True
    with pytest.raises(OSError):
        _charge(emu, 'IA-DROP', token)
    order = emu.order('IA-DROP')
    assert order['status'] == 'paid' and emu.api_calls()[-1]['fault'] == 'answer dropped'
    emu.faults.api_drop_answer = False
    assert _code(_charge(emu, 'IA-DROP', token)[2]) == '20'
    assert emu.order('IA-DROP')['ipc_trnref'] == order['ipc_trnref']
    assert len(_charges(emu, 'IA-DROP')) == 1


@pytest.mark.parametrize(
    'switch, value, http_status', [('api_http_status', 503, 503), ('api_redirect', 307, 307)]
)
def test_unprocessed_faults_charge_nothing(emu, merchant, switch, value, http_status):
    token = _stored(emu, merchant)
    emu.set_faults(**{switch: value, 'api_faults_remaining': 1})
    status, body, _tree = _charge(emu, 'IA-HTTP', token)
    assert status == http_status and switch.encode() in body
    assert emu.order('IA-HTTP') is None and emu.api_calls()[-1]['status'] is None
    # Not charged: sending it again charges the card, once.
    assert _code(_charge(emu, 'IA-HTTP', token)[2]) == '0'
    assert emu.order('IA-HTTP')['status'] == 'paid' and len(_charges(emu, 'IA-HTTP')) == 1


@pytest.mark.parametrize('switch', ['api_garbage', 'api_bad_signature', 'api_unsigned', 'api_drip'])
def test_processed_faults_charge_the_card(emu, merchant, switch):
    token = _stored(emu, merchant)
    emu.set_faults(**{switch: 0.001 if switch == 'api_drip' else True})
    status, body, tree = _charge(emu, 'IA-FAULT', token)
    assert status == 200
    if switch == 'api_garbage':
        assert tree is None
        with pytest.raises(ipc.RemoteError):
            ipc.check_answer(body, emu.certificate_pem)
    elif switch == 'api_bad_signature':
        assert _code(tree) == '0'
        with pytest.raises(ipc.InvalidSignature):
            ipc.verify_response(tree, emu.certificate_pem)
    elif switch == 'api_unsigned':
        assert _code(tree) == '0' and field(tree, 'Signature') is None
        assert [key for key, _value in tree] == ANSWER_ORDER[:-1]
    else:
        assert [key for key, _value in ipc.check_answer(body, emu.certificate_pem)] == ANSWER_ORDER
    assert emu.order('IA-FAULT')['status'] == 'paid'
    emu.reset_faults()
    assert _code(_charge(emu, 'IA-FAULT', token)[2]) == '20'
    assert len(_charges(emu, 'IA-FAULT')) == 1
