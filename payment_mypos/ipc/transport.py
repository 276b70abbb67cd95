# Part of payment_mypos. License LGPL-3.
"""The HTTP exchange with myPOS: one POST, a total deadline, a size cap, and a failure that says
whether the request may have reached myPOS."""

import concurrent.futures
import contextlib
import http.client
import socket
import threading
import time
from dataclasses import dataclass

import requests
import urllib3

from . import const, layouts
from .answers import check_answer
from .errors import Failure, MalformedMessage, RemoteError


@dataclass(frozen=True)
class Call:
    """A signed server-to-server call, ready to send: what a thread needs, and nothing of Odoo."""

    method: str
    url: str
    fields: tuple
    certificate: str  # myPOS's certificate, which verifies the answer.
    user_agent: str  # Who calls: myPOS refuses a request without a User-Agent.

    def send(self):
        """Send the call and return myPOS's answer, verified, status 0, read against its layout.

        :rtype: layouts.Message
        :raise RemoteError: If there is no such answer; `kind` says whether money may have moved.
        """
        tree = check_answer(post(self.url, list(self.fields), self.user_agent), self.certificate)
        try:
            return layouts.read_answer(tree, self.method)
        except MalformedMessage as error:
            raise RemoteError(
                Failure.GARBAGE,
                f"myPOS's answer is signed, but cannot be read: {error}",
                tree=tree,
                code='remote_layout',
                reason=error,
            ) from None

    def outcome(self):
        """Send the call: (answer, None), or (None, the :class:`RemoteError`) when there is none."""
        try:
            return self.send(), None
        except RemoteError as error:
            return None, error


def send_all(calls, concurrency):
    """Send calls, at most `concurrency` at a time, and return (answer, error) for each, in order.

    :param list calls: :class:`Call` objects.
    :param int concurrency: How many requests may be open at once (1 sends them one by one).
    :rtype: list
    """
    if concurrency <= 1 or len(calls) <= 1:
        return [call.outcome() for call in calls]
    workers = min(concurrency, len(calls))
    with concurrent.futures.ThreadPoolExecutor(workers, 'mypos-call') as pool:
        return list(pool.map(Call.outcome, calls))


def post(url, fields, user_agent):
    """Post signed fields to myPOS and return the body of its HTTP 200 answer.

    The whole call, body included, fits in `const.REQUEST_TIMEOUT` (plus one last read at most);
    redirects are not followed (an answer comes from the endpoint itself, or not at all).

    :param str url: The endpoint.
    :param list fields: The (name, value) pairs to post, in order.
    :param str user_agent: The `User-Agent` header, which myPOS requires; it names the caller.
    :rtype: bytes
    :raise RemoteError: `unreachable` if the request provably never left (no connection), `lost`
                        if the connection broke after it left, `timeout`, `http`, or `garbage`
                        for a body over `const.MAX_ANSWER_BYTES`.
    """
    deadline = time.monotonic() + const.REQUEST_TIMEOUT
    connect_timeout = min(const.CONNECT_TIMEOUT, const.REQUEST_TIMEOUT / 2)
    try:
        response = requests.post(
            url,
            data=fields,
            headers={'User-Agent': user_agent, 'Accept-Encoding': 'identity'},
            timeout=(connect_timeout, const.REQUEST_TIMEOUT - connect_timeout),
            stream=True,
            allow_redirects=False,
        )
        with response:
            body = _read_body(response, deadline)
    except requests.exceptions.Timeout as error:
        raise RemoteError(
            Failure.TIMEOUT,
            f"myPOS did not answer within {const.REQUEST_TIMEOUT} seconds ({url}): {error}",
            url=url,
            seconds=const.REQUEST_TIMEOUT,
        ) from None
    except requests.exceptions.RequestException as error:
        if never_sent(error):
            raise RemoteError(
                Failure.UNREACHABLE,
                f"myPOS cannot be reached at {url} ({type(error).__name__}: {error})",
                url=url,
                error=type(error).__name__,
            ) from None
        raise RemoteError(
            Failure.LOST,
            f"the connection to myPOS at {url} broke after the request was sent "
            f"({type(error).__name__}: {error}): myPOS may have acted on it",
            url=url,
            error=type(error).__name__,
        ) from None
    if response.status_code != 200:
        raise RemoteError(
            Failure.HTTP,
            f"myPOS answered with HTTP error {response.status_code} at {url}",
            url=url,
            http_status=response.status_code,
        )
    return body


def never_sent(error):
    """Tell whether a failed request provably never left this server (so no money can move)."""
    if isinstance(
        error,
        requests.exceptions.InvalidURL
        | requests.exceptions.MissingSchema
        | requests.exceptions.InvalidSchema,
    ):
        return True
    reason = getattr(error.args[0], 'reason', None) if error.args else None
    return isinstance(error, requests.exceptions.ConnectionError) and isinstance(
        reason, urllib3.exceptions.NewConnectionError
    )


def _shut_down(sock):
    """End every read on `sock` at once (the deadline of a call to myPOS has passed)."""
    with contextlib.suppress(OSError):  # Already closed: nothing left to end.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)  # Not SSLSocket's: no TLS state touched.


def _read_body(response, deadline):
    """Return the body of a streamed answer, giving up at `deadline` or past the size cap.

    Reads wait for one arrival of data at most (`read1`), with the time left as socket timeout,
    and a watchdog shuts the socket at the deadline: an answer trickling in (body or chunk
    headers) cannot stretch the call past it.

    :raise requests.exceptions.Timeout: If the body is still coming at `deadline`.
    :raise requests.exceptions.ConnectionError: If the connection broke before its end.
    :raise RemoteError: If the body is too large to be an answer of myPOS.
    """
    if response.status_code != 200:
        return b''
    raw = getattr(response.raw, '_fp', None)  # http.client's response, below urllib3's.
    if not hasattr(raw, 'read1'):
        raw = None
    # The socket under http.client's buffered reader (urllib3 may already have let go of its
    # connection object when the answer closes the connection, as HTTP/1.0 ones do).
    sock = getattr(getattr(getattr(raw, 'fp', None), 'raw', None), '_sock', None)
    watchdog = None
    if sock is not None:
        watchdog = threading.Timer(max(deadline - time.monotonic(), 0.0), _shut_down, [sock])
        watchdog.daemon = True
        watchdog.start()
    try:
        return _read_chunks(response, raw, sock, deadline)
    except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError):
        if time.monotonic() >= deadline:  # Cut by the watchdog.
            raise requests.exceptions.ReadTimeout("the answer took too long to arrive") from None
        raise
    finally:
        if watchdog is not None:
            watchdog.cancel()


def _read_chunks(response, raw, sock, deadline):
    pieces = response.iter_content(chunk_size=16384)
    chunks, size = [], 0
    while True:
        if raw is not None:
            try:
                if sock is not None:  # No single read may wait past the deadline either.
                    sock.settimeout(max(deadline - time.monotonic(), 0.001))
                chunk = raw.read1(16384)
            except (OSError, ValueError, http.client.HTTPException) as error:
                if isinstance(error, TimeoutError):
                    raise requests.exceptions.ReadTimeout(str(error)) from None
                raise requests.exceptions.ConnectionError(error) from None
        else:
            chunk = next(pieces, b'')
        if not chunk:
            if raw is not None and getattr(raw, 'length', None):  # Content-Length not reached.
                raise requests.exceptions.ChunkedEncodingError("the answer was cut off")
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > const.MAX_ANSWER_BYTES:
            raise RemoteError(
                Failure.GARBAGE,
                f"myPOS's answer is larger than {const.MAX_ANSWER_BYTES} bytes: it is not an "
                "answer of myPOS",
                code='remote_too_large',
                size=const.MAX_ANSWER_BYTES,
            )
        if time.monotonic() > deadline:
            raise requests.exceptions.ReadTimeout("the answer took too long to arrive")
    return b''.join(chunks)
