"""Helpers of the emulator's tests: a tiny merchant server and request builders (no Odoo)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlencode

from mypos_emulator import http_request
from mypos_emulator._ipc import SANDBOX_STORE_PRIVATE_KEY_FILE, const, ipc, layouts

DATA_DIR = Path(__file__).parent / 'data'
STORE_KEY = SANDBOX_STORE_PRIVATE_KEY_FILE.read_text()
DEFAULT_ROWS = (('Chair', '2', '10.00', '20.00'), ('Delivery', '1', '3.45', '3.45'))


def verifies(pairs, certificate_pem):
    """The merchant's check of a form from myPOS: its layout when the addon's ipc knows the
    method, and its signature over the values in received order."""
    if not pairs or pairs[-1][0] != 'Signature':
        return False
    if pairs[0][1] in const.FORM_LAYOUTS:
        try:
            layouts.read_form(pairs).verify(certificate_pem)
        except ipc.IPCError:
            return False
        return True
    return ipc.verify([value for _name, value in pairs[:-1]], pairs[-1][1], certificate_pem)


def load_vectors():
    return json.loads((DATA_DIR / 'request_vectors.json').read_text(encoding='utf-8'))


class Merchant:
    """A merchant web site: records every request; answers the notify URL with `answer`.

    `answer` is (HTTP status, body) or a callable(pairs) returning one; default (200, 'OK').
    """

    def __init__(self, certificate_pem):
        self.certificate_pem = certificate_pem
        self.requests = []
        self.answer = (200, 'OK')
        self._lock = threading.Lock()
        merchant = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get('Content-Length') or 0))
                pairs = ipc.parse_form(body) if body else []
                verified = verifies(pairs, merchant.certificate_pem)
                with merchant._lock:
                    merchant.requests.append(
                        {
                            'path': self.path,
                            'pairs': pairs,
                            'verified': verified,
                            'user_agent': self.headers.get('User-Agent'),
                            'content_type': self.headers.get('Content-Type'),
                        }
                    )
                status, text = (200, 'page')
                if self.path == '/notify':
                    answer = merchant.answer
                    status, text = answer(pairs) if callable(answer) else answer
                data = text.encode()
                self.send_response(status)
                self.send_header('Content-Type', 'text/plain')
                self.send_header('Content-Length', str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self._server.daemon_threads = True
        self.url = f'http://127.0.0.1:{self._server.server_address[1]}'
        threading.Thread(
            target=self._server.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True
        ).start()

    def stop(self):
        self._server.shutdown()
        self._server.server_close()

    def received(self, path='/notify'):
        """[(IPCmethod, pairs dict, verified)] of the requests to `path`, oldest first."""
        with self._lock:
            return [
                (dict(r['pairs']).get('IPCmethod'), dict(r['pairs']), r['verified'])
                for r in self.requests
                if r['path'] == path
            ]


def purchase_fields(
    merchant_url,
    order_id,
    amount='23.45',
    currency='EUR',
    rows=DEFAULT_ROWS,
    overrides=None,
    drop=(),
    extra=(),
    key=STORE_KEY,
    notify_url=None,
):
    """Signed IPCPurchase fields; `overrides` replace values by name, `drop` removes fields."""
    fields = [
        ('IPCmethod', 'IPCPurchase'),
        ('IPCVersion', '1.4'),
        ('IPCLanguage', 'EN'),
        ('SID', const.SANDBOX_SID),
        ('WalletNumber', const.SANDBOX_WALLET_NUMBER),
        ('KeyIndex', '1'),
        ('Source', 'emulator_tests'),
        ('Amount', amount),
        ('Currency', currency),
        ('OrderID', order_id),
        ('URL_OK', merchant_url + '/ok'),
        ('URL_Cancel', merchant_url + '/cancel'),
        ('URL_Notify', notify_url or merchant_url + '/notify'),
        ('CardTokenRequest', '0'),
        ('PaymentParametersRequired', '3'),
        ('CartItems', str(len(rows))),
    ]
    for n, (article, quantity, price, row_amount) in enumerate(rows, start=1):
        fields += [
            (f'Article_{n}', article),
            (f'Quantity_{n}', quantity),
            (f'Price_{n}', price),
            (f'Currency_{n}', currency),
            (f'Amount_{n}', row_amount),
        ]
    overrides = dict(overrides or {})
    fields = [(name, overrides.pop(name, value)) for name, value in fields if name not in drop]
    fields += list(overrides.items()) + list(extra)
    return ipc.sign_fields(fields, key)


def credentials(
    emu, key=STORE_KEY, sid=const.SANDBOX_SID, wallet=const.SANDBOX_WALLET_NUMBER, key_index=1
):
    return ipc.Credentials(sid, wallet, key_index, key, emu.certificate_pem)


def post(url, pairs, user_agent='emulator-tests', timeout=10.0):
    headers = {'Content-Type': 'application/x-www-form-urlencoded'}
    if user_agent:
        headers['User-Agent'] = user_agent
    return http_request('POST', url, urlencode(pairs), headers, timeout=timeout)


def api_call(emu, method, params, output_format='xml', timeout=10.0, **credential_options):
    """Send a signed server-to-server call; return (HTTP status, raw body, parsed tree or None).

    The addon asks each call in one format; myPOS answers in either, so the call asks for
    `output_format` here and is signed again.
    """
    store = credentials(emu, **credential_options)
    fields = ipc.build_request(store, method, params, source='emulator_tests')
    fields = [(name, output_format if name == 'OutputFormat' else v) for name, v in fields[:-1]]
    fields = ipc.sign_fields(fields, store.private_key)
    status, _headers, body = post(emu.url, fields, timeout=timeout)
    try:
        tree = ipc.parse_response(body)
    except ipc.MalformedMessage:
        tree = None
    return status, body, tree


def field(tree, name):
    return ipc.get_field(tree, name)


def store_card_fields(merchant_url, order_id, currency='EUR', drop=(), extra=(), **options):
    """Signed CardTokenRequest=1 fields as myPOS's PHP SDK posts them: no Amount, no cart."""
    return purchase_fields(
        merchant_url,
        order_id,
        currency=currency,
        rows=[],
        overrides={'CardTokenRequest': '1', **options.pop('overrides', {})},
        drop=('Amount', 'CartItems', *drop),
        extra=extra,
        **options,
    )


def token_purchase_params(order_id, token, amount='23.45', currency='EUR', rows=None):
    """The own fields of an IPCIAPurchase (charge a stored card), one cart row by default."""
    rows = rows or [('Item', '1', amount, amount)]
    params = [
        ('OrderID', order_id),
        ('Amount', amount),
        ('Currency', currency),
        ('CardToken', token),
        ('CartItems', str(len(rows))),
    ]
    for n, (article, quantity, price, row_amount) in enumerate(rows, start=1):
        params += [
            (f'Article_{n}', article),
            (f'Quantity_{n}', quantity),
            (f'Price_{n}', price),
            (f'Currency_{n}', currency),
            (f'Amount_{n}', row_amount),
        ]
    return params


def preauth_fields(
    merchant_url,
    order_id,
    amount='23.45',
    currency='EUR',
    item_name='S00042',
    overrides=None,
    drop=(),
    extra=(),
    key=STORE_KEY,
):
    """Signed IPCPreAuthorization fields in myPOS's PHP SDK order (no cart, no customer)."""
    fields = [
        ('IPCmethod', 'IPCPreAuthorization'),
        ('IPCVersion', '1.4'),
        ('IPCLanguage', 'EN'),
        ('SID', const.SANDBOX_SID),
        ('WalletNumber', const.SANDBOX_WALLET_NUMBER),
        ('KeyIndex', '1'),
        ('Source', 'emulator_tests'),
        ('ItemName', item_name),
        ('Currency', currency),
        ('Amount', amount),
        ('OrderID', order_id),
        ('URL_OK', merchant_url + '/ok'),
        ('URL_Cancel', merchant_url + '/cancel'),
        ('URL_Notify', merchant_url + '/notify'),
        ('Note', ''),
    ]
    overrides = dict(overrides or {})
    fields = [(name, overrides.pop(name, value)) for name, value in fields if name not in drop]
    fields += list(overrides.items()) + list(extra)
    return ipc.sign_fields(fields, key)
