"""HTTP as the emulator speaks it: one client call that never follows redirects, and the answer
value every part hands to the HTTP front.
"""

import http.client
import ssl
from urllib.parse import urlencode, urlsplit

MAX_ANSWER_BYTES = 64 * 1024
FORM_CONTENT_TYPE = 'application/x-www-form-urlencoded'


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


def post_form(url, pairs, user_agent, timeout, verify_tls, accept=None, max_bytes=MAX_ANSWER_BYTES):
    """POST (name, value) pairs form-encoded, as myPOS and browsers both do; see `http_request`."""
    headers = {'Content-Type': FORM_CONTENT_TYPE, 'User-Agent': user_agent}
    if accept:
        headers['Accept'] = accept
    return http_request(
        'POST',
        url,
        urlencode(pairs),
        headers,
        timeout=timeout,
        verify_tls=verify_tls,
        max_bytes=max_bytes,
    )


class Response:
    """What a part answers; the HTTP front writes it out (or, with a fault, drops or drips it)."""

    def __init__(self, status=200, body=b'', content_type='text/html; charset=utf-8', headers=None):
        self.status = status
        self.body = body.encode('utf-8') if isinstance(body, str) else body
        self.content_type = content_type
        self.headers = dict(headers or {})
        self.drop = False  # Close the connection instead of answering (api_drop_answer).
        self.drip = 0.0  # Seconds between the bytes of the body (api_drip).
