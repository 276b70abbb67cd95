"""The hosted purchase: form checks, payment page, notify -> URL_OK, rollback -> URL_Cancel."""

import pytest

from mypos_emulator import http_request
from mypos_emulator._ipc import const, ipc, layouts

from .helpers import (
    STORE_KEY,
    api_call,
    field,
    load_vectors,
    post,
    purchase_fields,
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
    'PaymentMethod',
    'BillingDescriptor',
    'PAN',
    'CardType',
    'Signature',
]
SHORT_ORDER = ['IPCmethod', 'SID', 'Amount', 'Currency', 'OrderID', 'Signature']


def _signed_pairs(vector):
    return [tuple(pair) for pair in vector['fields']] + [('Signature', vector['Signature'])]


# === Merchant signatures (reference vectors) === #


@pytest.mark.parametrize('vector', load_vectors()['valid'], ids=lambda v: v['name'][:40])
def test_reference_vectors_pass_the_signature_check(emu, vector):
    pairs = _signed_pairs(vector)
    method = pairs[0][1]
    if method == 'IPCPurchase':
        status, session_url, html = emu.submit(pairs)
        assert status == 0 and session_url, html
    else:
        status, _headers, body = post(emu.url, pairs)
        tree = ipc.verify_response(ipc.parse_response(body), emu.certificate_pem)
        # Past the signature: unknown order (answered) or unknown IPC_Trnref (5).
        assert field(tree, 'Status') == {'IPCGetTxnStatus': '0', 'IPCRefund': '5'}[method]
    # Any changed value breaks the signature.
    tampered = [(name, value + 'x' if name == 'OrderID' else value) for name, value in pairs]
    if method == 'IPCPurchase':
        assert emu.submit(tampered)[0] == 2
    else:
        _status, _headers, body = post(emu.url, tampered)
        assert field(ipc.parse_response(body), 'Status') == '2'


def test_known_bad_vector_is_refused(emu):
    vector = load_vectors()['known_bad'][0]
    status, session_url, html = emu.submit(_signed_pairs(vector))
    assert (status, session_url) == (2, None)
    assert 'has sent a shopping cart with errors' in html
    assert 'E_SIGNATURE_FAILED' in html


# === Purchase form checks === #
# https://developers.mypos.com/apis/checkout-api/purchase
# https://developers.mypos.com/apis/checkout-api/checkout-getting-started/error-messages

BAD_PURCHASES = [
    ('missing URL_Notify', dict(drop=('URL_Notify',)), 1),
    ('missing PaymentParametersRequired', dict(drop=('PaymentParametersRequired',)), 1),
    ('empty cart', dict(rows=[]), 1),
    ('missing cart row field', dict(drop=('Price_2',)), 1),
    ('unknown SID', dict(overrides={'SID': '000000000000099'}), 4),
    ('wrong wallet', dict(overrides={'WalletNumber': '61938166611'}), 5),
    ('wrong KeyIndex', dict(overrides={'KeyIndex': '2'}), 3),
    ('signed with another key', dict(key='other'), 2),
    ('decimal comma', dict(amount='23,45'), 9),
    ('three decimals', dict(amount='23.450'), 9),
    ('zero amount', dict(amount='0.00', rows=[('Free', '1', '0.00', '0.00')]), 9),
    ('cart does not add up', dict(amount='24.00'), 9),
    (
        'row amount is not quantity x price',
        dict(rows=[('Chair', '2', '10.00', '21.00'), ('Delivery', '1', '2.45', '2.45')]),
        9,
    ),
    (
        'fractional quantity',
        dict(rows=[('Cheese', '1.5', '10.00', '15.00'), ('Rest', '1', '8.45', '8.45')]),
        5,
    ),
    ('row currency differs', dict(overrides={'Currency_2': 'USD'}), 5),
    ('currency not enabled', dict(currency='XAU'), 25),
    ('notify URL not http(s)', dict(notify_url='ftp://127.0.0.1/notify'), 5),
    ('notify URL not absolute', dict(notify_url='/payment/mypos/webhook'), 5),
    ('OrderID too long', dict(order_id='X' * 81), 5),
    ('full customer data required', dict(overrides={'PaymentParametersRequired': '1'}), 1),
    ('TWINT only in EUR', dict(extra=[('PaymentMethod', '5')]), 5),
]


@pytest.mark.parametrize(
    'options, expected',
    [case[1:] for case in BAD_PURCHASES],
    ids=[case[0] for case in BAD_PURCHASES],
)
def test_bad_purchases_get_the_error_page(emu, merchant, options, expected):
    options = dict(options)
    if options.get('key') == 'other':
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        other = rsa.generate_private_key(65537, 1024)
        options['key'] = other.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
    order_id = options.pop('order_id', 'BAD-1')
    result = emu.pay(purchase_fields(merchant.url, order_id, **options))
    assert (result.outcome, result.status) == ('rejected', expected), result.message
    assert result.status_name == const.STATUS_NAMES[expected]
    assert 'has sent a shopping cart with errors' in result.html
    assert f'<b id="error_code">{expected}</b>' in result.html
    assert merchant.requests == []
    assert emu.rejected()[-1]['status'] == expected


def test_signature_must_be_last(emu, merchant):
    fields = purchase_fields(merchant.url, 'SIG-LAST')
    fields.insert(0, fields.pop())
    assert emu.submit(fields)[0] == 2


def test_user_agent_is_not_required(emu, merchant):
    """myPOS's PHP SDK sends no User-Agent: the purchase and a server-to-server call are taken."""
    fields = purchase_fields(merchant.url, 'NO-UA')
    status, headers, _body = post(emu.url, fields, user_agent=None)
    assert status == 303 and headers['location'].startswith('/vmp/session/')
    request = ipc.build_request(
        ipc.Credentials(const.SANDBOX_SID, const.SANDBOX_WALLET_NUMBER, 1, STORE_KEY, ''),
        'IPCGetPaymentStatus',
        [('OrderID', 'NO-UA')],
        source='emulator_tests',
    )
    status, _headers, body = post(emu.url, request, user_agent=None)
    answer = ipc.check_answer(body, emu.certificate_pem)
    assert status == 200 and field(answer, 'PaymentStatus') == '2'
    assert not emu.rejected()


def test_field_names_are_case_insensitive(emu, merchant):
    fields = purchase_fields(merchant.url, 'CASE-1')[:-1]
    renamed = {
        'WalletNumber': 'walletnumber',
        'KeyIndex': 'keyindex',
        'URL_Cancel': 'URL_CANCEL',
        'Amount': 'amount',
    }
    fields = ipc.sign_fields([(renamed.get(n, n), v) for n, v in fields], STORE_KEY)
    assert emu.pay(fields).outcome == 'paid'


def test_unknown_method_is_unsupported(emu):
    fields = ipc.sign_fields(
        [('IPCmethod', 'IPCFoo'), ('IPCVersion', '1.4'), ('SID', const.SANDBOX_SID)], STORE_KEY
    )
    _status, _headers, body = post(emu.url, fields)
    assert field(ipc.parse_response(body), 'Status') == '10'


def test_checkout_endpoint_is_post_only(emu):
    status, headers, _body = http_request('GET', emu.url)
    assert status == 405 and headers['allow'] == 'POST'


# === Paying === #


def test_paid_purchase_notifies_then_returns_to_url_ok(emu, merchant):
    result = emu.pay(purchase_fields(merchant.url, 'PAY-1'), follow=True)
    assert (result.outcome, result.status) == ('paid', 0)
    ((method, notify, verified),) = merchant.received('/notify')
    assert method == 'IPCPurchaseNotify' and verified
    request = merchant.requests[0]
    assert request['user_agent'] and request['content_type'] == 'application/x-www-form-urlencoded'
    assert [name for name, _value in request['pairs']] == NOTIFY_ORDER
    assert notify['SID'] == const.SANDBOX_SID and notify['Amount'] == '23.45'
    assert notify['Currency'] == 'EUR' and notify['OrderID'] == 'PAY-1'
    assert notify['PAN'] == '0007' and notify['CardType'] == '3'
    assert len(notify['RequestSTAN']) == 6 and notify['IPC_Trnref'] == result.ipc_trnref
    assert result.notify['acknowledged'] and result.notify['body'] == 'OK'
    # The browser is sent to URL_OK with a signed IPCPurchaseOK.
    assert result.return_url == merchant.url + '/ok'
    assert result.return_method == 'IPCPurchaseOK'
    assert (
        layouts.read_form(result.return_fields).verify(emu.certificate_pem).trnref
        == result.ipc_trnref
    )
    assert result.followed['status'] == 200
    ((method, ok_fields, verified),) = merchant.received('/ok')
    assert (method, verified) == ('IPCPurchaseOK', True)
    assert 'id="return_form"' in result.html and 'submit()' in result.html
    order = emu.order('PAY-1')
    assert order['status'] == 'paid' and order['last_message'][0] == [
        'IPCmethod',
        'IPCPurchaseNotify',
    ]


@pytest.mark.parametrize(
    'answer',
    [
        (200, 'ok'),
        (200, 'OK\n'),
        (200, ' OK'),
        (500, 'OK'),
        (200, ''),
        (302, 'OK'),
        (400, 'REFUSED: wrong amount'),
    ],
)
def test_unacknowledged_notify_is_rolled_back(emu, merchant, answer):
    merchant.answer = answer
    result = emu.pay(purchase_fields(merchant.url, 'ROLL-1'), follow=True)
    assert result.outcome == 'reversed'
    received = merchant.received('/notify')
    assert [method for method, _fields, _ok in received] == [
        'IPCPurchaseNotify',
        'IPCPurchaseRollback',
    ]
    assert all(ok for _method, _fields, ok in received)
    rollback = merchant.requests[1]['pairs']
    assert [name for name, _value in rollback] == SHORT_ORDER
    assert result.return_url == merchant.url + '/cancel'
    assert result.return_method == 'IPCPurchaseCancel'
    assert [name for name, _value in result.return_fields] == SHORT_ORDER
    layouts.read_form(result.return_fields).verify(emu.certificate_pem)
    assert merchant.received('/cancel')[0][0] == 'IPCPurchaseCancel'
    assert emu.order('ROLL-1')['status'] == 'reversed'


def test_unreachable_notify_url_is_rolled_back(emu, merchant):
    result = emu.pay(
        purchase_fields(merchant.url, 'DOWN-1', notify_url='http://127.0.0.1:9/notify')
    )
    assert result.outcome == 'reversed' and result.return_url == merchant.url + '/cancel'
    notify, rollback = emu.notifications('DOWN-1')
    assert (notify['method'], notify['delivered'], notify['error'] is not None) == (
        'IPCPurchaseNotify',
        False,
        True,
    )
    assert rollback['method'] == 'IPCPurchaseRollback' and not rollback['delivered']


def test_cancel_button(emu, merchant):
    result = emu.cancel(purchase_fields(merchant.url, 'CANCEL-1'), follow=True)
    assert result.outcome == 'cancelled'
    assert result.return_url == merchant.url + '/cancel'
    assert [name for name, _value in result.return_fields] == SHORT_ORDER
    assert (
        layouts.read_form(result.return_fields).verify(emu.certificate_pem).method
        == 'IPCPurchaseCancel'
    )
    assert merchant.received('/notify') == [] and len(merchant.received('/cancel')) == 1
    assert emu.order('CANCEL-1')['status'] == 'cancelled'


def test_declined_card_then_retry(emu, merchant):
    fields = purchase_fields(merchant.url, 'DECL-1')
    result = emu.pay(fields, card='4877 0000 0000 0002')
    assert (result.outcome, result.status) == ('declined', 21)
    assert 'id="retry"' in result.html and 'id="cancel"' in result.html
    assert result.return_url is None and merchant.requests == []
    # Same session: try another card.
    status, _headers, body = post(
        result.session_url,
        [
            ('card_number', '4006090000000007'),
            ('card_expiry', '12/30'),
            ('card_cvc', '123'),
            ('action', 'pay'),
        ],
    )
    assert status == 200 and 'IPCPurchaseOK' in body.decode()
    assert emu.order('DECL-1')['status'] == 'paid'
    assert [a['outcome'] for a in emu.order('DECL-1')['attempts']] == ['declined', 'approved']


def test_payment_page_has_stable_ids(emu, merchant):
    status, session_url, _html = emu.submit(purchase_fields(merchant.url, 'PAGE-1'))
    assert status == 0
    _status, _headers, body = http_request('GET', session_url)
    html = body.decode()
    for element in (
        'id="card_number"',
        'id="card_expiry"',
        'id="card_cvc"',
        'id="pay"',
        'id="cancel"',
        'name="card_number"',
        '23.45',
        'EUR',
        'Chair',
        'Delivery',
        'myPOS Emulator Store',
        'PAGE-1',
    ):
        assert element in html
    assert html.count('class="cart_row"') == 2


def test_invalid_card_form_shows_the_page_again(emu, merchant):
    result = emu.pay(purchase_fields(merchant.url, 'EXP-1'), expiry='01/20')
    assert (result.outcome, result.status) == ('invalid_card', 22)
    assert 'id="card_error"' in result.html and merchant.requests == []
    assert emu.pay(purchase_fields(merchant.url, 'EXP-2'), card='123').status == 5


def test_duplicate_order_id_after_payment(emu, merchant):
    assert emu.pay(purchase_fields(merchant.url, 'DUP-1')).outcome == 'paid'
    result = emu.pay(purchase_fields(merchant.url, 'DUP-1'))
    assert (result.outcome, result.status) == ('rejected', 20)
    assert 'E_DUPLICATE_TRANSMISSION' in result.html


def test_order_id_can_be_resent_until_paid(emu, merchant):
    merchant.answer = (200, 'NO')
    assert emu.pay(purchase_fields(merchant.url, 'AGAIN-1')).outcome == 'reversed'
    assert emu.cancel(purchase_fields(merchant.url, 'AGAIN-1')).outcome == 'cancelled'
    merchant.answer = (200, 'OK')
    assert emu.pay(purchase_fields(merchant.url, 'AGAIN-1')).outcome == 'paid'


def test_second_session_of_a_paid_order_is_closed(emu, merchant):
    fields = purchase_fields(merchant.url, 'TWO-1')
    _status, first_session, _html = emu.submit(fields)
    assert emu.pay(fields).outcome == 'paid'
    status, headers, _body = post(
        first_session,
        [
            ('card_number', '4006090000000007'),
            ('card_expiry', '12/30'),
            ('card_cvc', '1'),
            ('action', 'pay'),
        ],
    )
    assert headers['x-emulator-outcome'] == 'closed' and headers['x-emulator-status'] == '20'


def test_pay_accepts_the_redirect_form_html(emu, merchant):
    """What Odoo renders: QWeb-escaped values, posted unescaped by the browser, as signed."""
    fields = purchase_fields(
        merchant.url, 'HTML-1', amount='10.00', rows=[('Стол & "chair" <b>', '1', '10.00', '10.00')]
    )
    from html import escape

    html = (
        '<form action="https://www.mypos.com/vmp/checkout-test" method="post">'
        + ''.join(
            f'<input type="hidden" name="{escape(n)}" value="{escape(v)}"/>' for n, v in fields
        )
        + '</form>'
    )
    result = emu.pay(html)
    assert result.outcome == 'paid', result.message


def test_card_token_and_customer_fields_in_notify(emu, merchant):
    fields = purchase_fields(
        merchant.url,
        'TOKEN-1',
        overrides={'CardTokenRequest': '2', 'PaymentParametersRequired': '2'},
        extra=[('CustomerEmail', 'ann@example.com'), ('CustomerFirstNames', 'Ann')],
    )
    assert emu.pay(fields, card='5555555555554444').outcome == 'paid'
    ((_method, notify, verified),) = merchant.received('/notify')
    assert verified and notify['CardToken'] and notify['ExpDate'] == '3012'
    assert notify['CardType'] == '1' and notify['PAN'] == '4444'
    assert notify['CustomerEmail'] == 'ann@example.com' and notify['CustomerFirstNames'] == 'Ann'


def test_production_path_behaves_the_same(emu, merchant):
    fields = purchase_fields(merchant.url, 'PROD-1')
    status, headers, _body = post(emu.production_url, fields)
    assert status == 303 and headers['location'].startswith('/vmp/session/')
    _status, _body, tree = api_call(emu, 'IPCGetPaymentStatus', [('OrderID', 'PROD-1')])
    assert field(tree, 'PaymentStatus') == '2'
