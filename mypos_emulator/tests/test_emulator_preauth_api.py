"""Pre-authorisation server to server: IPCPreAuthCompletion (once, at most the authorised
amount), IPCPreAuthCancellation, IPCPreAuthStatus, the expiry controls and the api faults.

https://developers.mypos.com/apis/checkout-api/pre-auth-completion
https://developers.mypos.com/apis/checkout-api/pre-auth-cancellation
https://developers.mypos.com/apis/checkout-api/pre-auth-status
"""

import datetime
import json

import pytest

from mypos_emulator import EmulatorError, http_request
from mypos_emulator._ipc import ipc

from .helpers import STORE_KEY, api_call, credentials, field, post, preauth_fields

COMPLETION_KEYS = ['IPCmethod', 'Amount', 'Currency', 'OrderID', 'Status', 'StatusMsg', 'Signature']
CANCELLATION_KEYS = ['IPCmethod', 'Amount', 'Currency', 'Status', 'StatusMsg', 'Signature']
STATUS_KEYS = [
    'IPCmethod',
    'OrderID',
    'IPCPreAuthStatus',
    'PreAuthExpDate',
    'Status',
    'StatusMsg',
    'Signature',
]


def _utc_today():
    return datetime.datetime.now(datetime.timezone.utc).date()


def _authorised(emu, merchant, order_id, amount='100.00'):
    result = emu.pay(preauth_fields(merchant.url, order_id, amount))
    assert result.outcome == 'authorized', result.message
    return result


def _complete(emu, order_id, amount='100.00', currency='EUR', output_format='json', **options):
    params = [('OrderID', order_id), ('Amount', amount), ('Currency', currency)]
    return api_call(emu, 'IPCPreAuthCompletion', params, output_format, **options)


def _cancel(emu, order_id, amount='100.00', currency='EUR', output_format='json'):
    params = [('OrderID', order_id), ('Amount', amount), ('Currency', currency)]
    return api_call(emu, 'IPCPreAuthCancellation', params, output_format)


def _status(emu, order_id, output_format='json'):
    return api_call(emu, 'IPCPreAuthStatus', [('OrderID', order_id)], output_format)


def _code(emu, answer):
    """The Status of a signed answer (the signature is checked)."""
    _http_status, _body, tree = answer
    ipc.verify_response(tree, emu.certificate_pem)
    return field(tree, 'Status')


def _preauth_status(emu, order_id):
    tree = ipc.check_answer(_status(emu, order_id)[1], emu.certificate_pem)
    return field(tree, 'IPCPreAuthStatus'), field(tree, 'PreAuthExpDate')


# === IPCPreAuthCompletion === #


@pytest.mark.parametrize('output_format', ['xml', 'json'])
def test_full_completion(emu, merchant, output_format):
    _authorised(emu, merchant, 'PC-FULL')
    _http_status, body, _tree = _complete(emu, 'PC-FULL', output_format=output_format)
    assert body.lstrip().startswith(b'{' if output_format == 'json' else b'<?xml')
    tree = ipc.check_answer(body, emu.certificate_pem)  # Signed, Status 0.
    assert [key for key, _value in tree] == COMPLETION_KEYS
    assert [value for _key, value in tree[:-1]] == [
        'IPCPreAuthCompletion',
        '100.00',
        'EUR',
        'PC-FULL',
        '0',
        'Success',
    ]
    if output_format == 'json':
        assert json.loads(body)['Status'] == 0
    order = emu.order('PC-FULL')
    assert (order['status'], order['captured_amount'], order['released_amount']) == (
        'captured',
        '100.00',
        '0.00',
    )
    expiry = (_utc_today() + datetime.timedelta(days=30)).strftime('%d/%m/%Y')
    assert _preauth_status(emu, 'PC-FULL') == ('3', expiry)


def test_lower_amount_releases_the_rest_and_only_one_completion(emu, merchant):
    _authorised(emu, merchant, 'PC-PART')
    tree = ipc.check_answer(_complete(emu, 'PC-PART', '60.00')[1], emu.certificate_pem)
    assert field(tree, 'Amount') == '60.00'
    order = emu.order('PC-PART')
    assert (order['captured_amount'], order['released_amount']) == ('60.00', '40.00')
    # The rest is released: no second completion, not even of the rest; no cancellation.
    assert _code(emu, _complete(emu, 'PC-PART', '40.00')) == '14'
    assert _code(emu, _complete(emu, 'PC-PART', '60.00')) == '14'
    assert _code(emu, _cancel(emu, 'PC-PART')) == '14'
    assert emu.order('PC-PART')['captured_amount'] == '60.00'
    assert _preauth_status(emu, 'PC-PART')[0] == '3'


def test_completion_above_the_authorised_amount_is_refused(emu, merchant):
    _authorised(emu, merchant, 'PC-OVER')
    assert _code(emu, _complete(emu, 'PC-OVER', '100.01')) == '9'
    assert emu.order('PC-OVER')['status'] == 'authorized'
    assert _code(emu, _complete(emu, 'PC-OVER', '100')) == '0'  # Equal, written otherwise.


@pytest.mark.parametrize(
    'case, expected',
    [
        ('unknown OrderID', '5'),
        ('other currency', '5'),
        ('currency not a code', '5'),
        ('missing Amount', '1'),
        ('missing Currency', '1'),
        ('decimal comma', '9'),
        ('zero', '9'),
        ('a purchase OrderID', '5'),
    ],
)
def test_completion_errors(emu, merchant, case, expected):
    _authorised(emu, merchant, 'PC-ERR')
    params = {'OrderID': 'PC-ERR', 'Amount': '10.00', 'Currency': 'EUR'}
    if case == 'unknown OrderID':
        params['OrderID'] = 'PC-NOPE'
    elif case == 'other currency':
        params['Currency'] = 'USD'
    elif case == 'currency not a code':
        params['Currency'] = 'eur'
    elif case == 'missing Amount':
        del params['Amount']
    elif case == 'missing Currency':
        del params['Currency']
    elif case == 'decimal comma':
        params['Amount'] = '10,00'
    elif case == 'zero':
        params['Amount'] = '0.00'
    elif case == 'a purchase OrderID':
        from .helpers import purchase_fields

        assert emu.pay(purchase_fields(merchant.url, 'PC-PURCHASE')).outcome == 'paid'
        params['OrderID'] = 'PC-PURCHASE'
    answer = api_call(emu, 'IPCPreAuthCompletion', list(params.items()), 'json')
    tree = answer[2]
    assert _code(emu, answer) == expected, field(tree, 'StatusMsg')
    assert [key for key, _value in tree] == ['IPCmethod', 'Status', 'StatusMsg', 'Signature']
    assert field(tree, 'IPCmethod') == 'IPCPreAuthCompletion'
    assert emu.order('PC-ERR')['status'] == 'authorized'


def test_completion_needs_ipc_version_1_4(emu, merchant):
    _authorised(emu, merchant, 'PC-V13')
    store = credentials(emu)
    fields = ipc.build_request(
        store,
        'IPCPreAuthCompletion',
        [('OrderID', 'PC-V13'), ('Amount', '1.00'), ('Currency', 'EUR')],
        source='emulator_tests',
    )
    fields = [(n, '1.3' if n == 'IPCVersion' else v) for n, v in fields[:-1]]
    _status, _headers, body = post(emu.url, ipc.sign_fields(fields, STORE_KEY))
    assert field(ipc.parse_response(body), 'Status') == '5'
    assert emu.order('PC-V13')['status'] == 'authorized'


# === IPCPreAuthCancellation === #


@pytest.mark.parametrize('output_format', ['xml', 'json'])
def test_cancellation_releases_the_hold(emu, merchant, output_format):
    _authorised(emu, merchant, 'PX-1')
    _http_status, body, _tree = _cancel(emu, 'PX-1', output_format=output_format)
    tree = ipc.check_answer(body, emu.certificate_pem)
    assert [key for key, _value in tree] == CANCELLATION_KEYS
    assert [value for _key, value in tree[:-1]] == [
        'IPCPreAuthCancellation',
        '100.00',
        'EUR',
        '0',
        'Success',
    ]
    order = emu.order('PX-1')
    assert (order['status'], order['released_amount']) == ('released', '100.00')
    assert _preauth_status(emu, 'PX-1')[0] == '6'
    assert _code(emu, _cancel(emu, 'PX-1')) == '14'
    assert _code(emu, _complete(emu, 'PX-1')) == '14'


def test_cancellation_errors(emu, merchant):
    _authorised(emu, merchant, 'PX-ERR')
    assert _code(emu, _cancel(emu, 'PX-NOPE')) == '5'
    assert _code(emu, _cancel(emu, 'PX-ERR', '50.00')) == '9'  # No partial release.
    assert _code(emu, _cancel(emu, 'PX-ERR', currency='USD')) == '5'
    assert (
        _code(emu, api_call(emu, 'IPCPreAuthCancellation', [('OrderID', 'PX-ERR')], 'json')) == '1'
    )
    assert emu.order('PX-ERR')['status'] == 'authorized'


# === IPCPreAuthStatus and the other status calls === #


@pytest.mark.parametrize('output_format', ['xml', 'json'])
def test_status_answer(emu, merchant, output_format):
    _authorised(emu, merchant, 'PS-1')
    _http_status, body, _tree = _status(emu, 'PS-1', output_format)
    tree = ipc.check_answer(body, emu.certificate_pem)
    assert [key for key, _value in tree] == STATUS_KEYS
    expiry = (_utc_today() + datetime.timedelta(days=30)).strftime('%d/%m/%Y')
    assert [value for _key, value in tree[:-1]] == [
        'IPCPreAuthStatus',
        'PS-1',
        '1',
        expiry,
        '0',
        'Success',
    ]


def test_unknown_order_id_is_5_in_each_call(emu):
    for method, params in [
        ('IPCPreAuthCompletion', [('Amount', '1.00'), ('Currency', 'EUR')]),
        ('IPCPreAuthCancellation', [('Amount', '1.00'), ('Currency', 'EUR')]),
        ('IPCPreAuthStatus', []),
    ]:
        answer = api_call(emu, method, [('OrderID', 'P-UNKNOWN'), *params], 'json')
        assert _code(emu, answer) == '5'
        assert field(answer[2], 'IPCmethod') == method
    assert [call['status'] for call in emu.api_calls()] == [5, 5, 5]


@pytest.mark.parametrize('output_format', ['xml', 'json'])
def test_txn_and_payment_status_of_a_preauth_answer_as_for_an_unknown_order(
    emu, merchant, output_format
):
    _authorised(emu, merchant, 'PS-TXN')
    for method in ('IPCGetTxnStatus', 'IPCGetPaymentStatus'):
        known = api_call(emu, method, [('OrderID', 'PS-TXN')], output_format)[2]
        unknown = api_call(emu, method, [('OrderID', 'PS-NEVER')], output_format)[2]
        ipc.verify_response(known, emu.certificate_pem)
        strip = {'OrderID', 'Signature'}
        assert [(k, v) for k, v in known if k not in strip] == [
            (k, v) for k, v in unknown if k not in strip
        ]
        assert field(known, 'OrderStatus') is None
        assert field(known, 'StatusMsg') == 'Order not found'


def test_refund_of_a_completed_preauth_up_to_the_captured_amount(emu, merchant):
    trnref = _authorised(emu, merchant, 'PR-1').ipc_trnref

    def refund(amount, order_id):
        params = [
            ('IPC_Trnref', trnref),
            ('OrderID', order_id),
            ('Amount', amount),
            ('Currency', 'EUR'),
        ]
        return api_call(emu, 'IPCRefund', params)

    assert _code(emu, refund('1.00', 'PR-1-R0')) == '14'  # Held, not captured.
    assert _code(emu, _complete(emu, 'PR-1', '60.00')) == '0'
    assert _code(emu, refund('60.01', 'PR-1-R1')) == '9'
    assert _code(emu, refund('60.00', 'PR-1-R2')) == '0'
    assert [r['refund_order_id'] for r in emu.refunds('PR-1')] == ['PR-1-R2']


# === Expiry === #


def test_expire_control(emu, merchant):
    _authorised(emu, merchant, 'PE-1')
    expiry = (_utc_today() + datetime.timedelta(days=30)).strftime('%d/%m/%Y')
    order = emu.expire_preauth('PE-1')
    assert order['status'] == 'expired' and order['released_amount'] == '100.00'
    assert _preauth_status(emu, 'PE-1') == ('5', expiry)
    assert _code(emu, _complete(emu, 'PE-1')) == '14'
    assert _code(emu, _cancel(emu, 'PE-1')) == '14'
    with pytest.raises(EmulatorError):
        emu.expire_preauth('PE-1')  # Not authorised any more.
    # The OrderID stays spent.
    assert emu.submit(preauth_fields(merchant.url, 'PE-1', '100.00'))[0] == 20


def test_set_expiry(emu, merchant):
    _authorised(emu, merchant, 'PE-2')
    today = _utc_today()
    emu.set_preauth_expiry('PE-2', today + datetime.timedelta(days=3))
    assert _preauth_status(emu, 'PE-2') == (
        '1',
        (today + datetime.timedelta(days=3)).strftime('%d/%m/%Y'),
    )
    emu.set_preauth_expiry('PE-2', today.isoformat())  # The last day of the hold: still held.
    assert _preauth_status(emu, 'PE-2') == ('1', today.strftime('%d/%m/%Y'))
    yesterday = today - datetime.timedelta(days=1)
    order = emu.set_preauth_expiry('PE-2', yesterday)
    assert order['status'] == 'expired' and order['preauth_expiry'] == yesterday.isoformat()
    assert _preauth_status(emu, 'PE-2') == ('5', yesterday.strftime('%d/%m/%Y'))
    assert _code(emu, _complete(emu, 'PE-2', '1.00')) == '14'
    with pytest.raises(EmulatorError):
        emu.set_preauth_expiry('PE-2', today)
    with pytest.raises(EmulatorError):
        emu.set_preauth_expiry('NO-SUCH', today)


def test_expiry_passing_is_seen_by_the_calls(emu, merchant):
    """An expiry date in the past expires the hold when it is next looked at."""
    _authorised(emu, merchant, 'PE-3')
    with emu._state.lock:  # The clock moving on: the date is already past.
        emu._state.orders['PE-3']['preauth_expiry'] = '2000-01-01'
    assert _code(emu, _complete(emu, 'PE-3')) == '14'
    assert _preauth_status(emu, 'PE-3') == ('5', '01/01/2000')


def _control(emu, data):
    status, _headers, body = http_request(
        'POST',
        f'{emu.base_url}/_emulator/preauth',
        json.dumps(data),
        {'Content-Type': 'application/json'},
    )
    return status, json.loads(body)


def test_expiry_control_endpoint(emu, merchant):
    _authorised(emu, merchant, 'PE-HTTP')
    later = (_utc_today() + datetime.timedelta(days=7)).isoformat()
    status, order = _control(emu, {'order_id': 'PE-HTTP', 'expiry': later})
    assert status == 200 and order['preauth_expiry'] == later and order['status'] == 'authorized'
    assert _control(emu, {'order_id': 'PE-HTTP', 'expiry': '31/12/2030'})[0] == 400
    assert _control(emu, {'order_id': 'PE-HTTP'})[0] == 400
    assert _control(emu, {'order_id': 'NOPE', 'expire': True})[0] == 400
    status, order = _control(emu, {'order_id': 'PE-HTTP', 'expire': True})
    assert status == 200 and order['status'] == 'expired'
    assert _preauth_status(emu, 'PE-HTTP')[0] == '5'


# === The api faults === #


def test_completion_answer_lost_then_status_says_captured(emu, merchant):
    _authorised(emu, merchant, 'PF-DROP')
    emu.set_faults(api_drop_answer=True, api_faults_remaining=1)
    with pytest.raises(OSError):
        _complete(emu, 'PF-DROP', '70.00')
    assert emu.api_calls()[-1]['fault'] == 'answer dropped'
    assert _preauth_status(emu, 'PF-DROP')[0] == '3'  # Processed: captured.
    assert emu.order('PF-DROP')['captured_amount'] == '70.00'
    assert _code(emu, _complete(emu, 'PF-DROP', '70.00')) == '14'  # A retry is refused.


def test_completion_http_error_is_not_processed(emu, merchant):
    _authorised(emu, merchant, 'PF-503')
    emu.set_faults(api_http_status=503, api_faults_remaining=1)
    assert _complete(emu, 'PF-503')[0] == 503
    assert _preauth_status(emu, 'PF-503')[0] == '1'
    assert _code(emu, _complete(emu, 'PF-503')) == '0'


def test_completion_timeout_is_processed(emu, merchant):
    _authorised(emu, merchant, 'PF-SLOW')
    emu.set_faults(api_timeout=1.0, api_faults_remaining=1)
    with pytest.raises(OSError):
        _complete(emu, 'PF-SLOW', timeout=0.3)
    assert emu.order('PF-SLOW')['status'] == 'captured'


@pytest.mark.parametrize(
    'switch, kind',
    [
        ('api_garbage', 'garbage'),
        ('api_unsigned', 'unsigned'),
        ('api_bad_signature', 'signature'),
        ('api_status_text', 'unclear'),
    ],
)
def test_cancellation_faults_are_processed(emu, merchant, switch, kind):
    _authorised(emu, merchant, 'PF-X')
    emu.set_faults(**{switch: '00' if switch == 'api_status_text' else True})
    _http_status, body, _tree = _cancel(emu, 'PF-X')
    with pytest.raises(ipc.RemoteError) as error:
        ipc.check_answer(body, emu.certificate_pem)
    assert error.value.kind == kind
    emu.reset_faults()
    assert _preauth_status(emu, 'PF-X')[0] == '6'


def test_status_call_faults(emu, merchant):
    _authorised(emu, merchant, 'PF-S')
    emu.set_faults(api_redirect=307, api_faults_remaining=1)
    status, _body, _tree = _status(emu, 'PF-S')
    assert status == 307 and emu.api_calls()[-1]['fault'] == 'redirect 307'
    emu.set_faults(api_drip=0.001, api_faults_remaining=1)
    assert _preauth_status(emu, 'PF-S')[0] == '1'
    assert emu.api_calls()[-1]['fault'] == 'drip 0.001s'
