"""Pre-authorisation on the hosted page: the form checks, the card page, the notify -> URL_OK,
the cancel -> URL_Cancel, a notify not acknowledged, declined cards and the notify faults.

https://developers.mypos.com/apis/checkout-api/pre-authorization
https://developers.mypos.com/apis/checkout-api/pre-authorization-notify
https://developers.mypos.com/apis/checkout-api/pre-authorization-cancel
"""

import datetime

import pytest

from mypos_emulator import http_request
from mypos_emulator._ipc import const, ipc

from .helpers import (
    api_call,
    field,
    post,
    preauth_fields,
    purchase_fields,
    verifies,
)

NOTIFY_ORDER = [
    'IPCmethod',
    'SID',
    'Amount',
    'Currency',
    'OrderID',
    'IPC_Trnref',
    'RequestSTAN',
    'RequestDateTime',
    'PreAuthExpDate',
    'BillingDescriptor',
    'Signature',
]
CANCEL_ORDER = ['IPCmethod', 'SID', 'Amount', 'Currency', 'OrderID', 'Signature']


def _utc_today():
    return datetime.datetime.now(datetime.timezone.utc).date()


def _preauth_status(emu, order_id):
    """(Status, IPCPreAuthStatus, PreAuthExpDate) of a signed IPCPreAuthStatus answer."""
    _status, _body, tree = api_call(emu, 'IPCPreAuthStatus', [('OrderID', order_id)], 'json')
    ipc.verify_response(tree, emu.certificate_pem)
    return field(tree, 'Status'), field(tree, 'IPCPreAuthStatus'), field(tree, 'PreAuthExpDate')


def _notifies(merchant):
    return merchant.received('/notify')


def test_page_says_pre_authorisation_with_the_card_form(emu, merchant):
    status, session_url, _html = emu.submit(preauth_fields(merchant.url, 'PA-PAGE', '80.00'))
    assert status == 0 and session_url.startswith(emu.base_url + '/vmp/session/')
    http_status, _headers, body = http_request('GET', session_url)
    html = body.decode()
    assert http_status == 200
    assert 'This is a pre-authorisation' in html and 'id="preauth"' in html
    assert '<span id="amount">80.00</span> <span id="currency">EUR</span>' in html
    assert '<span id="item_name">S00042</span>' in html
    for element_id in ('card_number', 'card_expiry', 'card_cvc', 'pay', 'cancel'):
        assert f'id="{element_id}"' in html
    assert 'id="cart"' not in html
    assert emu.order('PA-PAGE')['status'] == 'pending'
    # The page is no pre-authorisation yet: myPOS knows no hold under the OrderID.
    assert _preauth_status(emu, 'PA-PAGE')[0] == '5'


def test_authorised_hold_notifies_then_returns_to_url_ok(emu, merchant):
    fields = preauth_fields(merchant.url, 'PA-OK', '100.00')
    result = emu.pay(fields, follow=True)
    assert (result.outcome, result.status) == ('authorized', 0), result.message
    expiry = _utc_today() + datetime.timedelta(days=30)
    # The notify: documented fields in the documented order, signed by myPOS.
    [(method, notify, verified)] = _notifies(merchant)
    assert method == 'IPCPreAuthorizationNotify' and verified
    request = merchant.requests[0]
    assert list(notify) == NOTIFY_ORDER
    assert request['content_type'] == 'application/x-www-form-urlencoded'
    assert request['user_agent'].startswith('myPOS-Checkout-Emulator/')
    assert (notify['SID'], notify['Amount'], notify['Currency'], notify['OrderID']) == (
        const.SANDBOX_SID,
        '100.00',
        'EUR',
        'PA-OK',
    )
    assert notify['IPC_Trnref'] == result.ipc_trnref
    assert notify['PreAuthExpDate'] == expiry.strftime('%y%m%d')
    assert notify['BillingDescriptor'] == 'myPOS  * EMULATOR'
    datetime.datetime.strptime(notify['RequestDateTime'], '%Y-%m-%d %H:%M:%S')
    assert len(notify['RequestSTAN']) == 6
    # The browser: IPCPreAuthorizationOK with the notify's values, to URL_OK.
    assert result.return_url == merchant.url + '/ok'
    assert result.return_method == 'IPCPreAuthorizationOK'
    returned = dict(result.return_fields)
    assert [name for name, _value in result.return_fields] == NOTIFY_ORDER
    assert {k: v for k, v in returned.items() if k not in ('IPCmethod', 'Signature')} == {
        k: v for k, v in notify.items() if k not in ('IPCmethod', 'Signature')
    }
    assert verifies(result.return_fields, emu.certificate_pem)
    assert result.followed['status'] == 200
    assert merchant.received('/ok')[0][0] == 'IPCPreAuthorizationOK'
    order = emu.order('PA-OK')
    assert (order['status'], order['method'], order['ipc_trnref']) == (
        'authorized',
        'IPCPreAuthorization',
        result.ipc_trnref,
    )
    assert order['preauth_expiry'] == expiry.isoformat()
    assert _preauth_status(emu, 'PA-OK') == ('0', '1', expiry.strftime('%d/%m/%Y'))
    # The page is spent: paying again shows the closed page.
    http_status, _headers, body = post(
        result.session_url,
        [('card_number', '4006090000000007'), ('card_expiry', '12/30'), ('card_cvc', '1')],
    )
    assert 'this payment session is authorized' in body.decode()
    assert '<b id="error_code">23</b>' in body.decode()
    assert len(_notifies(merchant)) == 1


def test_customer_cancels(emu, merchant):
    result = emu.cancel(preauth_fields(merchant.url, 'PA-CANCEL'), follow=True)
    assert result.outcome == 'cancelled' and result.return_url == merchant.url + '/cancel'
    assert result.return_method == 'IPCPreAuthorizationCancel'
    assert [name for name, _value in result.return_fields] == CANCEL_ORDER
    assert dict(result.return_fields)['Amount'] == '23.45'
    assert verifies(result.return_fields, emu.certificate_pem)
    assert merchant.received('/cancel')[0][0] == 'IPCPreAuthorizationCancel'
    assert _notifies(merchant) == []
    assert emu.order('PA-CANCEL')['status'] == 'cancelled'
    assert _preauth_status(emu, 'PA-CANCEL')[0] == '5'  # No hold was made.
    # The OrderID may be sent again, as for a purchase.
    assert emu.pay(preauth_fields(merchant.url, 'PA-CANCEL')).outcome == 'authorized'


@pytest.mark.parametrize('answer', [(200, 'ok'), (200, 'OK\n'), (500, 'OK'), (302, '')])
def test_notify_not_acknowledged_releases_the_hold(emu, merchant, answer):
    merchant.answer = answer
    result = emu.pay(preauth_fields(merchant.url, 'PA-NOTOK'))
    assert result.outcome == 'reversed' and result.status == 3
    # No rollback message exists for a pre-authorisation: the one notify only.
    assert [method for method, _f, _v in _notifies(merchant)] == ['IPCPreAuthorizationNotify']
    assert result.return_url == merchant.url + '/cancel'
    assert result.return_method == 'IPCPreAuthorizationCancel'
    assert [name for name, _value in result.return_fields] == CANCEL_ORDER
    assert emu.order('PA-NOTOK')['status'] == 'reversed'
    assert _preauth_status(emu, 'PA-NOTOK')[:2] == ('0', '5')
    params = [('OrderID', 'PA-NOTOK'), ('Amount', '23.45'), ('Currency', 'EUR')]
    _status, _body, tree = api_call(emu, 'IPCPreAuthCompletion', params)
    assert field(tree, 'Status') == '14'


def test_declined_card_sends_nothing_then_another_card_is_authorised(emu, merchant):
    fields = preauth_fields(merchant.url, 'PA-DECLINE')
    result = emu.pay(fields, card='4877000000000002')
    assert (result.outcome, result.status) == ('declined', 21)
    assert 'id="retry"' in result.html and result.return_url is None
    assert merchant.requests == []
    assert _preauth_status(emu, 'PA-DECLINE') == ('0', '4', '')
    result = emu.pay(fields)
    assert result.outcome == 'authorized'
    assert _preauth_status(emu, 'PA-DECLINE')[:2] == ('0', '1')


BAD_PREAUTHS = [
    ('missing ItemName', dict(drop=('ItemName',)), 1),
    ('empty ItemName', dict(item_name=''), 1),
    ('missing Amount', dict(drop=('Amount',)), 1),
    ('missing URL_Notify', dict(drop=('URL_Notify',)), 1),
    ('cart row', dict(extra=[('CartItems', '1')]), 5),
    ('CardTokenRequest', dict(extra=[('CardTokenRequest', '0')]), 5),
    ('PaymentMethod', dict(extra=[('PaymentMethod', '1')]), 5),
    ('customer e-mail', dict(extra=[('CustomerEmail', 'a@example.com')]), 5),
    ('IPCVersion 1.3', dict(overrides={'IPCVersion': '1.3'}), 5),
    ('unknown SID', dict(overrides={'SID': '000000000000099'}), 4),
    ('decimal comma', dict(amount='23,45'), 9),
    ('zero amount', dict(amount='0.00'), 9),
    ('currency not enabled', dict(currency='XAU'), 25),
    ('OrderID too long', dict(order_id='P' * 81), 5),
]


@pytest.mark.parametrize(
    'options, expected', [case[1:] for case in BAD_PREAUTHS], ids=[case[0] for case in BAD_PREAUTHS]
)
def test_bad_forms_get_the_error_page(emu, merchant, options, expected):
    options = dict(options)
    order_id = options.pop('order_id', 'PA-BAD')
    result = emu.pay(preauth_fields(merchant.url, order_id, **options))
    assert (result.outcome, result.status) == ('rejected', expected), result.message
    assert f'<b id="error_code">{expected}</b>' in result.html
    assert merchant.requests == []
    rejected = emu.rejected()[-1]
    assert (rejected['method'], rejected['status']) == ('IPCPreAuthorization', expected)


def test_signature_is_checked(emu, merchant):
    fields = preauth_fields(merchant.url, 'PA-SIG')
    tampered = [(n, '99.99' if n == 'Amount' else v) for n, v in fields]
    assert emu.submit(tampered)[0] == 2
    assert emu.submit(fields)[0] == 0


def test_authorised_order_id_is_spent(emu, merchant):
    assert emu.pay(preauth_fields(merchant.url, 'PA-DUP')).outcome == 'authorized'
    assert emu.submit(preauth_fields(merchant.url, 'PA-DUP'))[0] == 20
    assert emu.submit(purchase_fields(merchant.url, 'PA-DUP'))[0] == 20
    # ... and a paid purchase's OrderID cannot be pre-authorised.
    assert emu.pay(purchase_fields(merchant.url, 'PA-DUP-2')).outcome == 'paid'
    assert emu.submit(preauth_fields(merchant.url, 'PA-DUP-2'))[0] == 20


# === The notify faults === #


def test_notify_drop_keeps_the_hold_and_resend_delivers_it(emu, merchant):
    emu.faults.notify_drop = True
    result = emu.pay(preauth_fields(merchant.url, 'PA-DROP'))
    assert result.outcome == 'authorized' and result.return_method == 'IPCPreAuthorizationOK'
    assert _notifies(merchant) == [] and result.notify['fault'] == 'drop'
    assert _preauth_status(emu, 'PA-DROP')[1] == '1'
    record = emu.resend('PA-DROP')
    assert record['acknowledged'] and record['method'] == 'IPCPreAuthorizationNotify'
    [(method, notify, verified)] = _notifies(merchant)
    assert verified and list(notify) == NOTIFY_ORDER


def test_notify_fail_once_releases_the_hold(emu, merchant):
    emu.faults.notify_fail_once = True
    result = emu.pay(preauth_fields(merchant.url, 'PA-FAIL'))
    assert result.outcome == 'reversed' and result.return_method == 'IPCPreAuthorizationCancel'
    assert _notifies(merchant) == [] and not emu.faults.notify_fail_once
    assert _preauth_status(emu, 'PA-FAIL')[1] == '5'


def test_notify_delay(emu, merchant):
    emu.faults.notify_delay = 0.3
    result = emu.pay(preauth_fields(merchant.url, 'PA-DELAY'))
    assert result.outcome == 'pending' and result.return_method == 'IPCPreAuthorizationOK'
    assert _notifies(merchant) == []
    assert _preauth_status(emu, 'PA-DELAY')[1] == '1'  # Held while the notify is on its way.
    assert emu.wait_idle(5)
    assert [m for m, _f, _v in _notifies(merchant)] == ['IPCPreAuthorizationNotify']
    assert emu.order('PA-DELAY')['status'] == 'authorized'


def test_notify_duplicate(emu, merchant):
    emu.set_faults(notify_duplicate='concurrent')
    result = emu.pay(preauth_fields(merchant.url, 'PA-TWICE'))
    assert result.outcome == 'authorized'
    notifies = _notifies(merchant)
    assert [m for m, _f, ok in notifies] == ['IPCPreAuthorizationNotify'] * 2
    assert notifies[0][1] == notifies[1][1]


def test_notify_reorder_sends_a_stale_notify_of_a_released_hold(emu, merchant):
    emu.faults.notify_reorder = True
    result = emu.pay(preauth_fields(merchant.url, 'PA-REORDER'))
    assert result.outcome == 'reversed' and result.return_method == 'IPCPreAuthorizationCancel'
    assert [m for m, _f, _v in _notifies(merchant)] == ['IPCPreAuthorizationNotify']
    assert result.notify['fault'] == 'reorder: stale notify after release'
    assert _preauth_status(emu, 'PA-REORDER')[1] == '5'


def test_pay_control_endpoint_takes_a_preauthorisation(emu, merchant):
    import json

    fields = preauth_fields(merchant.url, 'PA-CTRL')
    status, _headers, body = http_request(
        'POST',
        f'{emu.base_url}/_emulator/pay',
        json.dumps({'fields': fields}),
        {'Content-Type': 'application/json'},
    )
    data = json.loads(body)
    assert status == 200 and data['outcome'] == 'authorized'
    assert data['return_fields'][0] == ['IPCmethod', 'IPCPreAuthorizationOK']
