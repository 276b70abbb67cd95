"""Notification delivery: IPCPurchaseNotify and IPCPurchaseRollback (IPCPreAuthorizationNotify for
a pre-authorisation) posted to URL_Notify as the fault switches bend them, the background
deliveries tests wait for, and manual re-sends.
"""

import dataclasses
import threading
import time
from urllib.parse import urlsplit

from .faults import EmulatorError
from .messages import PREAUTH_METHOD, PREAUTH_NOTIFY_METHOD
from .state import iso, note_sent
from .wire import post_form

USER_AGENT = 'myPOS-Checkout-Emulator/1.0 (payment_mypos)'
NOTIFY_METHODS = ('IPCPurchaseNotify', 'IPCPurchaseRollback', PREAUTH_NOTIFY_METHOD)


class Notifier:
    """Posts myPOS's server messages to the merchant and records each attempt and its answer."""

    def __init__(self, context, state):
        self.context = context
        self.state = state
        self._workers = set()

    def wait_idle(self, timeout=15.0):
        """See :meth:`Emulator.wait_idle`."""
        deadline = time.monotonic() + timeout
        while True:
            with self.state.lock:
                workers = [w for w in self._workers if w.is_alive()]
                self._workers = set(workers)
            if not workers:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            workers[0].join(remaining)

    def _spawn(self, target, *args):
        worker = threading.Thread(
            target=target, args=args, daemon=True, name='mypos-emulator-notify'
        )
        with self.state.lock:
            self._workers.add(worker)
        worker.start()
        return worker

    def run(self, session, notify, rollback, faults):
        """Deliver the notify per the faults; return 'paid' ('authorized' for a
        pre-authorisation), 'reversed' or 'pending'.

        `rollback` is None for a pre-authorisation: myPOS documents no message that reverses
        one, so a notify not acknowledged with OK releases the hold silently (IPCPreAuthStatus 5;
        emulator's choice, https://developers.mypos.com/apis/checkout-api/pre-authorization-notify
        only says another answer is "a communication error").
        """
        if faults.notify_delay > 0:

            def later():
                if self.context.stopping.wait(faults.notify_delay):
                    self._record(
                        session,
                        notify,
                        fault='delay',
                        error="emulator stopped before the delayed notification was sent",
                    )
                    return
                self.run(session, notify, rollback, dataclasses.replace(faults, notify_delay=0))

            self._spawn(later)
            return 'pending'
        order_id = session['order_id']
        if faults.notify_reorder:
            if rollback is None:  # The hold is released first, then the stale notify is sent.
                self._set_last_message(order_id, notify)
                self.deliver(order_id, notify, session, fault='reorder: stale notify after release')
                return self._finish(session, 'reversed')
            self._set_last_message(order_id, rollback)
            self.deliver(order_id, rollback, session, fault='reorder')
            self.deliver(order_id, notify, session, fault='reorder: stale notify after rollback')
            return self._finish(session, 'reversed')
        self._set_last_message(order_id, notify)
        if faults.notify_drop:
            self._record(session, notify, fault='drop', error="dropped (fault notify_drop)")
            return self._finish(session, 'paid')
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
                        self.deliver(order_id, notify, session, fault='duplicate (concurrent)')
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
            first = self.deliver(order_id, notify, session, fault='duplicate (1/2)')
            second = self.deliver(order_id, notify, session, fault='duplicate (2/2)')
            acknowledged = first or second
        else:
            acknowledged = self.deliver(order_id, notify, session)
        if acknowledged:
            return self._finish(session, 'paid')
        if rollback is not None:
            self._set_last_message(order_id, rollback)
            self.deliver(order_id, rollback, session)
        return self._finish(session, 'reversed')

    def resend(self, order_id):
        """See :meth:`Emulator.resend`."""
        with self.state.lock:
            order = self.state.orders.get(order_id)
            if not order or not order['last_message']:
                raise EmulatorError(f"order {order_id!r} has no message to resend")
            message = [tuple(pair) for pair in order['last_message']]
            if message[0][1] not in NOTIFY_METHODS:
                raise EmulatorError(
                    f"the last message of {order_id!r} is {message[0][1]}, "
                    f"which is not sent to URL_Notify"
                )
        self.deliver(order_id, message, fault='resend')
        return self.state.copy_notifications(order_id)[-1]

    def deliver(self, order_id, message, session=None, fault=None):
        """POST a signed message to the order's URL_Notify; True when answered 200 ``OK``."""
        with self.state.lock:
            url = self.state.orders[order_id]['url_notify']
        http_status = body = error = None
        if self.context.require_https_notify and urlsplit(url).scheme != 'https':
            record = self._record(
                session,
                message,
                fault=fault,
                order_id=order_id,
                url=url,
                error="not sent: URL_Notify is not https (require_https_notify)",
            )
            self.context.log(f"{record['method']} {order_id!r}: {record['error']}")
            return False
        try:
            http_status, _headers, raw = post_form(
                url,
                message,
                USER_AGENT,
                timeout=self.context.notify_timeout,
                verify_tls=self.context.verify_tls,
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
        self.context.log(
            f"{record['method']} {order_id!r} -> {url}: {error or f'{http_status} {body[:60]!r}'}"
        )
        return record['acknowledged']

    def _set_last_message(self, order_id, message):
        with self.state.lock:
            order = self.state.orders[order_id]
            order['last_message'] = message
            note_sent(order, message[0][1], 'notify')

    def _finish(self, session, status):
        """Close the session and its order with `status` ('authorized' for a paid
        pre-authorisation); return it (the payment's outcome)."""
        with self.state.lock:
            order = self.state.orders[session['order_id']]
            if order['method'] == PREAUTH_METHOD:
                if status == 'paid':
                    status = 'authorized'
                    order['authorized_at'] = iso()
                elif status == 'reversed':
                    order['released_amount'] = order['amount']
            order['status'] = status
            if status == 'paid':
                order['paid_at'] = iso()
                if session.get('card'):  # CardTokenRequest 1 or 2: the card is now stored.
                    order['card_token'] = session['card']['token']
                    self.state.keep_token(session['card'], order['order_id'])
            session.update(status=status, outcome=status)
        self.context.log(f"order {session['order_id']!r}: {status}")
        return status

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
        with self.state.lock:
            if url is None:
                url = self.state.orders[order_id]['url_notify']
            record = {
                'seq': len(self.state.notifications) + 1,
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
                'at': iso(),
            }
            self.state.notifications.append(record)
            if session_or_none is not None:
                session_or_none['notifications'].append(record['seq'])
        return record
