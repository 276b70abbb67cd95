"""The emulator: an HTTP server playing myPOS Checkout, its state, fault switches and test drivers.

See README.md for the behaviour, the differences from real myPOS and the fault switches.
"""

import copy
import dataclasses
import datetime
import http.client
import ipaddress
import itertools
import json
import random
import secrets
import ssl
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlencode, urljoin, urlsplit

from . import keys, messages, pages
from ._ipc import SANDBOX_STORE_PRIVATE_KEY_FILE, const, ipc
from .messages import Fields, Reject

USER_AGENT = 'myPOS-Checkout-Emulator/1.0 (payment_mypos)'
TEST_PATH = '/vmp/checkout-test'
PRODUCTION_PATH = '/vmp/checkout'
CHECKOUT_PATHS = {TEST_PATH, TEST_PATH + '/', PRODUCTION_PATH, PRODUCTION_PATH + '/'}
SESSION_PREFIX = '/vmp/session/'
MAX_BODY_BYTES = ipc.MAX_FORM_BYTES
MAX_ANSWER_BYTES = 64 * 1024


class EmulatorError(Exception):
    """Misuse of the emulator (bad configuration, bad fault value, ...)."""


# === Fault switches === #

_DUPLICATE_MODES = (False, 'sequential', 'concurrent')
_API_FAULTS = (
    'api_http_status',
    'api_redirect',
    'api_garbage',
    'api_bad_signature',
    'api_unsigned',
    'api_timeout',
    'api_drop_answer',
    'api_drip',
    'refund_insufficient_funds',
)


# The HTTP statuses each status fault may take.
_HTTP_STATUS_FAULTS = {
    'api_http_status': range(100, 600),
    'api_redirect': (301, 302, 303, 307, 308),
}


@dataclass
class Faults:
    """Fault switches. All are sticky (stay set until changed or reset) except `notify_fail_once`,
    which is consumed by the next payment, and the api_* / refund faults when
    `api_faults_remaining` is set (they then apply to that many server-to-server calls only).
    """

    # Notifications (IPCPurchaseNotify / IPCPurchaseRollback to URL_Notify):
    notify_delay: float = 0.0  # Seconds; the browser goes to URL_OK at once, notify sent later.
    notify_drop: bool = False  # Never send the notify; the payment stays paid (reconciliation).
    notify_duplicate: bool | str = False  # 'sequential' (True) or 'concurrent': send twice.
    notify_reorder: bool = False  # Rollback first, then a stale notify; payment ends reversed.
    notify_fail_once: bool = False  # One-shot: notify not delivered, treated as failed: rollback.
    notify_omit_card_type: bool = False  # Leave CardType out of the notify (as the real sandbox).
    # Server-to-server calls (IPCRefund, IPCGetTxnStatus, IPCGetPaymentStatus):
    api_http_status: int | None = None  # Answer this HTTP status (e.g. 503); call not processed.
    api_redirect: int | None = None  # Redirect (e.g. 307) to this very endpoint; not processed.
    api_garbage: bool = False  # Answer HTTP 200 with an HTML body; the call is processed.
    api_bad_signature: bool = False  # Answer with a Signature that does not verify; processed.
    api_unsigned: bool = False  # Answer without any Signature (as myPOS may for errors); processed.
    api_timeout: float = 0.0  # Sleep this many seconds before answering; processed.
    api_drop_answer: bool = False  # Close the connection without any answer; processed.
    api_drip: float = 0.0  # Send the answer one byte every this many seconds; processed.
    refund_insufficient_funds: bool = False  # IPCRefund answers Status 13 E_NOT_SUFFICIENT_FUNDS.
    api_faults_remaining: int | None = None  # None = sticky; n = the api faults hit n calls.

    def as_dict(self):
        return dataclasses.asdict(self)

    def update(self, values):
        """Set switches from a mapping (e.g. JSON); ``{"reset": true}`` first clears them all."""
        values = dict(values or {})
        if values.pop('reset', False):
            self.reset()
        names = {f.name for f in dataclasses.fields(self)}
        unknown = set(values) - names
        if unknown:
            raise EmulatorError(f"unknown fault switch(es): {', '.join(sorted(unknown))}")
        for name, value in values.items():
            setattr(self, name, self._coerce(name, value))
        return self

    def reset(self):
        for f in dataclasses.fields(self):
            setattr(self, f.name, f.default)
        return self

    @staticmethod
    def _coerce(name, value):
        try:
            if name in ('notify_delay', 'api_timeout', 'api_drip'):
                value = float(value or 0)
                if value < 0:
                    raise ValueError
                return value
            if name == 'notify_duplicate':
                if value in (True, 'true', 'True', 1):
                    return 'sequential'
                if value in (False, None, '', 0, 'false', 'False'):
                    return False
                if value not in _DUPLICATE_MODES:
                    raise ValueError
                return value
            if name in _HTTP_STATUS_FAULTS:
                if value in (None, '', 0):
                    return None
                if int(value) not in _HTTP_STATUS_FAULTS[name]:
                    raise ValueError
                return int(value)
            if name == 'api_faults_remaining':
                if value in (None, ''):
                    return None
                value = int(value)
                if value < 1:
                    raise ValueError
                return value
            if isinstance(value, str):
                return value.lower() in ('1', 'true', 'yes', 'on')
            return bool(value)
        except (TypeError, ValueError):
            raise EmulatorError(f"invalid value {value!r} for fault switch {name}") from None

    def api_active(self, method):
        return bool(
            self.api_http_status
            or self.api_redirect
            or self.api_garbage
            or self.api_bad_signature
            or self.api_unsigned
            or self.api_timeout
            or self.api_drop_answer
            or self.api_drip
            or (self.refund_insufficient_funds and method == 'IPCRefund')
        )


# === Results of the test drivers === #


@dataclass
class PaymentResult:
    """What happened when :meth:`Emulator.pay` / :meth:`Emulator.cancel` drove a purchase.

    outcome: 'paid' (notify acknowledged, browser to URL_OK), 'reversed' (notify not acknowledged,
    rollback sent, browser to URL_Cancel), 'pending' (notify_delay: browser to URL_OK, notify
    later), 'declined' (declined card; no message), 'invalid_card' (card form refused),
    'cancelled' (Cancel button, browser to URL_Cancel), 'rejected' (the purchase form was refused:
    error page with `status`), 'closed' (the session or order could not be paid any more).
    """

    outcome: str
    status: int
    status_name: str
    message: str = ''
    order_id: str | None = None
    ipc_trnref: str | None = None
    session_url: str | None = None
    notifications: list = field(default_factory=list)
    return_url: str | None = None
    return_method: str | None = None
    return_fields: list | None = None
    followed: dict | None = None
    html: str = ''

    @property
    def notify(self):
        """The first notification record of this payment (or None)."""
        return self.notifications[0] if self.notifications else None

    def as_dict(self):
        data = dataclasses.asdict(self)
        data['return_fields'] = [list(pair) for pair in self.return_fields or ()] or None
        return data


def _now():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def _iso(moment=None):
    return (moment or _now()).isoformat()


def _jsonable(value):
    if isinstance(value, Decimal):
        return messages.format_decimal(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _is_loopback(host):
    if host == 'localhost':
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def http_request(
    method, url, body=None, headers=None, timeout=10.0, verify_tls=True, max_bytes=MAX_ANSWER_BYTES
):
    """One HTTP request without following redirects: return (status, headers, body bytes).

    :raise OSError: When the server cannot be reached or does not answer in time.
    """
    parts = urlsplit(url)
    path = parts.path or '/'
    if parts.query:
        path += '?' + parts.query
    if parts.scheme == 'https':
        context = ssl.create_default_context()
        if not verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        connection = http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=timeout, context=context
        )
    elif parts.scheme == 'http':
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    else:
        raise OSError(f"unsupported URL scheme in {url!r}")
    try:
        if isinstance(body, str):
            body = body.encode('utf-8')
        connection.request(method, path, body=body, headers=dict(headers or {}))
        response = connection.getresponse()
        data = response.read(max_bytes)
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data
    except http.client.HTTPException as error:
        raise OSError(f"HTTP error: {error!r}") from None
    finally:
        connection.close()


class _Response:
    def __init__(self, status=200, body=b'', content_type='text/html; charset=utf-8', headers=None):
        self.status = status
        self.body = body.encode('utf-8') if isinstance(body, str) else body
        self.content_type = content_type
        self.headers = dict(headers or {})
        self.drop = False  # Close the connection instead of answering (api_drop_answer).
        self.drip = 0.0  # Seconds between the bytes of the body (api_drip).


def _json_response(data, status=200):
    return _Response(
        status,
        json.dumps(_jsonable(data), indent=1, ensure_ascii=False),
        'application/json; charset=utf-8',
    )


# === The emulator === #


class Emulator:
    """A local myPOS Checkout (IPC) server; see README.md.

    :param str host: Loopback address to listen on.
    :param int port: TCP port; 0 picks a free one (see :attr:`port` after :meth:`start`).
    :param state_dir: Where the emulator's key and certificate are kept (created if missing).
    :param str merchant_public_key_pem: Certificate, public key (or private key) of the merchant,
        used to verify requests. Default: the public sandbox store key of payment_mypos.
    :param str sid: Accepted store ID. :param str wallet_number: Its wallet (client) number.
    :param int key_index: Accepted KeyIndex.
    :param float notify_timeout: Timeout of each notification POST, in seconds.
    :param bool verify_tls: Check the certificate of an https URL_Notify.
    :param bool require_https_notify: Behave like real myPOS with an http URL_Notify: send
        nothing there and treat the notification as failed (payment reversed). Default: http is
        accepted, since the emulator usually talks to a local Odoo.
    :param bool verbose: Log requests and notifications on stderr.
    """

    def __init__(
        self,
        host='127.0.0.1',
        port=8899,
        state_dir=None,
        merchant_public_key_pem=None,
        *,
        sid=const.SANDBOX_SID,
        wallet_number=const.SANDBOX_WALLET_NUMBER,
        key_index=const.SANDBOX_KEY_INDEX,
        store_name='myPOS Emulator Store',
        billing_descriptor='myPOS  * EMULATOR',
        currencies=None,
        notify_timeout=10.0,
        verify_tls=True,
        require_https_notify=False,
        faults=None,
        verbose=False,
    ):
        if not _is_loopback(host):
            raise EmulatorError(f"the emulator listens on loopback only, not on {host!r}")
        self.host = host
        self._requested_port = int(port)
        self.keys = keys.load_or_create(state_dir)
        if merchant_public_key_pem is None:
            merchant_public_key_pem = Path(SANDBOX_STORE_PRIVATE_KEY_FILE).read_text()
        try:
            merchant_public_key_pem = keys.public_key_pem(merchant_public_key_pem)
        except ipc.IPCError as error:
            raise EmulatorError(f"the merchant key cannot be read: {error}") from None
        self.store = messages.Store(
            sid=str(sid),
            wallet_number=str(wallet_number),
            key_index=int(key_index),
            merchant_public_key_pem=merchant_public_key_pem,
            name=store_name,
            billing_descriptor=billing_descriptor,
            currencies=frozenset(currencies or const.SUPPORTED_CURRENCIES),
        )
        self.notify_timeout = float(notify_timeout)
        self.verify_tls = verify_tls
        self.require_https_notify = require_https_notify
        self.verbose = verbose
        self._lock = threading.RLock()
        self._faults = Faults()
        if faults:
            self.faults = faults
        self._server = None
        self._thread = None
        self._stopping = threading.Event()
        self._workers = set()
        self._reset_state()

    # --- Lifecycle --- #

    def start(self):
        """Start serving in a background thread; return self."""
        if self._server:
            return self
        handler = type('Handler', (_Handler,), {'emulator': self})
        self._stopping.clear()
        self._server = ThreadingHTTPServer((self.host, self._requested_port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={'poll_interval': 0.05},
            name='mypos-emulator',
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self):
        """Serve in the calling thread until interrupted (used by ``python -m mypos_emulator``)."""
        self.start()
        try:
            while self._thread.is_alive():
                self._thread.join(0.5)
        finally:
            self.stop()

    def stop(self, timeout=5.0):
        """Stop the server; pending delayed notifications are dropped."""
        self._stopping.set()
        server, self._server = self._server, None
        if server:
            server.shutdown()
            server.server_close()
        if self._thread:
            self._thread.join(timeout)
            self._thread = None
        self.wait_idle(timeout)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    # --- Addresses --- #

    @property
    def port(self):
        return self._server.server_address[1] if self._server else self._requested_port

    @property
    def base_url(self):
        host = f'[{self.host}]' if ':' in self.host else self.host
        return f'http://{host}:{self.port}'

    @property
    def url(self):
        """The sandbox-style checkout endpoint, e.g. http://127.0.0.1:8899/vmp/checkout-test."""
        return self.base_url + TEST_PATH

    @property
    def production_url(self):
        return self.base_url + PRODUCTION_PATH

    @property
    def certificate_pem(self):
        """The emulator's self-signed certificate: paste it as the provider's myPOS certificate."""
        return self.keys.certificate_pem

    @property
    def certificate_path(self):
        return self.keys.certificate_path

    # --- Faults --- #

    @property
    def faults(self):
        """The live :class:`Faults`; assign a Faults or a dict to replace all switches."""
        return self._faults

    @faults.setter
    def faults(self, value):
        with self._lock:
            if isinstance(value, Faults):
                self._faults = copy.copy(value)
            else:
                self._faults = Faults().update(value)

    def set_faults(self, **switches):
        """Change some switches, keep the others: ``emu.set_faults(notify_drop=True)``."""
        with self._lock:
            self._faults.update(switches)
        return self._faults

    def reset_faults(self):
        with self._lock:
            self._faults.reset()

    # --- State --- #

    def _reset_state(self):
        with self._lock:
            self._orders = {}
            self._sessions = {}
            self._trnrefs = {}
            self._notifications = []
            self._refunds = []
            self._api_calls = []
            self._rejected = []
            self._trnref_counter = itertools.count(random.randint(100000, 899999))
            self._stan_counter = itertools.count(1)

    def reset(self):
        """Forget every order, session, notification and refund, and clear the faults."""
        self.wait_idle()
        self._reset_state()
        self.reset_faults()

    @property
    def state(self):
        """A JSON-serialisable snapshot of everything the emulator saw and sent."""
        with self._lock:
            return _jsonable(
                {
                    'store': {
                        'sid': self.store.sid,
                        'wallet_number': self.store.wallet_number,
                        'key_index': self.store.key_index,
                        'name': self.store.name,
                        'url': self.url,
                        'production_url': self.production_url,
                        'certificate_path': str(self.certificate_path),
                    },
                    'faults': self._faults.as_dict(),
                    'orders': copy.deepcopy(self._orders),
                    'sessions': {
                        token: {k: v for k, v in session.items() if k != 'fields'}
                        for token, session in self._sessions.items()
                    },
                    'notifications': copy.deepcopy(self._notifications),
                    'refunds': copy.deepcopy(self._refunds),
                    'api_calls': copy.deepcopy(self._api_calls),
                    'rejected': copy.deepcopy(self._rejected),
                }
            )

    def order(self, order_id):
        """The state of one order (a dict), or None."""
        with self._lock:
            order = self._orders.get(order_id)
            return _jsonable(copy.deepcopy(order)) if order else None

    def notifications(self, order_id=None, method=None):
        """The notification records (oldest first), optionally of one order and/or method."""
        with self._lock:
            return [
                copy.deepcopy(n)
                for n in self._notifications
                if (order_id is None or n['order_id'] == order_id)
                and (method is None or n['method'] == method)
            ]

    def refunds(self, order_id=None):
        """The accepted refunds (oldest first), optionally of one purchase OrderID."""
        with self._lock:
            return [
                _jsonable(copy.deepcopy(r))
                for r in self._refunds
                if order_id is None or r['order_id'] == order_id
            ]

    def api_calls(self):
        with self._lock:
            return copy.deepcopy(self._api_calls)

    def rejected(self):
        with self._lock:
            return copy.deepcopy(self._rejected)

    def wait_idle(self, timeout=15.0):
        """Wait for background notifications (notify_delay, concurrent duplicates) to finish.

        :return: True if none is left running.
        """
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                workers = [w for w in self._workers if w.is_alive()]
                self._workers = set(workers)
            if not workers:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            workers[0].join(remaining)

    # --- Test drivers (real HTTP against this emulator, as a browser would) --- #

    @staticmethod
    def _as_pairs(fields):
        if isinstance(fields, str):
            _action, pairs = pages.parse_html_form(fields)
            if not pairs:
                raise EmulatorError("no form with inputs found in the HTML")
            return pairs
        if isinstance(fields, dict):
            fields = fields.items()
        return [(str(name), '' if value is None else str(value)) for name, value in fields]

    def _browser_post(self, url, pairs, timeout=60.0):
        return http_request(
            'POST',
            url,
            urlencode(pairs),
            {
                'Content-Type': 'application/x-www-form-urlencoded',
                'User-Agent': 'Mozilla/5.0 (myPOS emulator test driver)',
                'Accept': 'text/html',
            },
            timeout=timeout,
            verify_tls=self.verify_tls,
            max_bytes=None,
        )

    def submit(self, fields):
        """POST an IPCPurchase form like a browser. Return (status code, session URL or None, html).

        :param fields: (name, value) pairs in posting order, a dict, or the HTML of the redirect
                       form (its first form's inputs are posted, in order).
        """
        status, session_url, html, _message = self._submit(fields)
        return status, session_url, html

    def _submit(self, fields):
        if not self._server:
            raise EmulatorError("the emulator is not started")
        status, headers, body = self._browser_post(self.url, self._as_pairs(fields))
        html = body.decode('utf-8', errors='replace')
        message = unquote(headers.get('x-emulator-message', ''))
        if status == 303:
            return 0, urljoin(self.base_url, headers['location']), html, message
        return int(headers.get('x-emulator-status', messages.IPC_ERROR)), None, html, message

    def pay(self, fields, card='4006090000000007', expiry='12/30', cvc='123', follow=False):
        """Do what a customer does: post the purchase form, then pay on the card page.

        The notification goes to URL_Notify over real HTTP exactly as with a browser. Nothing is
        posted to URL_OK / URL_Cancel unless `follow` is true: then the return form is posted
        there (no redirect followed) and the answer is in ``result.followed``.

        :param fields: See :meth:`submit`.
        :rtype: PaymentResult
        """
        return self._drive(
            fields,
            [('card_number', card), ('card_expiry', expiry), ('card_cvc', cvc), ('action', 'pay')],
            follow,
        )

    def cancel(self, fields, follow=False):
        """Post the purchase form, then press Cancel on the card page. :rtype: PaymentResult"""
        return self._drive(fields, [('action', 'cancel')], follow)

    def _drive(self, fields, page_pairs, follow):
        status, session_url, html, message = self._submit(fields)
        if not session_url:
            return PaymentResult(
                'rejected',
                status,
                messages.STATUS_NAMES.get(status, ''),
                message=message,
                html=html,
            )
        _status, headers, body = self._browser_post(session_url, page_pairs)
        html = body.decode('utf-8', errors='replace')
        token = session_url.rsplit('/', 1)[-1]
        with self._lock:
            session = copy.deepcopy(self._sessions[token])
            notifications = [
                copy.deepcopy(n)
                for n in self._notifications
                if n['seq'] in session['notifications']
            ]
        result = PaymentResult(
            outcome=headers.get('x-emulator-outcome', ''),
            status=int(headers.get('x-emulator-status', 0)),
            status_name='',
            message=unquote(headers.get('x-emulator-message', '')),
            order_id=session['order_id'],
            ipc_trnref=session.get('ipc_trnref'),
            session_url=session_url,
            notifications=notifications,
            html=html,
        )
        result.status_name = messages.STATUS_NAMES.get(result.status, '')
        action, pairs = pages.parse_html_form(html, 'return_form')
        if action:
            result.return_url, result.return_fields = action, pairs
            result.return_method = dict(pairs).get('IPCmethod')
            if follow:
                status, headers, body = self._browser_post(action, pairs)
                result.followed = {
                    'status': status,
                    'headers': headers,
                    'body': body.decode('utf-8', errors='replace'),
                }
        return result

    def resend(self, order_id):
        """Post the order's last notification (IPCPurchaseNotify or Rollback) to URL_Notify again.

        :return: The new notification record.
        """
        with self._lock:
            order = self._orders.get(order_id)
            if not order or not order['last_message']:
                raise EmulatorError(f"order {order_id!r} has no message to resend")
            message = [tuple(pair) for pair in order['last_message']]
            if message[0][1] not in ('IPCPurchaseNotify', 'IPCPurchaseRollback'):
                raise EmulatorError(
                    f"the last message of {order_id!r} is {message[0][1]}, "
                    f"which is not sent to URL_Notify"
                )
        self._deliver(order_id, message, fault='resend')
        return self.notifications(order_id)[-1]

    # --- HTTP routing --- #

    def _log(self, text):
        if self.verbose:
            sys.stderr.write(f'[mypos-emulator] {text}\n')
            sys.stderr.flush()

    def _route(self, method, path, headers, body):
        if path in CHECKOUT_PATHS:
            if method != 'POST':
                return _Response(
                    405,
                    "The myPOS Checkout endpoint accepts POST only.",
                    'text/plain; charset=utf-8',
                    {'Allow': 'POST'},
                )
            return self._checkout(headers, body)
        if path.startswith(SESSION_PREFIX):
            token = path[len(SESSION_PREFIX) :].strip('/')
            if method == 'GET':
                return self._session_page(token)
            return self._session_action(token, body)
        if path == '/' and method == 'GET':
            return _Response(200, pages.index_page(self))
        if path.startswith('/_emulator/'):
            return self._control(method, path[len('/_emulator/') :].strip('/'), body)
        return _Response(404, "Not found", 'text/plain; charset=utf-8')

    def _control(self, method, name, body):
        try:
            data = json.loads(body or b'{}') if method == 'POST' else {}
            if not isinstance(data, dict):
                raise EmulatorError("the body must be a JSON object")
            if name == 'state' and method == 'GET':
                return _json_response(self.state)
            if name == 'certificate' and method == 'GET':
                return _Response(200, self.certificate_pem, 'application/x-pem-file')
            if name == 'faults':
                if method == 'POST':
                    with self._lock:
                        self._faults.update(data)
                return _json_response(self._faults.as_dict())
            if name == 'reset' and method == 'POST':
                self.reset()
                return _json_response({'reset': True})
            if name in ('pay', 'cancel') and method == 'POST':
                if 'fields' not in data:
                    raise EmulatorError("'fields' is required")
                fields = data['fields']
                if name == 'pay':
                    result = self.pay(
                        fields,
                        **{k: data[k] for k in ('card', 'expiry', 'cvc', 'follow') if k in data},
                    )
                else:
                    result = self.cancel(fields, follow=bool(data.get('follow')))
                return _json_response(result.as_dict())
            if name == 'resend' and method == 'POST':
                return _json_response(self.resend(data.get('order_id')))
        except (EmulatorError, ValueError) as error:
            return _json_response({'error': str(error)}, 400)
        return _json_response({'error': f"no control endpoint {method} /_emulator/{name}"}, 404)

    # --- Checkout endpoint --- #

    def _checkout(self, headers, body):
        browser = 'text/html' in (headers.get('accept') or '')
        try:
            pairs = ipc.parse_form(body)
        except ipc.MalformedMessage as error:
            reject = Reject(messages.INVALID_PARAMS, str(error))
            if browser:
                return self._purchase_error(reject, None)
            return self._api_answer('', None, reject_tree=reject, fields=Fields([]))
        fields = Fields(pairs)
        method = fields.get('IPCmethod', '')
        if method == 'IPCPurchase':
            return self._purchase(fields, headers)
        if method in messages.API_METHODS:
            return self._api(method, fields, headers)
        if not method:
            reject = Reject(messages.MISSING_REQ_PARAMS, "missing required field(s): IPCmethod")
        else:
            reject = Reject(messages.UNSUPPORTED_CALL, f"IPCmethod {method!r} is not supported")
        if browser:
            return self._purchase_error(reject, fields.get('OrderID'))
        return self._api_answer(method, None, reject_tree=reject, fields=fields)

    def _purchase_error(self, reject, order_id):
        with self._lock:
            self._rejected.append(
                {
                    'at': _iso(),
                    'order_id': order_id,
                    'status': reject.status,
                    'name': reject.name,
                    'message': reject.message,
                }
            )
        self._log(
            f"IPCPurchase {order_id!r} refused: {reject.status} {reject.name}: {reject.message}"
        )
        return _Response(
            200,
            pages.error_page(self.store.name, reject.status, reject.name, reject.message),
            headers={
                'X-Emulator-Status': str(reject.status),
                'X-Emulator-Message': quote(reject.message),
            },
        )

    def _purchase(self, fields, headers):
        order_id = fields.get('OrderID')
        try:
            if not headers.get('user-agent'):
                raise Reject(messages.IPC_ERROR, "the User-Agent header is required")
            purchase = messages.check_purchase(fields, self.store)
            with self._lock:
                order = self._orders.get(order_id)
                if order and order['status'] in ('paid', 'processing'):
                    raise Reject(
                        messages.DUPLICATE_TRANSMISSION,
                        f"a payment was already made with OrderID {order_id}",
                    )
                token = secrets.token_urlsafe(18)
                if not order:
                    order = self._orders[order_id] = {
                        'order_id': order_id,
                        'status': 'pending',
                        'ipc_trnref': None,
                        'request_stan': None,
                        'request_datetime': None,
                        'pan': None,
                        'card_type': None,
                        'refunded': Decimal(0),
                        'refunds': [],
                        'last_message': None,
                        'messages': [],
                        'sessions': [],
                        'attempts': [],
                        'created_at': _iso(),
                    }
                order.update(
                    {
                        'status': 'pending',
                        'amount': purchase['amount_text'],
                        'currency': purchase['currency'],
                        'url_ok': purchase['url_ok'],
                        'url_cancel': purchase['url_cancel'],
                        'url_notify': purchase['url_notify'],
                    }
                )
                order['sessions'].append(token)
                self._sessions[token] = {
                    'token': token,
                    'order_id': order_id,
                    'status': 'open',
                    'outcome': None,
                    'created_at': _iso(),
                    'purchase': purchase,
                    'fields': fields.pairs,
                    'ipc_trnref': None,
                    'notifications': [],
                }
        except Reject as reject:
            return self._purchase_error(reject, order_id)
        self._log(
            f"IPCPurchase {order_id!r} {purchase['amount_text']} {purchase['currency']}: "
            f"payment page {SESSION_PREFIX}{token}"
        )
        return _Response(
            303,
            b'',
            headers={
                'Location': SESSION_PREFIX + token,
                'X-Emulator-Status': '0',
                'X-Emulator-Session': token,
            },
        )

    # --- Payment page --- #

    def _page(self, html, outcome, status=0, message='', http_status=200):
        return _Response(
            http_status,
            html,
            headers={
                'X-Emulator-Outcome': outcome,
                'X-Emulator-Status': str(status),
                'X-Emulator-Message': quote(message),
            },
        )

    def _closed(self, status, message, http_status=200):
        name = messages.STATUS_NAMES[status]
        return self._page(
            pages.closed_page(status, name, message), 'closed', status, message, http_status
        )

    def _open_session(self, token):
        """Return (session, None) for an open payment session, else (None, the error page).

        Call with the lock held.
        """
        session = self._sessions.get(token)
        if not session:
            return None, self._closed(messages.INVALID_SESSION, "unknown payment session", 404)
        if session['status'] != 'open':
            return None, self._closed(
                messages.INVALID_SESSION, f"this payment session is {session['status']}"
            )
        return session, None

    def _session_page(self, token):
        with self._lock:
            session, error_page = self._open_session(token)
            if error_page:
                return error_page
            return self._page(pages.payment_page(session, self.store), 'open')

    def _session_action(self, token, body):
        try:
            form = dict(
                parse_qsl((body or b'').decode('utf-8', errors='replace'), keep_blank_values=True)
            )
        except ValueError:
            form = {}
        with self._lock:
            session, error_page = self._open_session(token)
            if error_page:
                return error_page
            order = self._orders[session['order_id']]
            if order['status'] in ('paid', 'processing'):
                session['status'] = 'closed'
                return self._closed(
                    messages.DUPLICATE_TRANSMISSION, f"OrderID {order['order_id']} was already paid"
                )
        if form.get('action') == 'cancel':
            return self._cancel_session(session)
        return self._pay_session(session, form)

    def _cancel_session(self, session):
        purchase = session['purchase']
        with self._lock:
            order = self._orders[session['order_id']]
            if session['status'] != 'open' or order['status'] in ('paid', 'processing'):
                return self._closed(
                    messages.INVALID_SESSION, f"this payment session is {session['status']}"
                )
            message = self._sign_message('IPCPurchaseCancel', purchase)
            session.update(status='cancelled', outcome='cancelled')
            order['status'] = 'cancelled'
            order['last_message'] = message
            order['messages'].append({'method': 'IPCPurchaseCancel', 'to': 'browser', 'at': _iso()})
        self._log(f"IPCPurchaseCancel {purchase['order_id']!r}: customer cancelled")
        return self._page(
            pages.return_page(purchase['url_cancel'], message, "Payment cancelled"), 'cancelled'
        )

    def _sign_message(self, method, purchase, extra=()):
        pairs = [
            ('IPCmethod', method),
            ('SID', self.store.sid),
            ('Amount', purchase['amount_text']),
            ('Currency', purchase['currency']),
            ('OrderID', purchase['order_id']),
            *extra,
        ]
        return ipc.sign_fields(pairs, self.keys.private_key_pem)

    def _pay_session(self, session, form):
        purchase = session['purchase']
        today = datetime.date.today()
        try:
            number, exp_date = messages.check_card(
                form.get('card_number'), form.get('card_expiry'), form.get('card_cvc'), today
            )
        except Reject as reject:
            error = f"{reject.status} {reject.name}: {reject.message}"
            return self._page(
                pages.payment_page(session, self.store, error),
                'invalid_card',
                reject.status,
                reject.message,
            )
        with self._lock:
            order = self._orders[session['order_id']]
            if session['status'] != 'open' or order['status'] in ('paid', 'processing'):
                return self._closed(
                    messages.DUPLICATE_TRANSMISSION, f"OrderID {order['order_id']} was already paid"
                )
            attempt = {'at': _iso(), 'pan': number[-4:], 'session': session['token']}
            order['attempts'].append(attempt)
            if number in messages.DECLINED_CARDS:
                attempt['outcome'] = 'declined'
                order['status'] = 'declined'
                reason = messages.DECLINED_CARDS[number]
                self._log(f"IPCPurchase {order['order_id']!r}: card ...{number[-4:]} declined")
                return self._page(
                    pages.declined_page(
                        session,
                        messages.TRANSACTION_DECLINED,
                        messages.STATUS_NAMES[messages.TRANSACTION_DECLINED],
                        reason,
                    ),
                    'declined',
                    messages.TRANSACTION_DECLINED,
                    reason,
                )
            attempt['outcome'] = 'approved'
            trnref = str(next(self._trnref_counter))
            stan = f'{next(self._stan_counter) % 1000000:06d}'
            moment = _now()
            card_type = messages.card_type(number)
            extra = [
                ('IPC_Trnref', trnref),
                ('RequestSTAN', stan),
                ('RequestDateTime', moment.strftime('%Y-%m-%d %H:%M:%S')),
                ('PaymentMethod', '1'),
                ('BillingDescriptor', self.store.billing_descriptor),
                ('PAN', number[-4:]),
            ]
            if purchase['card_token_request'] == '2':
                extra += [
                    ('CardToken', 'EMU' + secrets.token_hex(16).upper()),
                    ('ExpDate', exp_date),
                ]
            if not self._faults.notify_omit_card_type:
                extra.append(('CardType', card_type))
            if purchase['payment_parameters_required'] in ('1', '2'):
                extra += [
                    (name, purchase['customer'][name])
                    for name in (
                        'CustomerEmail',
                        'CustomerPhone',
                        'CustomerFirstNames',
                        'CustomerFamilyName',
                    )
                    if purchase['customer'].get(name)
                ]
            notify = self._sign_message('IPCPurchaseNotify', purchase, extra)
            ok_message = self._sign_message('IPCPurchaseOK', purchase, extra)
            order.update(
                {
                    'status': 'processing',
                    'ipc_trnref': trnref,
                    'request_stan': stan,
                    'request_datetime': moment.strftime('%Y-%m-%d %H:%M:%S'),
                    'pan': number[-4:],
                    'card_type': card_type,
                    'amount': purchase['amount_text'],
                    'currency': purchase['currency'],
                    'url_notify': purchase['url_notify'],
                }
            )
            self._trnrefs[trnref] = order['order_id']
            session.update(status='processing', ipc_trnref=trnref)
            faults = copy.copy(self._faults)
            self._faults.notify_fail_once = False  # One-shot.
        outcome = self._notify_flow(session, notify, faults)
        if outcome in ('paid', 'pending'):
            return self._page(
                pages.return_page(purchase['url_ok'], ok_message, "Payment approved"), outcome
            )
        cancel = self._sign_message('IPCPurchaseCancel', purchase)
        with self._lock:
            self._orders[purchase['order_id']]['messages'].append(
                {'method': 'IPCPurchaseCancel', 'to': 'browser', 'at': _iso()}
            )
        return self._page(
            pages.return_page(purchase['url_cancel'], cancel, "Payment failed"),
            outcome,
            messages.IPC_ERROR,
            "the notification was not acknowledged with OK: payment reversed",
        )

    # --- Notifications --- #

    def _spawn(self, target, *args):
        worker = threading.Thread(
            target=target, args=args, daemon=True, name='mypos-emulator-notify'
        )
        with self._lock:
            self._workers.add(worker)
        worker.start()
        return worker

    def _notify_flow(self, session, notify, faults):
        """Deliver the notify per the faults; return 'paid', 'reversed' or 'pending'."""
        if faults.notify_delay > 0:

            def later():
                if self._stopping.wait(faults.notify_delay):
                    self._record(
                        session,
                        notify,
                        fault='delay',
                        error="emulator stopped before the delayed notification was sent",
                    )
                    return
                self._notify_flow(session, notify, dataclasses.replace(faults, notify_delay=0))

            self._spawn(later)
            return 'pending'
        order_id = session['order_id']
        purchase = session['purchase']
        rollback = self._sign_message('IPCPurchaseRollback', purchase)
        if faults.notify_reorder:
            self._set_last_message(order_id, rollback)
            self._deliver(order_id, rollback, session, fault='reorder')
            self._deliver(order_id, notify, session, fault='reorder: stale notify after rollback')
            self._finish(session, 'reversed')
            return 'reversed'
        self._set_last_message(order_id, notify)
        if faults.notify_drop:
            self._record(session, notify, fault='drop', error="dropped (fault notify_drop)")
            self._finish(session, 'paid')
            return 'paid'
        if faults.notify_fail_once:
            self._record(
                session,
                notify,
                fault='fail_once',
                error="not delivered (fault notify_fail_once): treated as failed",
            )
            acknowledged = False
        elif faults.notify_duplicate == 'concurrent':
            results = []
            threads = [
                threading.Thread(
                    target=lambda: results.append(
                        self._deliver(order_id, notify, session, fault='duplicate (concurrent)')
                    )
                )
                for _ in range(2)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            acknowledged = any(results)
        elif faults.notify_duplicate:
            first = self._deliver(order_id, notify, session, fault='duplicate (1/2)')
            second = self._deliver(order_id, notify, session, fault='duplicate (2/2)')
            acknowledged = first or second
        else:
            acknowledged = self._deliver(order_id, notify, session)
        if acknowledged:
            self._finish(session, 'paid')
            return 'paid'
        self._set_last_message(order_id, rollback)
        self._deliver(order_id, rollback, session)
        self._finish(session, 'reversed')
        return 'reversed'

    def _set_last_message(self, order_id, message):
        with self._lock:
            order = self._orders[order_id]
            order['last_message'] = message
            order['messages'].append({'method': message[0][1], 'to': 'notify', 'at': _iso()})

    def _finish(self, session, status):
        with self._lock:
            order = self._orders[session['order_id']]
            order['status'] = status
            if status == 'paid':
                order['paid_at'] = _iso()
            session.update(status=status, outcome=status)
        self._log(f"order {session['order_id']!r}: {status}")

    def _record(
        self,
        session_or_none,
        message,
        fault=None,
        error=None,
        order_id=None,
        url=None,
        http_status=None,
        body=None,
        delivered=False,
    ):
        if order_id is None:
            order_id = session_or_none['order_id']
        with self._lock:
            if url is None:
                url = self._orders[order_id]['url_notify']
            record = {
                'seq': len(self._notifications) + 1,
                'order_id': order_id,
                'method': message[0][1],
                'url': url,
                'fields': [list(p) for p in message],
                'fault': fault,
                'delivered': delivered,
                'http_status': http_status,
                'body': body,
                'error': error,
                'acknowledged': http_status == 200 and body == 'OK',
                'at': _iso(),
            }
            self._notifications.append(record)
            if session_or_none is not None:
                session_or_none['notifications'].append(record['seq'])
        return record

    def _deliver(self, order_id, message, session=None, fault=None):
        """POST a signed message to the order's URL_Notify; True when answered 200 ``OK``."""
        with self._lock:
            url = self._orders[order_id]['url_notify']
        http_status = body = error = None
        if self.require_https_notify and urlsplit(url).scheme != 'https':
            record = self._record(
                session,
                message,
                fault=fault,
                order_id=order_id,
                url=url,
                error="not sent: URL_Notify is not https (require_https_notify)",
            )
            self._log(f"{record['method']} {order_id!r}: {record['error']}")
            return False
        try:
            http_status, _headers, raw = http_request(
                'POST',
                url,
                urlencode(message),
                {
                    'Content-Type': 'application/x-www-form-urlencoded',
                    'User-Agent': USER_AGENT,
                },
                timeout=self.notify_timeout,
                verify_tls=self.verify_tls,
            )
            body = raw.decode('utf-8', errors='replace')
        except (OSError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        record = self._record(
            session,
            message,
            fault=fault,
            error=error,
            order_id=order_id,
            url=url,
            http_status=http_status,
            body=body,
            delivered=error is None,
        )
        self._log(
            f"{record['method']} {order_id!r} -> {url}: {error or f'{http_status} {body[:60]!r}'}"
        )
        return record['acknowledged']

    # --- Server-to-server calls --- #

    def _take_api_faults(self, method):
        with self._lock:
            faults = copy.copy(self._faults)
            if self._faults.api_active(method) and self._faults.api_faults_remaining is not None:
                self._faults.api_faults_remaining -= 1
                if self._faults.api_faults_remaining <= 0:
                    for name in _API_FAULTS:
                        setattr(self._faults, name, Faults.__dataclass_fields__[name].default)
                    self._faults.api_faults_remaining = None
            return faults if faults.api_active(method) else Faults()

    def _api(self, method, fields, headers):
        faults = self._take_api_faults(method)
        call = {
            'at': _iso(),
            'method': method,
            'order_id': fields.get('OrderID'),
            'ipc_trnref': fields.get('IPC_Trnref'),
            'amount': fields.get('Amount'),
            'status': None,
            'fault': None,
        }
        if faults.api_http_status or faults.api_redirect:  # Answered, never processed.
            status = faults.api_http_status or faults.api_redirect
            call.update(fault=f"{'http' if faults.api_http_status else 'redirect'} {status}")
            with self._lock:
                self._api_calls.append(call)
            if faults.api_http_status:
                return _Response(
                    status,
                    f"<html><body><h1>{status}</h1>Service error "
                    f"(emulator fault api_http_status)</body></html>",
                )
            return _Response(
                status, "Moved (emulator fault api_redirect)", 'text/plain', {'Location': self.url}
            )
        try:
            if not headers.get('user-agent'):
                raise Reject(messages.IPC_ERROR, "the User-Agent header is required")
            messages.check_identity(fields, self.store)
            handler = {
                'IPCRefund': self._api_refund,
                'IPCGetTxnStatus': self._api_txn_status,
                'IPCGetPaymentStatus': self._api_payment_status,
            }.get(method)
            if handler is None:
                raise Reject(messages.UNSUPPORTED_CALL, f"IPCmethod {method} is not emulated")
            tree = handler(fields, faults)
            reject = None
        except Reject as error:
            tree, reject = None, error
        response = self._api_answer(
            method,
            tree,
            reject_tree=reject,
            fields=fields,
            bad_signature=faults.api_bad_signature,
            unsigned=faults.api_unsigned,
        )
        call['status'] = reject.status if reject else 0
        call['status_msg'] = reject.message if reject else 'Success'
        if faults.api_garbage:
            call['fault'] = 'garbage'
            response = _Response(
                200,
                "<html><head><title>Error</title></head><body>Temporary problem<br></body></html>",
            )
        elif faults.api_bad_signature:
            call['fault'] = 'bad signature'
        elif faults.api_unsigned:
            call['fault'] = 'unsigned'
        if faults.api_timeout:
            call['fault'] = ', '.join(
                filter(None, [call['fault'], f'timeout {faults.api_timeout}s'])
            )
        with self._lock:
            self._api_calls.append(call)
        self._log(
            f"{method} {call['order_id'] or call['ipc_trnref']!r}: Status {call['status']}"
            f"{' (' + call['fault'] + ')' if call['fault'] else ''}"
        )
        if faults.api_drop_answer:
            call['fault'] = ', '.join(filter(None, [call['fault'], 'answer dropped']))
            response.drop = True
        if faults.api_drip:
            call['fault'] = ', '.join(filter(None, [call['fault'], f'drip {faults.api_drip}s']))
            response.drip = faults.api_drip
        if faults.api_timeout:
            self._stopping.wait(faults.api_timeout)
        return response

    def _api_answer(
        self, method, tree, reject_tree=None, fields=None, bad_signature=False, unsigned=False
    ):
        if reject_tree is not None:
            key = messages.ANSWER_METHOD_KEY.get(method, 'IPCmethod')
            tree = [
                (key, method or ''),
                ('Status', str(reject_tree.status)),
                ('StatusMsg', reject_tree.message),
            ]
        answer = messages.signed(tree, self.keys.private_key_pem)
        if bad_signature:
            values = ipc.flatten_values(answer[:-1]) + ['tampered']
            answer[-1] = ('Signature', ipc.sign(values, self.keys.private_key_pem))
        if unsigned:
            answer = answer[:-1]
        content_type, body = messages.render(answer, fields.get('OutputFormat') if fields else '')
        return _Response(200, body, content_type)

    def _api_refund(self, fields, faults):
        fields.require('IPC_Trnref', 'Amount', 'Currency')
        amount = messages.parse_amount(fields.get('Amount'))
        if amount <= 0:
            raise Reject(messages.WRONG_AMOUNT, "the refund Amount must be positive")
        trnref, currency = fields.get('IPC_Trnref'), fields.get('Currency')
        refund_order_id = fields.get('OrderID') or ''
        with self._lock:
            order_id = self._trnrefs.get(trnref)
            if order_id is None:
                raise Reject(messages.INVALID_PARAMS, f"unknown IPC_Trnref {trnref!r}")
            order = self._orders[order_id]
            if order['status'] != 'paid':
                raise Reject(
                    messages.TRANSACTION_NOT_PERMITTED,
                    f"the purchase {order_id} is {order['status']}, not paid",
                )
            if currency != order['currency']:
                raise Reject(
                    messages.INVALID_PARAMS,
                    f"Currency {currency} differs from the purchase's {order['currency']}",
                )
            if refund_order_id and (
                refund_order_id in self._orders
                or any(r['refund_order_id'] == refund_order_id for r in self._refunds)
            ):
                raise Reject(
                    messages.DUPLICATE_TRANSMISSION, f"OrderID {refund_order_id} was already used"
                )
            if faults.refund_insufficient_funds:
                raise Reject(
                    messages.NOT_SUFFICIENT_FUNDS,
                    "not enough funds in the merchant account (fault)",
                )
            balance = Decimal(order['amount']) - order['refunded']
            if amount > balance:
                raise Reject(
                    messages.WRONG_AMOUNT,
                    f"the refund {fields.get('Amount')} exceeds the refundable balance "
                    f"{messages.format_decimal(balance)}",
                )
            order['refunded'] += amount
            refund = {
                'at': _iso(),
                'order_id': order_id,
                'refund_order_id': refund_order_id,
                'ipc_trnref': trnref,
                'amount': fields.get('Amount'),
                'currency': currency,
                'balance_after': Decimal(order['amount']) - order['refunded'],
            }
            order['refunds'].append(refund)
            self._refunds.append(dict(refund))
        return [
            ('IPCmethod', 'IPCRefund'),
            ('IPC_Trnref', trnref),
            ('Amount', fields.get('Amount')),
            ('Currency', currency),
            ('Status', '0'),
            ('StatusMsg', 'Success'),
        ]

    def _api_txn_status(self, fields, _faults):
        fields.require('OrderID')
        order_id = fields.get('OrderID')
        with self._lock:
            order = self._orders.get(order_id)
            last = (
                [tuple(pair) for pair in order['last_message']]
                if order and order['last_message']
                else None
            )
        tree = [('IPCMethod', 'IPCGetTxnStatus'), ('OrderID', order_id)]
        if not last:
            # A refund's OrderID: its last message is the refund itself (undocumented for real
            # myPOS, API §4.8, §9 — an assumption the module documents).
            refund = next((r for r in self.refunds() if r['refund_order_id'] == order_id), None)
            if refund:
                order = refund
                last = messages.signed(
                    [
                        ('IPCmethod', 'IPCRefund'),
                        ('SID', self.store.sid),
                        ('Amount', refund['amount']),
                        ('Currency', refund['currency']),
                        ('OrderID', order_id),
                        ('IPC_Trnref', refund['ipc_trnref']),
                    ],
                    self.keys.private_key_pem,
                )
        if last:
            tree.append(('OrderStatus', last))
        return tree + [('Status', '0'), ('StatusMsg', 'Success' if order else 'Order not found')]

    def _api_payment_status(self, fields, _faults):
        fields.require('OrderID')
        order_id = fields.get('OrderID')
        with self._lock:
            order = copy.deepcopy(self._orders.get(order_id))
        tree = [('IPCMethod', 'IPCGetPaymentStatus'), ('OrderID', order_id)]
        if not order:
            return tree + [
                ('PaymentStatus', '0'),
                ('Status', '0'),
                ('StatusMsg', 'Order not found'),
            ]
        payment_status = {
            'paid': '1',
            'pending': '2',
            'processing': '2',
            'cancelled': '3',
            'declined': '3',
            'reversed': '4',
        }[order['status']]
        trnref = order['ipc_trnref'] if order['status'] in ('paid', 'reversed') else ''
        return tree + [
            ('PaymentMethod', '1'),
            ('PaymentStatus', payment_status),
            ('PaymentReference', f'MTEMU{trnref}' if trnref else ''),
            ('Amount', order['amount']),
            ('Currency', order['currency']),
            ('IPC_Trnref', trnref or ''),
            ('DateTime', order['request_datetime'] if trnref else ''),
            ('FeeAmount', '0.00' if payment_status == '1' else ''),
            ('Status', '0'),
            ('StatusMsg', 'Success'),
        ]


class _Handler(BaseHTTPRequestHandler):
    emulator = None  # Set on the per-emulator subclass.
    server_version = 'myPOS-Emulator/1.0'
    protocol_version = 'HTTP/1.0'

    def _handle(self):
        path = urlsplit(self.path).path
        try:
            length = int(self.headers.get('Content-Length') or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES + 1024:
            return self._send(_Response(413, "Request body too large", 'text/plain'))
        body = self.rfile.read(length) if length else b''
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            response = self.emulator._route(self.command, path, headers, body)
        except Exception:  # Keep serving; show the error to the developer.
            trace = traceback.format_exc()
            sys.stderr.write(trace)
            response = _Response(500, trace, 'text/plain; charset=utf-8')
        self._send(response)

    do_GET = do_POST = _handle

    def _send(self, response):
        if response.drop:  # The call was processed; its answer is lost on the way back.
            self.close_connection = True
            return
        try:
            self.send_response(response.status)
            self.send_header('Content-Type', response.content_type)
            self.send_header('Content-Length', str(len(response.body)))
            self.send_header('Cache-Control', 'no-store')
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != 'HEAD' and response.drip:
                for index in range(len(response.body)):
                    self.wfile.write(response.body[index : index + 1])
                    self.wfile.flush()
                    if self.emulator._stopping.wait(response.drip):
                        break
            elif self.command != 'HEAD':
                self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # The client gave up (e.g. api_timeout fault).

    # BaseHTTPRequestHandler's signature, argument name included.
    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        if self.emulator.verbose:
            sys.stderr.write(f'[mypos-emulator] {self.address_string()} {format % args}\n')
