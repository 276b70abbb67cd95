"""Saved cards on the hosted page: CardTokenRequest 1 (store only) and 2 (pay and store), the
token rule (one token per card and store), and where the stored cards show.

https://developers.mypos.com/apis/checkout-api/purchase
https://developers.mypos.com/apis/checkout-api/purchase-notify
"""

import json
import re

import pytest

from mypos_emulator import EmulatorError, http_request
from mypos_emulator._ipc import const, ipc, layouts

from .helpers import api_call, field, purchase_fields, store_card_fields, token_purchase_params

CARD = '4006090000000007'
MASTERCARD = '5555555555554444'
TOKEN_RE = re.compile(r'[A-Za-z0-9]{1,50}')
OTHER_SID = '000000000000099'
NOTIFY_WITH_TOKEN = [
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
    'CardToken',
    'ExpDate',
    'CardType',
    'Signature',
]
SHORT_ORDER = ['IPCmethod', 'SID', 'Amount', 'Currency', 'OrderID', 'Signature']


def _without(pairs, *names):
    return {name: value for name, value in pairs if name not in names}


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


# === The token rule === #


def test_card_token_is_stable_per_card_and_store(emu, merchant):
    tokens = []
    for order_id, card in (('TOK-1', CARD), ('TOK-2', CARD), ('TOK-3', MASTERCARD)):
        fields = purchase_fields(merchant.url, order_id, overrides={'CardTokenRequest': '2'})
        result = emu.pay(fields, card=card)
        assert result.outcome == 'paid'
        tokens.append(dict(result.return_fields)['CardToken'])
    assert [notify['CardToken'] for _m, notify, _ok in merchant.received('/notify')] == tokens
    assert tokens[0] == tokens[1] != tokens[2]
    assert all(TOKEN_RE.fullmatch(token) for token in tokens)
    assert tokens[0] == emu.card_token(CARD) == emu.card_token('4006 0900 0000 0007')
    assert tokens[2] == emu.card_token(MASTERCARD)
    assert emu.card_token(CARD, sid=OTHER_SID) not in tokens  # Another store, another token.
    stored = emu.tokens()
    assert {token: _without(record.items(), 'created_at') for token, record in stored.items()} == {
        tokens[0]: {
            'token': tokens[0],
            'saved_by': ['TOK-1', 'TOK-2'],
            'sid': const.SANDBOX_SID,
            'pan': '0007',
            'exp_date': '3012',
            'card_type': '3',
        },
        tokens[2]: {
            'token': tokens[2],
            'saved_by': ['TOK-3'],
            'sid': const.SANDBOX_SID,
            'pan': '4444',
            'exp_date': '3012',
            'card_type': '1',
        },
    }
    assert [emu.order(o)['card_token'] for o in ('TOK-1', 'TOK-2', 'TOK-3')] == tokens
    # The state endpoint shows them; a reset forgets them but a card keeps its token.
    assert _control(emu, 'state')[1]['tokens'] == stored
    assert emu.state['tokens'] == emu.state()['tokens'] == stored
    emu.reset()
    assert emu.tokens() == {} and _control(emu, 'state')[1]['tokens'] == {}
    assert emu.card_token(CARD) == tokens[0]


def test_pay_and_store_notify_layout(emu, merchant):
    fields = purchase_fields(merchant.url, 'PAYSTORE-1', overrides={'CardTokenRequest': '2'})
    result = emu.pay(fields, card=MASTERCARD, expiry='07/31')
    assert result.outcome == 'paid'
    pairs = merchant.requests[0]['pairs']
    assert [name for name, _value in pairs] == NOTIFY_WITH_TOKEN
    notify = dict(pairs)
    assert (notify['Amount'], notify['PAN'], notify['ExpDate'], notify['CardType']) == (
        '23.45',
        '4444',
        '3107',
        '1',
    )
    assert notify['CardToken'] == emu.card_token(MASTERCARD)
    assert ipc.verify([value for _name, value in pairs[:-1]], pairs[-1][1], emu.certificate_pem)


# === CardTokenRequest=1: store the card, no payment === #


def test_store_card_without_payment(emu, merchant):
    result = emu.pay(
        store_card_fields(merchant.url, 'STORE-1'), card=MASTERCARD, expiry='11/29', follow=True
    )
    assert (result.outcome, result.status) == ('paid', 0)
    ((method, notify, verified),) = merchant.received('/notify')
    assert (method, verified) == ('IPCPurchaseNotify', True)
    pairs = merchant.requests[0]['pairs']
    assert [name for name, _value in pairs] == NOTIFY_WITH_TOKEN
    assert ipc.verify([value for _name, value in pairs[:-1]], pairs[-1][1], emu.certificate_pem)
    token = emu.card_token(MASTERCARD)
    assert _without(pairs, 'RequestSTAN', 'RequestDateTime', 'Signature') == {
        'IPCmethod': 'IPCPurchaseNotify',
        'SID': const.SANDBOX_SID,
        'Amount': '0.00',
        'Currency': 'EUR',
        'OrderID': 'STORE-1',
        'IPC_Trnref': result.ipc_trnref,
        'PaymentMethod': '1',
        'BillingDescriptor': 'myPOS  * EMULATOR',
        'PAN': '4444',
        'CardToken': token,
        'ExpDate': '2911',
        'CardType': '1',
    }
    # The browser goes to URL_OK with IPCPurchaseOK: the same fields, its own signature.
    assert (result.return_url, result.return_method) == (merchant.url + '/ok', 'IPCPurchaseOK')
    assert [name for name, _value in result.return_fields] == NOTIFY_WITH_TOKEN
    assert _without(result.return_fields, 'IPCmethod', 'Signature') == _without(
        pairs, 'IPCmethod', 'Signature'
    )
    layouts.read_form(result.return_fields).verify(emu.certificate_pem)
    assert merchant.received('/ok')[0][2] is True
    order = emu.order('STORE-1')
    assert (order['status'], order['amount'], order['card_token_request']) == ('paid', '0.00', '1')
    assert order['card_token'] == token and emu.tokens()[token]['saved_by'] == ['STORE-1']
    # Its status is the notify, as for a payment.
    _status, body, _tree = api_call(emu, 'IPCGetTxnStatus', [('OrderID', 'STORE-1')])
    nested = field(ipc.check_answer(body, emu.certificate_pem), 'OrderStatus')
    assert nested == pairs
    _status, body, _tree = api_call(emu, 'IPCGetPaymentStatus', [('OrderID', 'STORE-1')])
    tree = ipc.check_answer(body, emu.certificate_pem)
    assert (field(tree, 'PaymentStatus'), field(tree, 'Amount')) == ('1', '0.00')


@pytest.mark.parametrize(
    'currency, zero', [('EUR', '0.00'), ('HUF', '0.00'), ('JPY', '0'), ('ISK', '0')]
)
def test_store_card_amount_has_the_currency_decimals(emu, merchant, currency, zero):
    result = emu.pay(store_card_fields(merchant.url, f'ZERO-{currency}', currency=currency))
    assert result.outcome == 'paid'
    ((_method, notify, verified),) = merchant.received('/notify')
    assert verified and (notify['Amount'], notify['Currency']) == (zero, currency)
    assert dict(result.return_fields)['Amount'] == zero


def test_store_card_page_shows_no_amount(emu, merchant):
    status, session_url, _html = emu.submit(store_card_fields(merchant.url, 'STOREPAGE-1'))
    assert status == 0
    _status, _headers, body = http_request('GET', session_url)
    html = body.decode()
    for element in (
        'id="card_number"',
        'id="card_expiry"',
        'id="card_cvc"',
        'id="pay"',
        'id="cancel"',
        'id="store_card"',
        'Save card',
        'STOREPAGE-1',
    ):
        assert element in html
    assert 'id="amount"' not in html and 'id="cart"' not in html


BAD_STORE_FORMS = [
    ('Amount posted', dict(extra=[('Amount', '0.00')]), 5),
    ('empty Amount posted', dict(extra=[('Amount', '')]), 5),
    ('CartItems posted', dict(extra=[('CartItems', '1')]), 5),
    ('a cart row posted', dict(extra=[('Article_1', 'Chair')]), 5),
    ('missing Currency', dict(drop=('Currency',)), 1),
    ('currency not enabled', dict(currency='XAU'), 25),
    ('Currency not ISO', dict(currency='eur'), 5),
    ('missing URL_Notify', dict(drop=('URL_Notify',)), 1),
]


@pytest.mark.parametrize(
    'options, expected',
    [case[1:] for case in BAD_STORE_FORMS],
    ids=[case[0] for case in BAD_STORE_FORMS],
)
def test_store_card_form_checks(emu, merchant, options, expected):
    result = emu.pay(store_card_fields(merchant.url, 'BADSTORE-1', **options))
    assert (result.outcome, result.status) == ('rejected', expected), result.message
    assert f'<b id="error_code">{expected}</b>' in result.html
    assert merchant.requests == [] and emu.tokens() == {}


def test_store_card_with_a_full_purchase_form_is_refused(emu, merchant):
    """Amount and cart rows, as for a payment, but CardTokenRequest=1."""
    fields = purchase_fields(merchant.url, 'BADSTORE-2', overrides={'CardTokenRequest': '1'})
    result = emu.pay(fields)
    assert (result.outcome, result.status) == ('rejected', 5)
    assert 'CardTokenRequest=1' in result.message


def test_store_card_not_acknowledged_is_rolled_back(emu, merchant):
    merchant.answer = (200, 'NO')
    result = emu.pay(store_card_fields(merchant.url, 'STORE-RB'), follow=True)
    assert result.outcome == 'reversed'
    assert [method for method, _fields, _ok in merchant.received('/notify')] == [
        'IPCPurchaseNotify',
        'IPCPurchaseRollback',
    ]
    rollback = merchant.requests[1]['pairs']
    assert [name for name, _value in rollback] == SHORT_ORDER
    assert dict(rollback)['Amount'] == '0.00'
    assert (result.return_url, result.return_method) == (
        merchant.url + '/cancel',
        'IPCPurchaseCancel',
    )
    assert [name for name, _value in result.return_fields] == SHORT_ORDER
    layouts.read_form(result.return_fields).verify(emu.certificate_pem)
    # Not stored: the token is refused; the order is reversed without a token.
    order = emu.order('STORE-RB')
    assert (order['status'], order['card_token']) == ('reversed', None)
    assert emu.tokens() == {}
    _status, body, _tree = api_call(
        emu, 'IPCIAPurchase', token_purchase_params('STORE-RB-IA', emu.card_token(CARD))
    )
    assert field(ipc.parse_response(body), 'Status') == '5'
    # The OrderID may be sent again; the same card gets the same token.
    merchant.answer = (200, 'OK')
    result = emu.pay(store_card_fields(merchant.url, 'STORE-RB'))
    assert result.outcome == 'paid'
    assert dict(result.return_fields)['CardToken'] == emu.card_token(CARD)
    assert list(emu.tokens()) == [emu.card_token(CARD)]


def test_store_card_declined_card(emu, merchant):
    result = emu.pay(store_card_fields(merchant.url, 'STORE-DECL'), card='4877000000000002')
    assert (result.outcome, result.status) == ('declined', 21)
    assert merchant.requests == [] and emu.tokens() == {}
    assert emu.order('STORE-DECL')['status'] == 'declined'


def test_store_card_paid_order_id_is_a_duplicate(emu, merchant):
    assert emu.pay(store_card_fields(merchant.url, 'STORE-DUP')).outcome == 'paid'
    result = emu.pay(store_card_fields(merchant.url, 'STORE-DUP'))
    assert (result.outcome, result.status) == ('rejected', 20)


# === In-process and control API === #


def test_store_card_in_process(emu):
    token = emu.store_card(MASTERCARD, expiry='03/28')
    assert token == emu.card_token(MASTERCARD)
    assert _without(emu.tokens()[token].items(), 'created_at') == {
        'token': token,
        'saved_by': [],
        'sid': const.SANDBOX_SID,
        'pan': '4444',
        'exp_date': '2803',
        'card_type': '1',
    }
    other = emu.store_card(CARD, sid=OTHER_SID)
    assert other == emu.card_token(CARD, sid=OTHER_SID) != emu.card_token(CARD)
    assert emu.tokens()[other]['sid'] == OTHER_SID
    for card, expiry in (('4877000000000002', '12/30'), ('123', '12/30'), (CARD, '01/20')):
        with pytest.raises(EmulatorError):
            emu.store_card(card, expiry=expiry)


def test_control_endpoints_with_stored_cards(emu, merchant):
    fields = store_card_fields(merchant.url, 'CTRL-STORE')
    status, result = _control(emu, 'pay', {'fields': fields, 'card': MASTERCARD, 'follow': True})
    assert status == 200 and result['outcome'] == 'paid'
    assert dict(result['return_fields'])['CardToken'] == emu.card_token(MASTERCARD)
    assert dict(result['return_fields'])['Amount'] == '0.00'
    assert result['followed']['status'] == 200
    status, record = _control(emu, 'store_card', {'card': CARD, 'expiry': '10/30'})
    assert status == 200
    assert (record['token'], record['pan'], record['exp_date']) == (
        emu.card_token(CARD),
        '0007',
        '3010',
    )
    assert _control(emu, 'store_card', {'card': '4877000000000002'})[0] == 400
    status, state = _control(emu, 'state')
    assert sorted(state['tokens']) == sorted([emu.card_token(MASTERCARD), emu.card_token(CARD)])
