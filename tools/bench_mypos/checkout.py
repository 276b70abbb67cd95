"""The checkout: /payment/transaction for myPOS against payment_demo, sequential calls."""

import http.client
import json
import os
import time

from .console import die
from .dataset import AMOUNT, CHECKOUT_PREFIX


class CheckoutClient:
    def __init__(self, port, context):
        self.port = port
        self.context = context
        self.cookie = None
        self.serial = 0
        self.calls = []  # the provider of each call, in order

    def call(self, provider):
        """Return (seconds, result) of one /payment/transaction call for `provider`."""
        self.serial += 1
        self.calls.append(provider)
        params = {
            **self.context[provider],
            'token_id': None,
            'amount': AMOUNT,
            'currency_id': self.context['currency_id'],
            'partner_id': self.context['partner_id'],
            'access_token': self.context['access_token'],
            'tokenization_requested': False,
            'landing_route': '/payment/status',
            'is_validation': False,
            'reference_prefix': f'{CHECKOUT_PREFIX}{os.getpid()}x{self.serial}',
        }
        body = json.dumps({'jsonrpc': '2.0', 'method': 'call', 'id': self.serial, 'params': params})
        headers = {'Content-Type': 'application/json'}
        if self.cookie:
            headers['Cookie'] = self.cookie
        connection = http.client.HTTPConnection('127.0.0.1', self.port, timeout=60)
        try:
            start = time.perf_counter()
            connection.request('POST', '/payment/transaction', body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
            elapsed = time.perf_counter() - start
            cookie = response.getheader('Set-Cookie')
        finally:
            connection.close()
        if cookie and not self.cookie:
            self.cookie = cookie.split(';')[0]
        answer = json.loads(data)
        if response.status != 200 or 'error' in answer:
            die(f"/payment/transaction for {provider} failed: {data[:2000]!r}")
        result = answer['result']
        if provider == 'mypos' and 'Signature' not in (result.get('redirect_form_html') or ''):
            die(f"/payment/transaction for myPOS gave no signed redirect form: {result!r}")
        return elapsed, result


def run_checkout(port, context, calls):
    client = CheckoutClient(port, context)
    for _warmup in range(5):
        for provider in ('mypos', 'demo'):
            client.call(provider)
    times = {'mypos': [], 'demo': []}
    for index in range(calls):
        # Alternate (and alternate who goes first), so that drift hits both alike.
        order = ('mypos', 'demo') if index % 2 == 0 else ('demo', 'mypos')
        for provider in order:
            times[provider].append(client.call(provider)[0])
    return times, client.calls
