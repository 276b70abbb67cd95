"""Server-to-server calls: IPCRefund, IPCGetTxnStatus, IPCGetPaymentStatus.

https://developers.mypos.com/apis/checkout-api/refund
https://developers.mypos.com/apis/checkout-api/get-payment-status
docs/mypos-protocol.md §4.8 (IPCGetTxnStatus)
"""

import json

import pytest

from mypos_emulator._ipc import ipc

from .helpers import STORE_KEY, api_call, field, post, purchase_fields


def _paid(emu, merchant, order_id, amount='23.45'):
    rows = [('Item', '1', amount, amount)]
    result = emu.pay(purchase_fields(merchant.url, order_id, amount=amount, rows=rows))
    assert result.outcome == 'paid'
    return result.ipc_trnref


def _refund(emu, trnref, amount, order_id, output_format='xml', currency='EUR'):
    return api_call(
        emu,
        'IPCRefund',
        [('IPC_Trnref', trnref), ('OrderID', order_id), ('Amount', amount), ('Currency', currency)],
        output_format,
    )


@pytest.mark.parametrize('output_format', ['xml', 'json'])
def test_refunds_track_the_balance(emu, merchant, output_format):
    trnref = _paid(emu, merchant, 'REF-1')
    status, body, tree = _refund(emu, trnref, '5.00', 'REF-1-R1', output_format)
    assert status == 200
    assert body.lstrip().startswith(b'{' if output_format == 'json' else b'<?xml')
    tree = ipc.check_answer(body, emu.certificate_pem)  # Signed, Status 0.
    assert [key for key, _value in tree] == [
        'IPCmethod',
        'IPC_Trnref',
        'Amount',
        'Currency',
        'Status',
        'StatusMsg',
        'Signature',
    ]
    assert (field(tree, 'IPC_Trnref'), field(tree, 'Amount'), field(tree, 'Currency')) == (
        trnref,
        '5.00',
        'EUR',
    )
    # Over-refund: 18.46 > 18.45 left.
    _status, _body, tree = _refund(emu, trnref, '18.46', 'REF-1-R2', output_format)
    ipc.verify_response(tree, emu.certificate_pem)
    assert field(tree, 'Status') == '9'
    _status, body, _tree = _refund(emu, trnref, '18.45', 'REF-1-R3', output_format)
    ipc.check_answer(body, emu.certificate_pem)
    _status, _body, tree = _refund(emu, trnref, '0.01', 'REF-1-R4', output_format)
    assert field(tree, 'Status') == '9'
    assert [(r['amount'], r['refund_order_id']) for r in emu.refunds('REF-1')] == [
        ('5.00', 'REF-1-R1'),
        ('18.45', 'REF-1-R3'),
    ]
    assert emu.order('REF-1')['refunded'] == '23.45'


def test_json_status_is_a_number(emu, merchant):
    trnref = _paid(emu, merchant, 'JSON-1')
    _status, body, _tree = _refund(emu, trnref, '1.00', 'JSON-1-R1', 'json')
    data = json.loads(body)
    assert data['Status'] == 0 and data['Amount'] == '1.00'


@pytest.mark.parametrize(
    'case, expected',
    [
        ('unknown reference', '5'),
        ('other currency', '5'),
        ('purchase OrderID reused', '20'),
        ('refund OrderID reused', '20'),
        ('negative amount', '9'),
        ('missing amount', '1'),
    ],
)
def test_refund_errors(emu, merchant, case, expected):
    trnref = _paid(emu, merchant, 'REFERR-1')
    params = {'IPC_Trnref': trnref, 'OrderID': 'REFERR-1-R', 'Amount': '1.00', 'Currency': 'EUR'}
    if case == 'unknown reference':
        params['IPC_Trnref'] = '1'
    elif case == 'other currency':
        params['Currency'] = 'USD'
    elif case == 'purchase OrderID reused':
        params['OrderID'] = 'REFERR-1'
    elif case == 'refund OrderID reused':
        assert field(_refund(emu, trnref, '1.00', 'REFERR-1-R')[2], 'Status') == '0'
    elif case == 'negative amount':
        params['Amount'] = '-1.00'
    elif case == 'missing amount':
        del params['Amount']
    _status, _body, tree = api_call(emu, 'IPCRefund', list(params.items()))
    ipc.verify_response(tree, emu.certificate_pem)
    assert field(tree, 'Status') == expected, field(tree, 'StatusMsg')


def test_reversed_payment_cannot_be_refunded(emu, merchant):
    merchant.answer = (500, 'error')
    result = emu.pay(purchase_fields(merchant.url, 'REV-1'))
    assert result.outcome == 'reversed'
    _status, _body, tree = _refund(emu, result.ipc_trnref, '1.00', 'REV-1-R')
    assert field(tree, 'Status') == '14'


@pytest.mark.parametrize('output_format', ['xml', 'json'])
def test_txn_status_of_a_paid_order(emu, merchant, output_format):
    trnref = _paid(emu, merchant, 'TXN-1')
    _status, body, tree = api_call(emu, 'IPCGetTxnStatus', [('OrderID', 'TXN-1')], output_format)
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
    ipc.verify_response(nested, emu.certificate_pem)  # The nested message's own signature.
    assert field(nested, 'IPCmethod') == 'IPCPurchaseNotify'
    assert field(nested, 'IPC_Trnref') == trnref and field(nested, 'Amount') == '23.45'
    # It is exactly the notification the merchant received.
    ((_method, notify, _ok),) = merchant.received('/notify')
    assert dict(nested) == notify | {'Signature': dict(merchant.requests[0]['pairs'])['Signature']}


def test_txn_status_after_rollback_and_cancel(emu, merchant):
    merchant.answer = (200, 'KO')
    emu.pay(purchase_fields(merchant.url, 'TXN-RB'))
    emu.cancel(purchase_fields(merchant.url, 'TXN-CA'))
    for order_id, method in (('TXN-RB', 'IPCPurchaseRollback'), ('TXN-CA', 'IPCPurchaseCancel')):
        _status, body, _tree = api_call(emu, 'IPCGetTxnStatus', [('OrderID', order_id)], 'json')
        nested = field(ipc.check_answer(body, emu.certificate_pem), 'OrderStatus')
        ipc.verify_response(nested, emu.certificate_pem)
        assert [key for key, _value in nested] == [
            'IPCmethod',
            'SID',
            'Amount',
            'Currency',
            'OrderID',
            'Signature',
        ]
        assert field(nested, 'IPCmethod') == method


def test_status_of_unknown_and_pending_orders(emu, merchant):
    _status, body, _tree = api_call(emu, 'IPCGetTxnStatus', [('OrderID', 'NOPE')])
    tree = ipc.check_answer(body, emu.certificate_pem)
    assert field(tree, 'OrderStatus') is None and field(tree, 'StatusMsg') == 'Order not found'
    _status, body, _tree = api_call(emu, 'IPCGetPaymentStatus', [('OrderID', 'NOPE')])
    assert field(ipc.check_answer(body, emu.certificate_pem), 'PaymentStatus') == '0'
    emu.submit(purchase_fields(merchant.url, 'PEND-1'))
    _status, body, _tree = api_call(emu, 'IPCGetTxnStatus', [('OrderID', 'PEND-1')])
    assert field(ipc.check_answer(body, emu.certificate_pem), 'OrderStatus') is None


def test_payment_status_values(emu, merchant):
    trnref = _paid(emu, merchant, 'PS-PAID')
    emu.submit(purchase_fields(merchant.url, 'PS-PENDING'))
    emu.cancel(purchase_fields(merchant.url, 'PS-CANCEL'))
    emu.pay(purchase_fields(merchant.url, 'PS-DECLINED'), card='4877000000000002')
    merchant.answer = (200, 'NOT OK')
    emu.pay(purchase_fields(merchant.url, 'PS-REVERSED'))
    expected = {
        'PS-PAID': '1',
        'PS-PENDING': '2',
        'PS-CANCEL': '3',
        'PS-DECLINED': '3',
        'PS-REVERSED': '4',
    }
    for order_id, payment_status in expected.items():
        _status, body, _tree = api_call(emu, 'IPCGetPaymentStatus', [('OrderID', order_id)], 'json')
        tree = ipc.check_answer(body, emu.certificate_pem)
        assert field(tree, 'PaymentStatus') == payment_status, order_id
    _status, body, _tree = api_call(emu, 'IPCGetPaymentStatus', [('OrderID', 'PS-PAID')])
    tree = ipc.check_answer(body, emu.certificate_pem)
    assert [key for key, _value in tree] == [
        'IPCMethod',
        'OrderID',
        'PaymentMethod',
        'PaymentStatus',
        'PaymentReference',
        'Amount',
        'Currency',
        'IPC_Trnref',
        'DateTime',
        'FeeAmount',
        'Status',
        'StatusMsg',
        'Signature',
    ]
    assert (field(tree, 'Amount'), field(tree, 'Currency'), field(tree, 'IPC_Trnref')) == (
        '23.45',
        'EUR',
        trnref,
    )


@pytest.mark.parametrize(
    'options, expected',
    [
        (dict(sid='000000000000011'), '4'),
        (dict(wallet='11111111111'), '5'),
        (dict(key_index=2), '3'),
        (dict(key='wrong'), '2'),
    ],
    ids=['unknown SID', 'wrong wallet', 'wrong KeyIndex', 'wrong signature'],
)
def test_identity_errors(emu, options, expected):
    if options.get('key') == 'wrong':
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        options['key'] = (
            rsa.generate_private_key(65537, 1024)
            .private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            .decode()
        )
    for output_format in ('xml', 'json'):
        _status, _body, tree = api_call(
            emu, 'IPCGetTxnStatus', [('OrderID', 'X')], output_format, **options
        )
        ipc.verify_response(tree, emu.certificate_pem)  # Error answers are signed too.
        assert field(tree, 'Status') == expected
        assert field(tree, 'IPCMethod') == 'IPCGetTxnStatus'


def test_missing_params_and_unsupported_calls(emu):
    _status, _body, tree = api_call(emu, 'IPCGetPaymentStatus', [])
    assert field(tree, 'Status') == '1'
    _status, _body, tree = api_call(emu, 'IPCReversal', [('IPC_Trnref', '1')])
    assert field(tree, 'Status') == '10'


def test_case_insensitive_request_names(emu, merchant):
    trnref = _paid(emu, merchant, 'LOWER-1')
    fields = ipc.sign_fields(
        [
            ('IPCmethod', 'IPCRefund'),
            ('ipcversion', '1.4'),
            ('sid', '000000000000010'),
            ('walletnumber', '61938166610'),
            ('keyindex', '1'),
            ('ipc_trnref', trnref),
            ('orderid', 'LOWER-1-R'),
            ('amount', '1.00'),
            ('currency', 'EUR'),
            ('outputformat', 'JSON'),
        ],
        STORE_KEY,
    )
    _status, headers, body = post(emu.url, fields)
    assert headers['content-type'].startswith('application/json')
    assert field(ipc.check_answer(body, emu.certificate_pem), 'Amount') == '1.00'
