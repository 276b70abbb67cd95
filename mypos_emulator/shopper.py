"""The browser-less shopper tests drive: it posts the purchase form, then presses Pay or Cancel on
the payment page, over real HTTP, so the merchant sees exactly what a browser would cause.
"""

import copy
import dataclasses
from dataclasses import dataclass, field
from urllib.parse import unquote, urljoin

from . import pages
from ._ipc import const, ipc
from .faults import EmulatorError
from .wire import post_form

USER_AGENT = 'Mozilla/5.0 (myPOS emulator test driver)'


@dataclass
class PaymentResult:
    """What happened when :meth:`Emulator.pay` / :meth:`Emulator.cancel` drove a purchase.

    outcome: 'paid' (notify acknowledged, browser to URL_OK; 'authorized' for a
    pre-authorisation), 'reversed' (notify not acknowledged, rollback sent (none for a
    pre-authorisation: the hold is released), browser to URL_Cancel), 'pending' (notify_delay:
    browser to URL_OK, notify later), 'declined' (declined card; no message), 'invalid_card'
    (card form refused), 'method_step' (a method other than card was chosen; its step is shown),
    'invalid_method' (a method the purchase does not offer),
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


def _as_pairs(fields):
    if isinstance(fields, str):
        _action, pairs = pages.parse_html_form(fields)
        if not pairs:
            raise EmulatorError("no form with inputs found in the HTML")
        return pairs
    if isinstance(fields, dict):
        fields = fields.items()
    return [(str(name), '' if value is None else str(value)) for name, value in fields]


def _text(body):
    return body.decode('utf-8', errors='replace')


class Shopper:
    """Drives purchases against the emulator's own HTTP front, as a customer's browser would."""

    def __init__(self, context, state, front):
        self.context = context
        self.state = state
        self.front = front

    def submit(self, fields):
        """See :meth:`Emulator.submit`."""
        status, session_url, html, _message = self._submit(fields)
        return status, session_url, html

    def pay(self, fields, card, expiry, cvc, follow, method=None):
        """See :meth:`Emulator.pay`."""
        if method and method != '1':  # Choose the method, then its "Pay with ..." step.
            return self._drive(
                fields,
                [('payment_method', method), ('action', 'pay')],
                follow,
                then=[('payment_method', method), ('action', 'confirm')],
            )
        chosen = [('payment_method', method)] if method else []
        return self._drive(
            fields,
            [
                *chosen,
                ('card_number', card),
                ('card_expiry', expiry),
                ('card_cvc', cvc),
                ('action', 'pay'),
            ],
            follow,
        )

    def cancel(self, fields, follow):
        """See :meth:`Emulator.cancel`."""
        return self._drive(fields, [('action', 'cancel')], follow)

    def _post(self, url, pairs, timeout=60.0):
        return post_form(
            url,
            pairs,
            USER_AGENT,
            timeout=timeout,
            verify_tls=self.context.verify_tls,
            accept='text/html',
            max_bytes=None,
        )

    def _submit(self, fields):
        if not self.front.running:
            raise EmulatorError("the emulator is not started")
        status, headers, body = self._post(self.front.url, _as_pairs(fields))
        html = _text(body)
        message = unquote(headers.get('x-emulator-message', ''))
        if status == 303:
            return 0, urljoin(self.front.base_url, headers['location']), html, message
        return int(headers.get('x-emulator-status', ipc.Status.E_IPC_ERROR)), None, html, message

    def _drive(self, fields, page_pairs, follow, then=None):
        status, session_url, html, message = self._submit(fields)
        if not session_url:
            return PaymentResult(
                'rejected',
                status,
                const.STATUS_NAMES.get(status, ''),
                message=message,
                html=html,
            )
        _status, headers, body = self._post(session_url, page_pairs)
        if then and headers.get('x-emulator-outcome') == 'method_step':
            _status, headers, body = self._post(session_url, then)
        html = _text(body)
        token = session_url.rsplit('/', 1)[-1]
        with self.state.lock:
            session = copy.deepcopy(self.state.sessions[token])
            notifications = self.state.copy_notifications(seqs=session['notifications'])
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
        result.status_name = const.STATUS_NAMES.get(result.status, '')
        action, pairs = pages.parse_html_form(html, 'return_form')
        if action:
            result.return_url, result.return_fields = action, pairs
            result.return_method = dict(pairs).get('IPCmethod')
            if follow:
                status, headers, body = self._post(action, pairs)
                result.followed = {'status': status, 'headers': headers, 'body': _text(body)}
        return result
