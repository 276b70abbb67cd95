"""Payment-method selection (`PaymentMethod` of IPCPurchase): the methods the page offers by
currency, the page flow for each method over HTTP, refusals, the echo in the notify, the
notify_payment_method fault, refunds.

https://developers.mypos.com/apis/checkout-api/purchase
https://developers.mypos.com/apis/checkout-api/checkout-getting-started/twint-online-payments
"""

import json
import re
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mypos_emulator import http_request, methods
from mypos_emulator._ipc import ipc
from mypos_emulator.messages import Reject
from mypos_emulator.pages import parse_html_form

from .helpers import api_call, field, purchase_fields, store_card_fields, verifies

CARD_FIELDS = ('PAN', 'CardType', 'ExpDate', 'CardToken')
EVERY = '1,2,4,5,6'


def _fields(merchant, order_id, method=EVERY, currency='EUR', **options):
    extra = [('PaymentMethod', method)] if method is not None else []
    return purchase_fields(merchant.url, order_id, currency=currency, extra=extra, **options)


def _post_page(url, pairs):
    status, headers, body = http_request(
        'POST',
        url,
        urlencode(pairs),
        {'Content-Type': 'application/x-www-form-urlencoded'},
    )
    return status, headers, body.decode()


def _offered(html):
    """The methods the page lets the shopper pick, in page order."""
    return re.findall(r'<input type="radio" id="payment_method_(\d)" name="payment_method"', html)


def _open_page(emu, fields):
    status, session_url, _html = emu.submit(fields)
    assert status == 0, _html
    _status, _headers, body = http_request('GET', session_url)
    return session_url, body.decode()


def _notify(merchant):
    ((method, notify, verified),) = merchant.received('/notify')
    assert method == 'IPCPurchaseNotify' and verified
    return notify


# === What the page offers === #


@pytest.mark.parametrize(
    'method, currency, expected',
    [
        (EVERY, 'EUR', ['1', '2', '4', '6']),
        (EVERY, 'CHF', ['1', '5']),
        (EVERY, 'USD', []),  # Card only: the card page as before, no choice.
        ('5,1', 'CHF', ['5', '1']),  # In the order asked for.
        ('3', 'EUR', ['1', '2']),  # Card and iDEAL, as myPOS documents 3.
        ('3,5', 'CHF', ['1', '5']),  # iDEAL dropped in CHF.
        (None, 'EUR', ['1', '2', '4', '6']),  # Absent: every method of the store.
        (None, 'CHF', ['1', '5']),
    ],
)
def test_page_offers_the_listed_methods_usable_in_the_currency(
    emu, merchant, method, currency, expected
):
    _url, html = _open_page(emu, _fields(merchant, 'OFFER-1', method, currency))
    assert _offered(html) == expected
    assert 'id="card_number"' in html  # The card form is there whenever card is offered.
    if not expected:
        assert 'name="payment_method"' not in html and ' required' in html


@pytest.mark.parametrize(
    'method, currency', [('2', 'EUR'), ('4', 'EUR'), ('6', 'EUR'), ('5', 'CHF')]
)
def test_one_method_goes_straight_to_its_step(emu, merchant, method, currency):
    url, html = _open_page(emu, _fields(merchant, 'ONE-1', method, currency))
    assert f'id="method_step" data-method="{method}"' in html
    assert f'Pay with {methods.LABELS[method]}' in html
    assert 'card_number' not in html and 'change_method' not in html


# === Refusals === #


@pytest.mark.parametrize(
    'method, currency, token_request',
    [
        ('5', 'EUR', '0'),  # TWINT is CHF only.
        ('2', 'CHF', '0'),  # iDEAL is EUR only.
        ('2,4,6', 'USD', '0'),
        ('2', 'EUR', '2'),  # Save a card, but no card offered.
        ('1,1', 'EUR', '0'),
        ('3,2', 'EUR', '0'),  # 3 is card and iDEAL: iDEAL twice.
        ('7', 'EUR', '0'),
        ('0', 'EUR', '0'),
        ('1;2', 'EUR', '0'),
        ('1, 2', 'EUR', '0'),
        ('card', 'EUR', '0'),
    ],
)
def test_purchases_offering_nothing_usable_are_refused_with_5(
    emu, merchant, method, currency, token_request
):
    fields = _fields(
        merchant, 'NONE-1', method, currency, overrides={'CardTokenRequest': token_request}
    )
    result = emu.pay(fields)
    assert (result.outcome, result.status) == ('rejected', 5), result.message
    assert 'has sent a shopping cart with errors' in result.html
    assert merchant.received('/notify') == []


def test_storing_a_card_without_card_in_the_list_is_refused(emu, merchant):
    fields = store_card_fields(
        merchant.url, 'STORE-1', currency='CHF', extra=[('PaymentMethod', '5')]
    )
    assert emu.submit(fields)[0] == 5
    fields = store_card_fields(merchant.url, 'STORE-2', extra=[('PaymentMethod', '1,2')])
    _url, html = _open_page(emu, fields)
    assert _offered(html) == [] and 'id="store_card"' in html  # Only the card can be stored.


def test_a_method_not_offered_cannot_be_chosen(emu, merchant):
    url, _html = _open_page(emu, _fields(merchant, 'NOTOFF-1', '1,2'))
    _status, headers, html = _post_page(url, [('payment_method', '5'), ('action', 'confirm')])
    assert headers['x-emulator-outcome'] == 'invalid_method'
    assert headers['x-emulator-status'] == '5' and 'not offered' in html
    assert merchant.received('/notify') == []
    # The session is still open: the shopper pays with iDEAL after all.
    _status, headers, _html = _post_page(url, [('payment_method', '2'), ('action', 'confirm')])
    assert headers['x-emulator-outcome'] == 'paid'


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.one_of(
        st.lists(st.sampled_from('0123456789'), min_size=1, max_size=6).map(','.join),
        st.text(max_size=8),
    ),
    currency=st.sampled_from(['EUR', 'CHF', 'USD', 'BGN']),
    token_request=st.sampled_from(['0', '1', '2']),
)
def test_offered_methods_are_listed_usable_and_distinct(text, currency, token_request):
    """Any PaymentMethod: refused with 5, or only listed methods usable in the currency."""
    try:
        offered = methods.offered(text, currency, token_request)
    except Reject as reject:
        assert reject.status == 5
        return
    asked = set(text.replace('3', '1,2').split(',')) if text else set(methods.ALL)
    assert offered and len(set(offered)) == len(offered)
    assert set(offered) <= asked and set(offered) <= set(methods.PAYMENT_METHODS)
    assert all(methods.usable(m, currency) for m in offered)
    if token_request != '0':
        assert methods.CARD in offered
    if token_request == '1':
        assert offered == (methods.CARD,)


# === Paying with each method, over HTTP as a browser === #


@pytest.mark.parametrize(
    'method, currency', [('2', 'EUR'), ('4', 'EUR'), ('6', 'EUR'), ('5', 'CHF')]
)
def test_pay_with_each_method_on_the_page(emu, merchant, method, currency):
    url, html = _open_page(emu, _fields(merchant, f'PAY-{method}', EVERY, currency))
    assert method in _offered(html)
    # Choosing the method and pressing Pay shows its step; nothing is paid yet.
    _status, headers, html = _post_page(url, [('payment_method', method), ('action', 'pay')])
    assert headers['x-emulator-outcome'] == 'method_step'
    assert f'data-method="{method}"' in html and 'id="change_method"' in html
    assert merchant.received('/notify') == []
    action, pairs = parse_html_form(html, 'method_form')
    _status, headers, html = _post_page(url, [*pairs, ('action', 'confirm')])
    assert headers['x-emulator-outcome'] == 'paid'
    notify = _notify(merchant)
    assert notify['PaymentMethod'] == method and notify['Currency'] == currency
    assert not set(CARD_FIELDS) & set(notify)
    # The browser goes to URL_OK with the same fields, signed.
    action, ok = parse_html_form(html, 'return_form')
    assert action == merchant.url + '/ok' and verifies(ok, emu.certificate_pem)
    assert dict(ok)['IPCmethod'] == 'IPCPurchaseOK' and dict(ok)['PaymentMethod'] == method
    assert emu.order(f'PAY-{method}')['status'] == 'paid'


@pytest.mark.parametrize('chosen', [None, '1'])  # The card form posted without / with a choice.
def test_card_chosen_among_methods_pays_as_before(emu, merchant, chosen):
    fields = _fields(merchant, 'CARD-1', '1,2', overrides={'CardTokenRequest': '2'})
    result = emu.pay(fields, method=chosen)
    assert result.outcome == 'paid'
    notify = _notify(merchant)
    assert notify['PaymentMethod'] == '1' and notify['PAN'] == '0007'
    assert set(CARD_FIELDS) <= set(notify)


def test_other_method_with_card_token_request_2_stores_no_card(emu, merchant):
    result = emu.pay(
        _fields(merchant, 'SAVE-1', '1,2', overrides={'CardTokenRequest': '2'}), method='2'
    )
    assert result.outcome == 'paid'
    assert not set(CARD_FIELDS) & set(_notify(merchant))
    assert emu.tokens() == {} and emu.order('SAVE-1')['card_token'] is None


def test_a_non_card_payment_acknowledged_otherwise_is_reversed(emu, merchant):
    merchant.answer = (500, 'error')
    result = emu.pay(_fields(merchant, 'ROLL-1', '5', 'CHF'), method='5')
    assert result.outcome == 'reversed' and result.return_method == 'IPCPurchaseCancel'
    assert [m for m, _f, _v in merchant.received('/notify')] == [
        'IPCPurchaseNotify',
        'IPCPurchaseRollback',
    ]


def test_cancel_on_the_method_step(emu, merchant):
    url, _html = _open_page(emu, _fields(merchant, 'CANC-1', '2'))
    _status, headers, _html = _post_page(url, [('payment_method', '2'), ('action', 'cancel')])
    assert headers['x-emulator-outcome'] == 'cancelled'
    assert merchant.received('/notify') == []


# === The echo in the status calls === #


def test_status_calls_report_the_method_used(emu, merchant):
    result = emu.pay(_fields(merchant, 'ST-1', EVERY, 'CHF'), method='5')
    assert result.outcome == 'paid'
    _status, body, _tree = api_call(emu, 'IPCGetTxnStatus', [('OrderID', 'ST-1')])
    nested = field(ipc.check_answer(body, emu.certificate_pem), 'OrderStatus')
    assert field(nested, 'PaymentMethod') == '5' and field(nested, 'PAN') is None
    _status, body, _tree = api_call(emu, 'IPCGetPaymentStatus', [('OrderID', 'ST-1')])
    tree = ipc.check_answer(body, emu.certificate_pem)
    assert (field(tree, 'PaymentMethod'), field(tree, 'PaymentStatus')) == ('5', '1')


# === The notify_payment_method fault === #


def test_notify_payment_method_fault_over_the_control_endpoint(emu, merchant):
    status, _headers, body = http_request(
        'POST',
        f'{emu.base_url}/_emulator/faults',
        json.dumps({'notify_payment_method': '5'}),
        {'Content-Type': 'application/json'},
    )
    assert status == 200 and json.loads(body)['notify_payment_method'] == '5'
    result = emu.pay(_fields(merchant, 'FAULT-1', '2'), method='2')
    assert result.outcome == 'paid'
    assert _notify(merchant)['PaymentMethod'] == '5'  # Signed, though iDEAL was used.
    assert dict(result.return_fields)['PaymentMethod'] == '5'
    assert emu.order('FAULT-1')['payment_method'] == '2'  # What really happened.
    emu.set_faults(notify_payment_method=None)
    emu.pay(_fields(merchant, 'FAULT-2', '2'), method='2')
    assert merchant.received('/notify')[1][1]['PaymentMethod'] == '2'


def test_notify_payment_method_fault_refuses_other_values(emu):
    with pytest.raises(Exception, match='notify_payment_method'):
        emu.set_faults(notify_payment_method=['5'])


# === Refunds === #


@pytest.mark.parametrize('method, currency', [('2', 'EUR'), ('5', 'CHF')])
def test_refund_of_a_non_card_payment(emu, merchant, method, currency):
    result = emu.pay(_fields(merchant, f'REF-{method}', method, currency), method=method)
    assert result.outcome == 'paid'

    def refund(amount, order_id):
        params = [
            ('IPC_Trnref', result.ipc_trnref),
            ('OrderID', order_id),
            ('Amount', amount),
            ('Currency', currency),
        ]
        return api_call(emu, 'IPCRefund', params)[2]

    assert field(refund('20.00', f'REF-{method}-R1'), 'Status') == '0'
    assert field(refund('3.46', f'REF-{method}-R2'), 'Status') == '9'  # 3.45 left.
    assert field(refund('3.45', f'REF-{method}-R3'), 'Status') == '0'


def test_pay_control_endpoint_chooses_the_method(emu, merchant):
    fields = _fields(merchant, 'CTRL-1', EVERY, 'CHF')
    status, _headers, body = http_request(
        'POST',
        f'{emu.base_url}/_emulator/pay',
        json.dumps({'fields': [list(pair) for pair in fields], 'method': '5'}),
        {'Content-Type': 'application/json'},
        timeout=30,
    )
    assert status == 200 and json.loads(body)['outcome'] == 'paid'
    assert _notify(merchant)['PaymentMethod'] == '5'
