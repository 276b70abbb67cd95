"""HTML pages of the emulator: payment page, error pages and the auto-submitting return form.

Element ids are stable, for browser tests: ``#card_number``, ``#card_expiry``, ``#card_cvc``,
``#pay``, ``#cancel`` (payment page; ``#store_card`` instead of ``#amount`` when it only stores a
card; ``#preauth`` and ``#item_name`` on a pre-authorisation; with more than one method the radio
inputs ``input[name="payment_method"]``, ids ``#payment_method_<value>``); ``#method_step``
(``data-method``), ``#method_name``, ``#pay``, ``#cancel``, ``#change_method`` (the step of a
method other than card); ``#retry``, ``#cancel`` (decline page); ``#error_code``,
``#error_name``, ``#error_message`` (error pages); ``#return_form`` and ``#continue`` (the form
that takes the browser back to the shop).
"""

from html import escape
from html.parser import HTMLParser

from . import methods

_STYLE = """
body{font-family:system-ui,sans-serif;background:#f2f4f7;margin:0;color:#1d2939}
main{max-width:560px;margin:40px auto;background:#fff;border-radius:8px;padding:24px 32px;
box-shadow:0 1px 4px rgba(0,0,0,.12)}
h1{font-size:1.3em}.banner{background:#fef0c7;padding:6px 10px;border-radius:4px;font-size:.85em}
table{width:100%;border-collapse:collapse;margin:12px 0}
td,th{padding:4px;border-bottom:1px solid #eaecf0;text-align:left}td.n,th.n{text-align:right}
label{display:block;margin:10px 0 2px}
input{width:100%;padding:8px;box-sizing:border-box;font-size:1em}
button{padding:10px 18px;font-size:1em;margin:16px 8px 0 0;cursor:pointer}
#pay,#retry{background:#12b76a;color:#fff;border:0;border-radius:4px}
.error{color:#b42318}.total{font-size:1.4em;font-weight:bold}small{color:#667085}
"""


def _page(title, body):
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{escape(title)}</title><style>{_STYLE}</style></head><body><main>'
        '<p class="banner">myPOS Checkout <b>emulator</b> &mdash; no real payment</p>'
        f'{body}</main></body></html>\n'
    )


def error_page(store_name, status, name, message):
    """The page myPOS shows when the purchase form is refused: the status code and its name."""
    return _page(
        f"Error {status} {name}",
        (
            f'<h1 id="error_title">{escape(store_name)} has sent a shopping cart with errors</h1>'
            f'<p>Error code <b id="error_code">{status}</b> '
            f'<b id="error_name">{escape(name)}</b></p>'
            f'<p id="error_message" class="error">{escape(message)}</p>'
            '<p><small>The payment page is not shown; no notification is sent.</small></p>'
        ),
    )


def _summary(purchase):
    """The amount and cart of a purchase page."""
    rows = ''.join(
        f'<tr class="cart_row"><td>{escape(row["article"])}</td>'
        f'<td class="n">{escape(row["quantity"])}</td><td class="n">{escape(row["price"])}</td>'
        f'<td class="n">{escape(row["amount"])} {escape(row["currency"])}</td></tr>'
        for row in purchase['cart']
    )
    return (
        f'<p class="total"><span id="amount">{escape(purchase["amount_text"])}</span> '
        f'<span id="currency">{escape(purchase["currency"])}</span></p>'
        '<table id="cart"><tr><th>Article</th><th class="n">Qty</th><th class="n">Price</th>'
        f'<th class="n">Amount</th></tr>{rows}</table>'
    )


def _head(store, purchase, heading):
    return (
        f'<h1>{heading} <span id="store_name">{escape(store.name)}</span></h1>'
        f'<p><small>Store ID <span id="sid">{escape(store.sid)}</span> &middot; '
        f'order <span id="order_id">{escape(purchase["order_id"])}</span></small></p>'
    )


def _method_choice(offered, chosen):
    """Radio inputs `payment_method` (one per offered method) and the script that shows the card
    fields only while the card is chosen (a browser without scripts shows them always)."""
    radios = ''.join(
        f'<label class="method"><input type="radio" id="payment_method_{m}" name="payment_method"'
        f' value="{m}"{" checked" if m == chosen else ""} style="width:auto"> '
        f'{escape(methods.LABELS[m])}</label>'
        for m in offered
    )
    return (
        f'<fieldset id="payment_methods"><legend>Pay with</legend>{radios}</fieldset>',
        '<script>(function(){var f=document.getElementById("card_fields");'
        'function s(){var c=document.querySelector(\'input[name="payment_method"]:checked\');'
        'f.style.display=(c&&c.value==="1")?"":"none";}'
        'document.querySelectorAll(\'input[name="payment_method"]\').forEach(function(r){'
        'r.addEventListener("change",s);});s();})();</script>',
    )


def payment_page(session, store, error=None, chosen=None):
    """The hosted page of a purchase session: the methods offered (radio inputs when more than
    one), the card form; with CardTokenRequest=1 it stores the card without paying, so it shows
    no amount and no cart; a pre-authorisation shows its amount and item and says the amount is
    only held. A purchase offering one method other than card goes straight to its step."""
    purchase = session['purchase']
    offered = purchase.get('payment_methods') or (methods.CARD,)
    if len(offered) == 1 and offered[0] != methods.CARD:
        return method_page(session, store, offered[0], error)
    store_only = purchase['card_token_request'] == '1'
    preauth = purchase.get('kind') == 'preauth'
    error_html = f'<p id="card_error" class="error">{escape(error)}</p>' if error else ''
    note = f'<p id="note">{escape(purchase["note"])}</p>' if purchase['note'] else ''
    if preauth:
        title = f"Pre-authorise {purchase['amount_text']} {purchase['currency']}"
        heading, button = "Pre-authorisation for", "Authorise"
        summary = (
            f'<p class="total"><span id="amount">{escape(purchase["amount_text"])}</span> '
            f'<span id="currency">{escape(purchase["currency"])}</span></p>'
            f'<p>For <span id="item_name">{escape(purchase["item_name"])}</span></p>'
            '<p id="preauth">This is a pre-authorisation: the amount is held on your card, not '
            'charged. The store captures it later (all or part of it) or releases it.</p>'
        )
    elif store_only:
        title, heading, button = "Save a card", "Save your card for", "Save card"
        summary = (
            '<p id="store_card" class="total">No payment now: your card is stored for later '
            'payments to this store.</p>'
        )
    else:
        title = f"Pay {purchase['amount_text']} {purchase['currency']}"
        heading, button = "Payment to", "Pay"
        summary = _summary(purchase)
        if purchase['card_token_request'] == '2':
            summary += (
                '<p id="save_card"><small>The card is also stored for later payments.</small></p>'
            )
    choice, script = '', ''
    if len(offered) > 1:
        default = methods.CARD if methods.CARD in offered else offered[0]
        choice, script = _method_choice(offered, chosen if chosen in offered else default)
    required = '' if choice else ' required'
    return _page(
        title,
        (
            f'{_head(store, purchase, heading)}{summary}{note}{error_html}'
            f'<form id="card_form" method="post" action="/vmp/session/{escape(session["token"])}">'
            f'{choice}<div id="card_fields">'
            '<label for="card_number">Card number</label>'
            '<input id="card_number" name="card_number" inputmode="numeric"'
            ' autocomplete="cc-number"'
            f' placeholder="4006 0900 0000 0007"{required}>'
            '<label for="card_expiry">Expiry (MM/YY)</label>'
            '<input id="card_expiry" name="card_expiry" autocomplete="cc-exp" placeholder="12/30"'
            f'{required}>'
            '<label for="card_cvc">CVC</label>'
            '<input id="card_cvc" name="card_cvc" inputmode="numeric" autocomplete="cc-csc"'
            f' placeholder="123"{required}></div>'
            f'<button id="pay" type="submit" name="action" value="pay">{button}</button>'
            '<button id="cancel" type="submit" name="action" value="cancel" formnovalidate>'
            f'Cancel</button></form>{script}'
            '<p><small>Test cards: 4006 0900 0000 0007 approves (as does any other number), '
            '4877 0000 0000 0002 is declined. Any future expiry, any CVC.</small></p>'
        ),
    )


def method_page(session, store, method, error=None):
    """The step of a method other than card: one "Pay with <method>" button (the emulator's
    stand-in for the bank's or wallet's own approval) and Cancel."""
    purchase = session['purchase']
    label = escape(methods.LABELS[method])
    token = escape(session['token'])
    offered = purchase.get('payment_methods') or ()
    back = (
        f'<p><a id="change_method" href="/vmp/session/{token}">Choose another method</a></p>'
        if len(offered) > 1
        else ''
    )
    error_html = f'<p id="method_error" class="error">{escape(error)}</p>' if error else ''
    return _page(
        f"Pay with {methods.LABELS[method]}",
        (
            f'{_head(store, purchase, "Payment to")}{_summary(purchase)}{error_html}'
            f'<p id="method_step" data-method="{method}">Pay with '
            f'<b id="method_name">{label}</b>: approve the payment in your '
            f'{label} app or bank (emulated: one button).</p>'
            f'<form id="method_form" method="post" action="/vmp/session/{token}">'
            f'<input type="hidden" name="payment_method" value="{method}">'
            f'<button id="pay" type="submit" name="action" value="confirm">Pay with {label}'
            '</button><button id="cancel" type="submit" name="action" value="cancel">Cancel'
            f'</button></form>{back}'
        ),
    )


def declined_page(session, status, name, message):
    """Shown after a declined card: try again or cancel (no notification is sent)."""
    token = escape(session['token'])
    return _page(
        "Payment declined",
        (
            '<h1>Payment declined</h1>'
            f'<p>Error code <b id="error_code">{status}</b>'
            f' <b id="error_name">{escape(name)}</b></p>'
            f'<p id="error_message" class="error">{escape(message)}</p>'
            f'<form method="get" action="/vmp/session/{token}">'
            '<button id="retry" type="submit">Try another card</button></form>'
            f'<form method="post" action="/vmp/session/{token}">'
            '<button id="cancel" type="submit" name="action" value="cancel">Cancel payment</button>'
            '</form>'
        ),
    )


def closed_page(status, name, message):
    return _page(
        "Payment session closed",
        (
            '<h1>This payment session is closed</h1>'
            f'<p>Error code <b id="error_code">{status}</b>'
            f' <b id="error_name">{escape(name)}</b></p>'
            f'<p id="error_message" class="error">{escape(message)}</p>'
        ),
    )


def return_page(action, pairs, title):
    """The auto-submitting POST form that sends the browser back to URL_OK / URL_Cancel."""
    inputs = ''.join(
        f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'
        for name, value in pairs
    )
    return _page(
        title,
        (
            f'<h1>{escape(title)}</h1><p>Returning to the shop&hellip;</p>'
            f'<form id="return_form" method="post" action="{escape(action)}">{inputs}'
            '<button id="continue" type="submit">Continue</button></form>'
            '<script>document.getElementById("return_form").submit();</script>'
        ),
    )


def index_page(emulator):
    return _page(
        "myPOS Checkout emulator",
        (
            '<h1>myPOS Checkout emulator</h1>'
            f'<p>Checkout endpoints: <code>{escape(emulator.url)}</code> and '
            f'<code>{escape(emulator.production_url)}</code></p>'
            f'<p>Store: SID <code>{escape(emulator.store.sid)}</code>, wallet '
            f'<code>{escape(emulator.store.wallet_number)}</code>, KeyIndex '
            f'<code>{emulator.store.key_index}</code></p>'
            '<p>myPOS certificate to paste into the provider '
            '(<a href="/_emulator/certificate">download</a>):</p>'
            f'<pre id="certificate">{escape(emulator.certificate_pem)}</pre>'
            '<p>Control: <a href="/_emulator/state">/_emulator/state</a>, '
            '<a href="/_emulator/faults">/_emulator/faults</a></p>'
        ),
    )


class _FormParser(HTMLParser):
    """Collects the first form (or the one with a given id) and its inputs, in order."""

    def __init__(self, form_id=None):
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.action = None
        self.pairs = []
        self._inside = False
        self._done = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if self._done:
            return
        if tag == 'form' and not self._inside:
            if self.form_id is None or attrs.get('id') == self.form_id:
                self._inside = True
                self.action = attrs.get('action') or ''
        elif tag == 'input' and self._inside and attrs.get('name') is not None:
            if attrs.get('type', 'text').lower() not in ('submit', 'button', 'image', 'reset'):
                self.pairs.append((attrs['name'], attrs.get('value') or ''))

    def handle_endtag(self, tag):
        if tag == 'form' and self._inside:
            self._inside = False
            self._done = True


def parse_html_form(html, form_id=None):
    """Return (action, [(name, value), ...]) of a form in an HTML text, inputs in document order.

    Attribute values are un-escaped, exactly as a browser posts them.

    :return: (None, []) when there is no such form.
    """
    parser = _FormParser(form_id)
    parser.feed(html)
    parser.close()
    return parser.action, parser.pairs
