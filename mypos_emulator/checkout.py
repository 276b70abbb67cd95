"""The hosted checkout: the IPCPurchase and IPCPreAuthorization forms, their card page, and what
Pay and Cancel do there.

The notification of an approved card is handed to the notifier; this part signs every message
myPOS produces for a purchase or a pre-authorisation and chooses the page the browser sees next.
"""

import datetime
import re
import secrets
from urllib.parse import parse_qsl, quote

from . import answers, messages, methods, pages
from ._ipc import const, ipc
from .faults import EmulatorError
from .messages import PREAUTH_METHOD, Reject
from .preauth import HOLD_DAYS
from .state import TAKEN, iso, new_order, new_session, note_sent, now
from .wire import Response

SESSION_PREFIX = '/vmp/session/'
_CUSTOMER_ECHO = ('CustomerEmail', 'CustomerPhone', 'CustomerFirstNames', 'CustomerFamilyName')
# The messages myPOS signs for each kind of form: approved (server, browser), cancelled (browser),
# reversed (server; a pre-authorisation has none documented).
# https://developers.mypos.com/apis/checkout-api/purchase-notify
# https://developers.mypos.com/apis/checkout-api/pre-authorization-notify
_MESSAGES = {
    'purchase': {
        'notify': 'IPCPurchaseNotify',
        'ok': 'IPCPurchaseOK',
        'cancel': 'IPCPurchaseCancel',
        'rollback': 'IPCPurchaseRollback',
    },
    'preauth': {
        'notify': messages.PREAUTH_NOTIFY_METHOD,
        'ok': messages.PREAUTH_OK_METHOD,
        'cancel': messages.PREAUTH_CANCEL_METHOD,
        'rollback': None,
    },
}


def _kind(purchase):
    return purchase.get('kind', 'purchase')


class Checkout:
    """Purchase forms, payment sessions and their pages."""

    def __init__(self, context, state, store, keys, notifier):
        self.context = context
        self.state = state
        self.store = store
        self.keys = keys
        self.notifier = notifier

    # --- The purchase form --- #

    def purchase(self, fields, headers):
        """Check a posted IPCPurchase or IPCPreAuthorization: open a payment session (303) or
        show the error page.

        Nothing is required of the request's `headers`: myPOS's PHP SDK sends no User-Agent.
        """
        order_id = fields.get('OrderID')
        method = fields.get('IPCmethod')
        preauth = method == PREAUTH_METHOD
        try:
            if preauth:
                purchase = messages.check_preauthorization(fields, self.store)
            else:
                purchase = messages.check_purchase(fields, self.store)
                purchase['payment_methods'] = methods.offered(
                    fields.get('PaymentMethod'),
                    purchase['currency'],
                    purchase['card_token_request'],
                )
            with self.state.lock:
                order = self.state.orders.get(order_id)
                if order and order['status'] in TAKEN:
                    raise Reject(
                        ipc.Status.E_DUPLICATE_TRANSMISSION,
                        f"a payment was already made with OrderID {order_id}",
                    )
                token = secrets.token_urlsafe(18)
                if not order:
                    order = self.state.orders[order_id] = new_order(order_id)
                order.update(
                    {
                        'status': 'pending',
                        'method': method,
                        'card_token_request': purchase['card_token_request'],
                        'card_token': None,  # Set when this purchase stores the card.
                        'amount': purchase['amount_text'],
                        'currency': purchase['currency'],
                        'url_ok': purchase['url_ok'],
                        'url_cancel': purchase['url_cancel'],
                        'url_notify': purchase['url_notify'],
                    }
                )
                if preauth:
                    order.update(
                        item_name=purchase['item_name'],
                        preauth_expiry=None,  # Set when authorised (ISO date).
                        captured_amount=None,
                        released_amount=None,
                    )
                order['sessions'].append(token)
                self.state.sessions[token] = new_session(token, order_id, purchase, fields.pairs)
        except Reject as reject:
            return self.refuse(reject, order_id, method)
        self.context.log(
            f"{method} {order_id!r} {purchase['amount_text']} {purchase['currency']}: "
            f"payment page {SESSION_PREFIX}{token}"
        )
        return Response(
            303,
            b'',
            headers={
                'Location': SESSION_PREFIX + token,
                'X-Emulator-Status': '0',
                'X-Emulator-Session': token,
            },
        )

    def refuse(self, reject, order_id, method='IPCPurchase'):
        """The error page of a refused purchase form; nothing is sent to the merchant."""
        with self.state.lock:
            self.state.rejected.append(
                {
                    'at': iso(),
                    'method': method,
                    'order_id': order_id,
                    'status': reject.status,
                    'name': reject.name,
                    'message': reject.message,
                }
            )
        self.context.log(
            f"{method} {order_id!r} refused: {reject.status} {reject.name}: {reject.message}"
        )
        return Response(
            200,
            pages.error_page(self.store.name, reject.status, reject.name, reject.message),
            headers={
                'X-Emulator-Status': str(reject.status),
                'X-Emulator-Message': quote(reject.message),
            },
        )

    # --- The payment page --- #

    def page(self, token):
        """GET of a payment session: its card form, or why it is closed."""
        with self.state.lock:
            session, error_page = self._open_session(token)
            if error_page:
                return error_page
            return _page(pages.payment_page(session, self.store), 'open')

    def act(self, token, body):
        """POST of the card form: Pay or Cancel."""
        try:
            form = dict(
                parse_qsl((body or b'').decode('utf-8', errors='replace'), keep_blank_values=True)
            )
        except ValueError:
            form = {}
        with self.state.lock:
            session, error_page = self._open_session(token)
            if error_page:
                return error_page
            order = self.state.orders[session['order_id']]
            if order['status'] in TAKEN:
                session['status'] = 'closed'
                return _already_paid(order)
        if form.get('action') == 'cancel':
            return self._cancel(session)
        offered = session['purchase'].get('payment_methods') or (methods.CARD,)
        chosen = form.get('payment_method')
        if not chosen:  # A form without a choice is the card form (or the only method's step).
            chosen = methods.CARD if methods.CARD in offered else offered[0]
        if chosen not in offered:
            message = f"payment method {chosen!r} is not offered for this payment"
            return _page(
                pages.payment_page(session, self.store, f"5 E_INVALID_PARAMS: {message}"),
                'invalid_method',
                ipc.Status.E_INVALID_PARAMS,
                message,
            )
        if chosen == methods.CARD:
            return self._pay(session, form)
        if form.get('action') != 'confirm':
            return _page(pages.method_page(session, self.store, chosen), 'method_step')
        return self._pay_method(session, chosen)

    def _open_session(self, token):
        """Return (session, None) for an open payment session, else (None, the error page).

        Call with the lock held.
        """
        session = self.state.sessions.get(token)
        if not session:
            return None, _closed(ipc.Status.E_INVALID_SESSION, "unknown payment session", 404)
        if session['status'] != 'open':
            return None, _session_closed(session)
        return session, None

    def _cancel(self, session):
        purchase = session['purchase']
        method = _MESSAGES[_kind(purchase)]['cancel']
        with self.state.lock:
            order = self.state.orders[session['order_id']]
            if session['status'] != 'open' or order['status'] in TAKEN:
                return _session_closed(session)
            message = self._sign(method, purchase)
            session.update(status='cancelled', outcome='cancelled')
            order['status'] = 'cancelled'
            order['last_message'] = message
            note_sent(order, method, 'browser')
        self.context.log(f"{method} {purchase['order_id']!r}: customer cancelled")
        return _page(
            pages.return_page(purchase['url_cancel'], message, "Payment cancelled"), 'cancelled'
        )

    def _pay(self, session, form):
        purchase = session['purchase']
        try:
            number, exp_date = messages.check_card(
                form.get('card_number'),
                form.get('card_expiry'),
                form.get('card_cvc'),
                datetime.date.today(),
            )
        except Reject as reject:
            error = f"{reject.status} {reject.name}: {reject.message}"
            return _page(
                pages.payment_page(session, self.store, error, methods.CARD),
                'invalid_card',
                reject.status,
                reject.message,
            )
        with self.state.lock:
            order = self.state.orders[session['order_id']]
            if session['status'] != 'open' or order['status'] in TAKEN:
                return _already_paid(order)
            attempt = {'at': iso(), 'pan': number[-4:], 'session': session['token']}
            order['attempts'].append(attempt)
            if number in messages.DECLINED_CARDS:
                attempt['outcome'] = 'declined'
                order['status'] = 'declined'
                return self._declined(session, order, number)
            attempt['outcome'] = 'approved'
            if _kind(purchase) == 'preauth':
                notify, ok_message = self._approve_preauth(session, order)
            else:
                notify, ok_message = self._approve(session, order, number, exp_date)
            faults = self.state.faults.take_payment()
        return self._deliver(session, notify, ok_message, faults)

    def _pay_method(self, session, method):
        """The shopper approved a payment by a method other than card (it never declines)."""
        with self.state.lock:
            order = self.state.orders[session['order_id']]
            if session['status'] != 'open' or order['status'] in TAKEN:
                return _already_paid(order)
            order['attempts'].append(
                {
                    'at': iso(),
                    'payment_method': method,
                    'session': session['token'],
                    'outcome': 'approved',
                }
            )
            notify, ok_message = self._approve(session, order, None, None, method)
            faults = self.state.faults.take_payment()
        return self._deliver(session, notify, ok_message, faults)

    def _deliver(self, session, notify, ok_message, faults):
        """Send the notify; the browser goes to URL_OK when acknowledged, else to URL_Cancel."""
        purchase = session['purchase']
        names = _MESSAGES[_kind(purchase)]
        rollback = self._sign(names['rollback'], purchase) if names['rollback'] else None
        outcome = self.notifier.run(session, notify, rollback, faults)
        if outcome in ('paid', 'authorized', 'pending'):
            title = "Pre-authorisation approved" if rollback is None else "Payment approved"
            return _page(pages.return_page(purchase['url_ok'], ok_message, title), outcome)
        cancel = self._sign(names['cancel'], purchase)
        with self.state.lock:
            note_sent(self.state.orders[purchase['order_id']], names['cancel'], 'browser')
        return _page(
            pages.return_page(purchase['url_cancel'], cancel, "Payment failed"),
            outcome,
            ipc.Status.E_IPC_ERROR,
            "the notification was not acknowledged with OK: payment reversed"
            if rollback
            else "the notification was not acknowledged with OK: the hold is released",
        )

    def _declined(self, session, order, number):
        reason = messages.DECLINED_CARDS[number]
        self.context.log(f"{order['method']} {order['order_id']!r}: card ...{number[-4:]} declined")
        status = ipc.Status.E_TRANSACTION_DECLINED
        return _page(
            pages.declined_page(session, status, const.STATUS_NAMES[status], reason),
            'declined',
            status,
            reason,
        )

    def _approve(self, session, order, number, exp_date, method=methods.CARD):
        """Book the approved payment on the order; return the signed (notify, IPCPurchaseOK).

        `PaymentMethod` echoes the method used (the notify_payment_method fault: its value);
        a method other than card has no PAN, CardToken, ExpDate, CardType (the emulator's
        reading of https://developers.mypos.com/apis/checkout-api/purchase-notify).
        Call with the lock held.
        """
        purchase = session['purchase']
        trnref = self.state.next_trnref()
        stan = self.state.next_stan()
        request_datetime = now().strftime('%Y-%m-%d %H:%M:%S')
        is_card = method == methods.CARD
        card_type = messages.card_type(number) if is_card else None
        echoed = getattr(self.state.faults, 'notify_payment_method', None)
        extra = [
            ('IPC_Trnref', trnref),
            ('RequestSTAN', stan),
            ('RequestDateTime', request_datetime),
            ('PaymentMethod', method if echoed is None else echoed),
            ('BillingDescriptor', self.store.billing_descriptor),
        ]
        card = None
        if is_card:
            extra.append(('PAN', number[-4:]))
            if purchase['card_token_request'] in ('1', '2'):
                # Saved only once the notify is acknowledged (see Notifier._finish).
                card = self._card(self.store.sid, number, exp_date)
                extra += [('CardToken', card['token']), ('ExpDate', exp_date)]
            if not self.state.faults.notify_omit_card_type:
                extra.append(('CardType', card_type))
        if purchase['payment_parameters_required'] in ('1', '2'):
            extra += [
                (name, purchase['customer'][name])
                for name in _CUSTOMER_ECHO
                if purchase['customer'].get(name)
            ]
        notify = self._sign('IPCPurchaseNotify', purchase, extra)
        ok_message = self._sign('IPCPurchaseOK', purchase, extra)
        order.update(
            {
                'status': 'processing',
                'ipc_trnref': trnref,
                'request_stan': stan,
                'request_datetime': request_datetime,
                'payment_method': method,
                'pan': number[-4:] if is_card else None,
                'card_type': card_type,
                'amount': purchase['amount_text'],
                'currency': purchase['currency'],
                'url_notify': purchase['url_notify'],
            }
        )
        self.state.trnrefs[trnref] = order['order_id']
        session.update(status='processing', ipc_trnref=trnref, card=card)
        return notify, ok_message

    def _approve_preauth(self, session, order):
        """Hold the amount on the approved card; return the signed (notify, IPCPreAuthorizationOK).

        The hold expires `HOLD_DAYS` after today (UTC) unless a test sets its expiry.
        https://developers.mypos.com/apis/checkout-api/pre-authorization-notify
        Call with the lock held.
        """
        purchase = session['purchase']
        trnref = self.state.next_trnref()
        stan = self.state.next_stan()
        moment = now()
        request_datetime = moment.strftime('%Y-%m-%d %H:%M:%S')
        expiry = moment.date() + datetime.timedelta(days=HOLD_DAYS)
        extra = [
            ('IPC_Trnref', trnref),
            ('RequestSTAN', stan),
            ('RequestDateTime', request_datetime),
            ('PreAuthExpDate', expiry.strftime('%y%m%d')),
            ('BillingDescriptor', self.store.billing_descriptor),
        ]
        notify = self._sign(messages.PREAUTH_NOTIFY_METHOD, purchase, extra)
        # "The same parameters" as the notify:
        # https://developers.mypos.com/apis/checkout-api/pre-authorization-notify
        ok_message = self._sign(messages.PREAUTH_OK_METHOD, purchase, extra)
        order.update(
            {
                'status': 'processing',
                'ipc_trnref': trnref,
                'request_stan': stan,
                'request_datetime': request_datetime,
                'preauth_expiry': expiry.isoformat(),
                'amount': purchase['amount_text'],
                'currency': purchase['currency'],
                'url_notify': purchase['url_notify'],
            }
        )
        self.state.trnrefs[trnref] = order['order_id']
        session.update(status='processing', ipc_trnref=trnref)
        return notify, ok_message

    def _card(self, sid, number, exp_date):
        """The record of a card to store: its token at `sid`, never its full number."""
        return {
            'token': self.state.card_token(sid, number),
            'sid': sid,
            'pan': number[-4:],
            'exp_date': exp_date,
            'card_type': messages.card_type(number),
        }

    def card_token(self, card, sid=None):
        """See :meth:`Emulator.card_token`."""
        number = re.sub(r'[\s-]', '', str(card))
        return self.state.card_token(str(sid or self.store.sid), number)

    def store_card(self, card, expiry, sid=None):
        """See :meth:`Emulator.store_card`."""
        try:
            number, exp_date = messages.check_card(card, expiry, '000', datetime.date.today())
        except Reject as reject:
            raise EmulatorError(f"the card cannot be stored: {reject.message}") from None
        if number in messages.DECLINED_CARDS:
            raise EmulatorError(f"the card cannot be stored: {messages.DECLINED_CARDS[number]}")
        return self.state.keep_token(self._card(str(sid or self.store.sid), number, exp_date))

    def _sign(self, method, purchase, extra=()):
        return answers.order_message(
            method,
            self.store,
            purchase['amount_text'],
            purchase['currency'],
            purchase['order_id'],
            self.keys.private_key_pem,
            extra,
        )


def _page(html, outcome, status=0, message='', http_status=200):
    """A payment-session page, its outcome in headers for the shopper driver."""
    return Response(
        http_status,
        html,
        headers={
            'X-Emulator-Outcome': outcome,
            'X-Emulator-Status': str(int(status)),  # Its number, on any Python.
            'X-Emulator-Message': quote(message),
        },
    )


def _closed(status, message, http_status=200):
    name = const.STATUS_NAMES[status]
    return _page(pages.closed_page(status, name, message), 'closed', status, message, http_status)


def _session_closed(session):
    return _closed(ipc.Status.E_INVALID_SESSION, f"this payment session is {session['status']}")


def _already_paid(order):
    done = 'authorised' if order['method'] == PREAUTH_METHOD else 'paid'
    return _closed(
        ipc.Status.E_DUPLICATE_TRANSMISSION, f"OrderID {order['order_id']} was already {done}"
    )
