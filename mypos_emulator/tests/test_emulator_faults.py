"""Fault switches, from code and over the control endpoints."""

import json
import socket
import time

import pytest

from mypos_emulator import EmulatorError, Faults, http_request
from mypos_emulator._ipc import ipc

from .helpers import api_call, field, purchase_fields, store_card_fields, token_purchase_params


def _methods(merchant):
    return [method for method, _fields, _ok in merchant.received('/notify')]


def _control(emu, name, data=None):
    if data is None:
        status, _headers, body = http_request('GET', f'{emu.base_url}/_emulator/{name}')
    else:
        status, _headers, body = http_request(
            'POST',
            f'{emu.base_url}/_emulator/{name}',
            json.dumps(data),
            {'Content-Type': 'application/json'},
            timeout=30,
        )
    return status, json.loads(body)


# === Notifications === #


def test_notify_delay(emu, merchant):
    emu.faults.notify_delay = 0.4
    result = emu.pay(purchase_fields(merchant.url, 'DELAY-1'))
    # The browser goes back at once; the notify is still to come.
    assert result.outcome == 'pending' and result.return_method == 'IPCPurchaseOK'
    assert result.return_url == merchant.url + '/ok'
    assert merchant.received('/notify') == []
    _status, _body, tree = api_call(emu, 'IPCGetPaymentStatus', [('OrderID', 'DELAY-1')])
    assert field(tree, 'PaymentStatus') == '2'
    assert emu.wait_idle(5)
    assert _methods(merchant) == ['IPCPurchaseNotify']
    assert emu.order('DELAY-1')['status'] == 'paid'


def test_notify_delay_then_refused_is_rolled_back(emu, merchant):
    emu.set_faults(notify_delay=0.1)
    merchant.answer = (503, 'busy')
    assert emu.pay(purchase_fields(merchant.url, 'DELAY-2')).outcome == 'pending'
    assert emu.wait_idle(5)
    assert _methods(merchant) == ['IPCPurchaseNotify', 'IPCPurchaseRollback']
    assert emu.order('DELAY-2')['status'] == 'reversed'


def test_notify_drop(emu, merchant):
    emu.faults = {'notify_drop': True}
    result = emu.pay(purchase_fields(merchant.url, 'DROP-1'))
    assert result.outcome == 'paid' and result.return_url == merchant.url + '/ok'
    assert merchant.received('/notify') == []
    assert result.notify['fault'] == 'drop' and not result.notify['delivered']
    # A status query tells the truth: paid.
    _status, body, _tree = api_call(emu, 'IPCGetTxnStatus', [('OrderID', 'DROP-1')])
    nested = field(ipc.check_answer(body, emu.certificate_pem), 'OrderStatus')
    assert field(nested, 'IPCmethod') == 'IPCPurchaseNotify'
    # The merchant can get it later with resend().
    record = emu.resend('DROP-1')
    assert record['acknowledged'] and _methods(merchant) == ['IPCPurchaseNotify']


@pytest.mark.parametrize('mode', [True, 'concurrent'])
def test_notify_duplicate(emu, merchant, mode):
    emu.faults = Faults(notify_duplicate=mode)
    result = emu.pay(purchase_fields(merchant.url, 'DUPN-1'))
    assert result.outcome == 'paid'
    received = merchant.received('/notify')
    assert _methods(merchant) == ['IPCPurchaseNotify', 'IPCPurchaseNotify']
    assert received[0][1] == received[1][1] and all(ok for *_rest, ok in received)
    assert len(result.notifications) == 2


def test_notify_reorder(emu, merchant):
    emu.faults.notify_reorder = True
    result = emu.pay(purchase_fields(merchant.url, 'REORDER-1'))
    assert result.outcome == 'reversed' and result.return_method == 'IPCPurchaseCancel'
    assert _methods(merchant) == ['IPCPurchaseRollback', 'IPCPurchaseNotify']
    assert emu.order('REORDER-1')['status'] == 'reversed'
    _status, body, _tree = api_call(emu, 'IPCGetPaymentStatus', [('OrderID', 'REORDER-1')])
    assert field(ipc.check_answer(body, emu.certificate_pem), 'PaymentStatus') == '4'


def test_notify_fail_once(emu, merchant):
    emu.faults.notify_fail_once = True
    result = emu.pay(purchase_fields(merchant.url, 'FAIL-1'))
    assert result.outcome == 'reversed' and result.return_url == merchant.url + '/cancel'
    # The notify never reached the merchant; the rollback did.
    assert _methods(merchant) == ['IPCPurchaseRollback']
    assert [n['fault'] for n in emu.notifications('FAIL-1')] == ['fail_once', None]
    assert emu.faults.notify_fail_once is False  # One-shot.
    assert emu.pay(purchase_fields(merchant.url, 'FAIL-2')).outcome == 'paid'


def test_notify_omit_card_type(emu, merchant):
    emu.faults.notify_omit_card_type = True
    assert emu.pay(purchase_fields(merchant.url, 'NOCT-1')).outcome == 'paid'
    ((_method, notify, verified),) = merchant.received('/notify')
    assert verified and 'CardType' not in notify


# === Server-to-server calls === #


def _paid(emu, merchant, order_id):
    result = emu.pay(purchase_fields(merchant.url, order_id))
    assert result.outcome == 'paid'
    return result.ipc_trnref


def _refund(emu, trnref, order_id, amount='1.00', **options):
    return api_call(
        emu,
        'IPCRefund',
        [('IPC_Trnref', trnref), ('OrderID', order_id), ('Amount', amount), ('Currency', 'EUR')],
        **options,
    )


def test_api_http_status(emu, merchant):
    trnref = _paid(emu, merchant, 'HTTP-1')
    emu.faults.api_http_status = 503
    status, _body, _tree = _refund(emu, trnref, 'HTTP-1-R1')
    assert status == 503
    assert emu.refunds('HTTP-1') == []  # Not processed.
    assert emu.api_calls()[-1]['fault'] == 'http 503'


def test_api_redirect(emu, merchant):
    trnref = _paid(emu, merchant, 'REDIR-1')
    emu.faults.api_redirect = 307
    status, body, _tree = _refund(emu, trnref, 'REDIR-1-R1')
    assert status == 307 and b'api_redirect' in body
    assert emu.refunds('REDIR-1') == []  # Not processed.
    assert emu.api_calls()[-1]['fault'] == 'redirect 307'
    with pytest.raises(EmulatorError):
        emu.set_faults(api_redirect=200)


def test_api_drop_answer(emu, merchant):
    trnref = _paid(emu, merchant, 'DROP-1')
    emu.faults.api_drop_answer = True
    with pytest.raises(OSError):
        _refund(emu, trnref, 'DROP-1-R1')
    assert len(emu.refunds('DROP-1')) == 1  # Processed; only the answer is lost.


def test_api_drip(emu, merchant):
    trnref = _paid(emu, merchant, 'DRIP-1')
    emu.faults.api_drip = 0.001
    status, body, _tree = _refund(emu, trnref, 'DRIP-1-R1')
    assert status == 200
    ipc.check_answer(body, emu.certificate_pem)  # Whole and signed, only slow.
    assert 'drip' in emu.api_calls()[-1]['fault']


def test_api_garbage(emu, merchant):
    trnref = _paid(emu, merchant, 'GARB-1')
    emu.faults.api_garbage = True
    status, body, tree = _refund(emu, trnref, 'GARB-1-R1')
    assert status == 200 and tree is None
    with pytest.raises(ipc.RemoteError) as error:
        ipc.check_answer(body, emu.certificate_pem)
    assert error.value.kind == 'garbage'
    assert len(emu.refunds('GARB-1')) == 1  # Processed; only the answer is spoiled.


def test_api_bad_signature(emu, merchant):
    trnref = _paid(emu, merchant, 'BADSIG-1')
    emu.faults.api_bad_signature = True
    for output_format in ('xml', 'json'):
        _status, _body, tree = _refund(
            emu, trnref, f'BADSIG-1-{output_format}', output_format=output_format
        )
        assert field(tree, 'Status') == '0'
        with pytest.raises(ipc.InvalidSignature):
            ipc.verify_response(tree, emu.certificate_pem)
    _status, _body, tree = api_call(emu, 'IPCGetTxnStatus', [('OrderID', 'BADSIG-1')])
    with pytest.raises(ipc.InvalidSignature):
        ipc.verify_response(tree, emu.certificate_pem)
    # The nested message keeps its own, valid, signature.
    ipc.verify_response(field(tree, 'OrderStatus'), emu.certificate_pem)


def test_api_unsigned(emu, merchant):
    _paid(emu, merchant, 'UNSIGNED-1')
    emu.faults.api_unsigned = True
    _status, body, tree = api_call(emu, 'IPCGetTxnStatus', [('OrderID', 'UNSIGNED-1')], 'json')
    assert field(tree, 'Signature') is None and field(tree, 'Status') == '0'
    with pytest.raises(ipc.RemoteError) as error:
        ipc.check_answer(body, emu.certificate_pem)
    assert error.value.kind == 'unsigned'


def test_api_timeout(emu, merchant):
    trnref = _paid(emu, merchant, 'SLOW-1')
    emu.faults.api_timeout = 1.0
    started = time.monotonic()
    with pytest.raises((socket.timeout, OSError)):
        _refund(emu, trnref, 'SLOW-1-R1', timeout=0.3)
    assert time.monotonic() - started < 0.9
    assert len(emu.refunds('SLOW-1')) == 1  # Processed before the (lost) answer.


def test_refund_insufficient_funds(emu, merchant):
    trnref = _paid(emu, merchant, 'FUNDS-1')
    emu.faults.refund_insufficient_funds = True
    # Status queries are not affected.
    _status, body, _tree = api_call(emu, 'IPCGetTxnStatus', [('OrderID', 'FUNDS-1')])
    ipc.check_answer(body, emu.certificate_pem)
    _status, _body, tree = _refund(emu, trnref, 'FUNDS-1-R1')
    ipc.verify_response(tree, emu.certificate_pem)
    assert field(tree, 'Status') == '13'
    assert emu.refunds('FUNDS-1') == []


def test_api_faults_remaining(emu, merchant):
    trnref = _paid(emu, merchant, 'ONCE-1')
    emu.set_faults(api_http_status=500, api_faults_remaining=1)
    assert _refund(emu, trnref, 'ONCE-1-R1')[0] == 500
    _status, body, _tree = _refund(emu, trnref, 'ONCE-1-R2')
    ipc.check_answer(body, emu.certificate_pem)
    assert emu.faults.api_http_status is None and emu.faults.api_faults_remaining is None


# Status texts of the api_status_text fault, and how ipc.check_answer reads each (None: success).
STATUS_TEXTS = {
    '0': None,
    '00': 'unclear',
    ' 0': 'unclear',
    '0 ': 'unclear',
    '': 'unclear',
    '٠': 'unclear',  # ARABIC-INDIC DIGIT ZERO
    '013': 'status',
    '13': 'status',
}


@pytest.mark.parametrize('output_format', ['xml', 'json'])
def test_api_status_text(emu, merchant, output_format):
    """The call is processed as usual; the answer's Status is the text, exactly and signed."""
    trnref = _paid(emu, merchant, f'STEXT-{output_format}')
    for number, (text, kind) in enumerate(STATUS_TEXTS.items(), start=1):
        emu.set_faults(api_status_text=text, api_faults_remaining=1)
        order_id = f'STEXT-{output_format}-R{number}'
        _status, body, tree = _refund(emu, trnref, order_id, output_format=output_format)
        assert field(tree, 'Status') == text
        ipc.verify_response(tree, emu.certificate_pem)
        if kind is None:
            ipc.check_answer(body, emu.certificate_pem)
        else:
            with pytest.raises(ipc.RemoteError) as error:
                ipc.check_answer(body, emu.certificate_pem)
            assert error.value.kind == kind
        assert emu.refunds(f'STEXT-{output_format}')[-1]['refund_order_id'] == order_id
        assert emu.api_calls()[-1]['fault'] == f'Status {text!r}'
        assert emu.faults.api_status_text is None  # Spent by the one call.
        if output_format == 'json':
            # A plain integer stays a JSON number; any other text is a JSON string.
            status = json.loads(body)['Status']
            assert status == (int(text) if text in ('0', '13') else text)
    assert len(emu.refunds(f'STEXT-{output_format}')) == len(STATUS_TEXTS)


def test_api_status_text_on_status_and_token_calls(emu, merchant):
    """The nested OrderStatus keeps its own Status-less form and signature; a saved card is
    charged; a refused call's Status is replaced too."""
    _paid(emu, merchant, 'STEXT-TXN')
    emu.faults.api_status_text = ' 0'  # Sticky.
    for output_format in ('xml', 'json'):
        _status, body, tree = api_call(
            emu, 'IPCGetTxnStatus', [('OrderID', 'STEXT-TXN')], output_format
        )
        assert field(tree, 'Status') == ' 0'
        ipc.verify_response(tree, emu.certificate_pem)
        ipc.verify_response(field(tree, 'OrderStatus'), emu.certificate_pem)
        with pytest.raises(ipc.RemoteError) as error:
            ipc.check_answer(body, emu.certificate_pem)
        assert error.value.kind == 'unclear' and error.value.kind.may_have_moved_money
    result = emu.pay(store_card_fields(merchant.url, 'STEXT-SAVE'), card='4006090000000007')
    token = dict(result.return_fields)['CardToken']
    emu.faults.api_status_text = '00'
    _status, _body, tree = api_call(
        emu, 'IPCIAPurchase', token_purchase_params('STEXT-IA', token), 'json'
    )
    assert field(tree, 'Status') == '00'
    ipc.verify_response(tree, emu.certificate_pem)
    assert emu.order('STEXT-IA')['status'] == 'paid'  # Charged.
    # A refusal (unknown IPC_Trnref: 5) gets the text too.
    _status, _body, tree = _refund(emu, '999999999', 'STEXT-R-BAD')
    assert field(tree, 'Status') == '00' and emu.api_calls()[-1]['status'] == 5
    assert emu.faults.api_status_text == '00'


def test_bad_fault_values_are_refused(emu):
    with pytest.raises(EmulatorError):
        emu.set_faults(no_such_fault=True)
    with pytest.raises(EmulatorError):
        emu.set_faults(api_http_status=42)
    with pytest.raises(EmulatorError):
        emu.set_faults(notify_duplicate='sometimes')
    for text in ('\x00', '0\x1b', ['0'], True):
        with pytest.raises(EmulatorError):
            emu.set_faults(api_status_text=text)


# === Control endpoints === #


def test_control_endpoints(emu, merchant):
    status, faults = _control(emu, 'faults', {'notify_duplicate': True, 'api_timeout': '0'})
    assert status == 200 and faults['notify_duplicate'] == 'sequential'
    assert _control(emu, 'faults')[1] == faults
    assert _control(emu, 'faults', {'bogus': 1})[0] == 400
    fields = purchase_fields(merchant.url, 'CTRL-1')
    status, result = _control(emu, 'pay', {'fields': fields, 'follow': True})
    assert status == 200 and result['outcome'] == 'paid'
    assert result['return_url'] == merchant.url + '/ok' and result['followed']['status'] == 200
    assert len(result['notifications']) == 2
    status, state = _control(emu, 'state')
    assert state['orders']['CTRL-1']['status'] == 'paid'
    assert [n['method'] for n in state['notifications']] == ['IPCPurchaseNotify'] * 2
    assert state['notifications'][0]['body'] == 'OK'
    assert state['faults']['notify_duplicate'] == 'sequential'
    trnref = result['ipc_trnref']
    _refund(emu, trnref, 'CTRL-1-R1')
    status, state = _control(emu, 'state')
    assert state['refunds'][0]['refund_order_id'] == 'CTRL-1-R1'
    assert state['api_calls'][-1]['method'] == 'IPCRefund'
    status, record = _control(emu, 'resend', {'order_id': 'CTRL-1'})
    assert status == 200 and record['fault'] == 'resend' and record['acknowledged']
    status, result = _control(emu, 'cancel', {'fields': purchase_fields(merchant.url, 'CTRL-2')})
    assert result['outcome'] == 'cancelled'
    status, _headers, body = http_request('GET', f'{emu.base_url}/_emulator/certificate')
    assert body.decode() == emu.certificate_pem
    assert _control(emu, 'reset', {}) == (200, {'reset': True})
    status, state = _control(emu, 'state')
    assert state['orders'] == {} and state['faults']['notify_duplicate'] is False
