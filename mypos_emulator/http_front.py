"""The thin HTTP front: the loopback server and its thread, and which part answers which request.

Parts answer with a :class:`~.wire.Response`; only this module touches sockets on the server side.
"""

import json
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from . import messages, pages
from ._ipc import ipc
from .checkout import SESSION_PREFIX
from .faults import EmulatorError
from .messages import Fields, Reject
from .state import jsonable
from .wire import Response

TEST_PATH = '/vmp/checkout-test'
PRODUCTION_PATH = '/vmp/checkout'
CHECKOUT_PATHS = {TEST_PATH, TEST_PATH + '/', PRODUCTION_PATH, PRODUCTION_PATH + '/'}
CONTROL_PREFIX = '/_emulator/'
MAX_BODY_BYTES = ipc.MAX_FORM_BYTES
_TEXT = 'text/plain; charset=utf-8'


def json_response(data, status=200):
    return Response(
        status,
        json.dumps(jsonable(data), indent=1, ensure_ascii=False),
        'application/json; charset=utf-8',
    )


class HttpFront:
    """The listening server: its addresses, and starting and stopping its thread."""

    def __init__(self, context, host, port):
        self.context = context
        self.host = host
        self._requested_port = int(port)
        self._server = None
        self._thread = None

    @property
    def running(self):
        return self._server is not None

    @property
    def port(self):
        return self._server.server_address[1] if self._server else self._requested_port

    @property
    def base_url(self):
        host = f'[{self.host}]' if ':' in self.host else self.host
        return f'http://{host}:{self.port}'

    @property
    def url(self):
        return self.base_url + TEST_PATH

    @property
    def production_url(self):
        return self.base_url + PRODUCTION_PATH

    def start(self, router):
        """Serve `router` in a background thread (no-op when already serving)."""
        if self._server:
            return
        handler = type('Handler', (_Handler,), {'router': router, 'context': self.context})
        self.context.stopping.clear()
        self._server = ThreadingHTTPServer((self.host, self._requested_port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={'poll_interval': 0.05},
            name='mypos-emulator',
            daemon=True,
        )
        self._thread.start()

    def wait(self):
        """Block until the server thread ends."""
        thread = self._thread
        while thread is not None and thread.is_alive():
            thread.join(0.5)

    def stop(self, timeout=5.0):
        self.context.stopping.set()
        server, self._server = self._server, None
        if server:
            server.shutdown()
            server.server_close()
        if self._thread:
            self._thread.join(timeout)
            self._thread = None


class Router:
    """Sends each request to the part that answers it; serves the JSON control endpoints."""

    def __init__(self, emulator, checkout, api):
        self.emulator = emulator
        self.checkout = checkout
        self.api = api

    def route(self, method, path, headers, body):
        if path in CHECKOUT_PATHS:
            if method != 'POST':
                return Response(
                    405,
                    "The myPOS Checkout endpoint accepts POST only.",
                    _TEXT,
                    {'Allow': 'POST'},
                )
            return self._checkout_endpoint(headers, body)
        if path.startswith(SESSION_PREFIX):
            token = path[len(SESSION_PREFIX) :].strip('/')
            if method == 'GET':
                return self.checkout.page(token)
            return self.checkout.act(token, body)
        if path == '/' and method == 'GET':
            return Response(200, pages.index_page(self.emulator))
        if path.startswith(CONTROL_PREFIX):
            return self._control(method, path[len(CONTROL_PREFIX) :].strip('/'), body)
        return Response(404, "Not found", _TEXT)

    def _checkout_endpoint(self, headers, body):
        """One URL for every call, chosen by IPCmethod: a purchase form or a server call."""
        browser = 'text/html' in (headers.get('accept') or '')
        try:
            pairs = ipc.parse_form(body)
        except ipc.MalformedMessage as error:
            reject = Reject(ipc.Status.E_INVALID_PARAMS, str(error))
            return self._refuse(reject, browser, '', Fields([]))
        fields = Fields(pairs)
        method = fields.get('IPCmethod', '')
        if method in ('IPCPurchase', messages.PREAUTH_METHOD):
            return self.checkout.purchase(fields, headers)
        if method in messages.API_METHODS:
            return self.api.call(method, fields, headers)
        if not method:
            reject = Reject(ipc.Status.E_MISSING_REQ_PARAMS, "missing required field(s): IPCmethod")
        else:
            reject = Reject(ipc.Status.E_UNSUPPORTED_CALL, f"IPCmethod {method!r} is not supported")
        return self._refuse(reject, browser, method, fields)

    def _refuse(self, reject, browser, method, fields):
        """A browser gets the error page; a server gets a signed error answer."""
        if browser:
            return self.checkout.refuse(reject, fields.get('OrderID'))
        return self.api.answer(method, None, reject=reject, fields=fields)

    def _control(self, method, name, body):
        emulator = self.emulator
        try:
            data = json.loads(body or b'{}') if method == 'POST' else {}
            if not isinstance(data, dict):
                raise EmulatorError("the body must be a JSON object")
            if name == 'state' and method == 'GET':
                return json_response(emulator.state)
            if name == 'certificate' and method == 'GET':
                return Response(200, emulator.certificate_pem, 'application/x-pem-file')
            if name == 'faults':
                if method == 'POST':
                    emulator.set_faults(**data)
                return json_response(emulator.faults.as_dict())
            if name == 'reset' and method == 'POST':
                emulator.reset()
                return json_response({'reset': True})
            if name in ('pay', 'cancel') and method == 'POST':
                if 'fields' not in data:
                    raise EmulatorError("'fields' is required")
                fields = data['fields']
                if name == 'pay':
                    result = emulator.pay(
                        fields,
                        **{
                            k: data[k]
                            for k in ('card', 'expiry', 'cvc', 'follow', 'method')
                            if k in data
                        },
                    )
                else:
                    result = emulator.cancel(fields, follow=bool(data.get('follow')))
                return json_response(result.as_dict())
            if name == 'resend' and method == 'POST':
                return json_response(emulator.resend(data.get('order_id')))
            if name == 'preauth' and method == 'POST':
                order_id = data.get('order_id')
                if data.get('expire'):
                    return json_response(emulator.expire_preauth(order_id))
                if data.get('expiry'):
                    return json_response(emulator.set_preauth_expiry(order_id, data['expiry']))
                raise EmulatorError("give 'expire': true or 'expiry': 'YYYY-MM-DD'")
            if name == 'store_card' and method == 'POST':
                options = {k: data[k] for k in ('card', 'expiry', 'sid') if k in data}
                token = emulator.store_card(**options)
                return json_response(emulator.tokens()[token])
        except (EmulatorError, ValueError) as error:
            return json_response({'error': str(error)}, 400)
        return json_response({'error': f"no control endpoint {method} /_emulator/{name}"}, 404)


class _Handler(BaseHTTPRequestHandler):
    router = None  # Both set on the per-emulator subclass.
    context = None
    server_version = 'myPOS-Emulator/1.0'
    protocol_version = 'HTTP/1.0'

    def _handle(self):
        path = urlsplit(self.path).path
        try:
            length = int(self.headers.get('Content-Length') or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES + 1024:
            return self._send(Response(413, "Request body too large", 'text/plain'))
        body = self.rfile.read(length) if length else b''
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            response = self.router.route(self.command, path, headers, body)
        except Exception:  # Keep serving; show the error to the developer.
            trace = traceback.format_exc()
            sys.stderr.write(trace)
            response = Response(500, trace, _TEXT)
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
                    if self.context.stopping.wait(response.drip):
                        break
            elif self.command != 'HEAD':
                self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # The client gave up (e.g. api_timeout fault).

    # BaseHTTPRequestHandler's signature, argument name included.
    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        if self.context.verbose:
            sys.stderr.write(f'[mypos-emulator] {self.address_string()} {format % args}\n')
