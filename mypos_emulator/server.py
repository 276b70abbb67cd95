"""The emulator: myPOS Checkout on loopback, as one object composed of parts with one job each.

`Emulator` only wires the parts together and forwards its public methods to them; see README.md
for the behaviour, the differences from real myPOS and the fault switches.
"""

import ipaddress
from pathlib import Path

from . import keys, messages
from ._ipc import SANDBOX_STORE_PRIVATE_KEY_FILE, const, ipc
from .api import Api
from .checkout import Checkout
from .faults import EmulatorError, Faults
from .http_front import HttpFront, Router
from .notifier import Notifier
from .shopper import PaymentResult, Shopper
from .state import Context, State
from .wire import http_request

__all__ = ['Emulator', 'EmulatorError', 'Faults', 'PaymentResult', 'http_request']


def _is_loopback(host):
    if host == 'localhost':
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _setting(name, doc):
    """A constructor setting kept in the shared context, so that every part reads it live."""
    return property(
        lambda self: getattr(self._context, name),
        lambda self, value: setattr(self._context, name, value),
        doc=doc,
    )


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

    notify_timeout = _setting('notify_timeout', "Timeout of each notification POST, in seconds.")
    verify_tls = _setting('verify_tls', "Check the certificate of an https URL_Notify.")
    require_https_notify = _setting('require_https_notify', "Refuse an http URL_Notify.")
    verbose = _setting('verbose', "Log requests and notifications on stderr.")

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
        self._context = Context(
            notify_timeout=float(notify_timeout),
            verify_tls=verify_tls,
            require_https_notify=require_https_notify,
            verbose=verbose,
        )
        self._state = State()
        if faults:
            self.faults = faults
        self._front = HttpFront(self._context, host, port)
        self._notifier = Notifier(self._context, self._state)
        self._checkout = Checkout(self._context, self._state, self.store, self.keys, self._notifier)
        api = Api(self._context, self._state, self.store, self.keys, self._front)
        self._preauth = api.preauth
        self._router = Router(self, self._checkout, api)
        self._shopper = Shopper(self._context, self._state, self._front)

    # --- Lifecycle --- #

    def start(self):
        """Start serving in a background thread; return self."""
        self._front.start(self._router)
        return self

    def serve_forever(self):
        """Serve in the calling thread until interrupted (used by ``python -m mypos_emulator``)."""
        self.start()
        try:
            self._front.wait()
        finally:
            self.stop()

    def stop(self, timeout=5.0):
        """Stop the server; pending delayed notifications are dropped."""
        self._front.stop(timeout)
        self.wait_idle(timeout)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    # --- Addresses --- #

    @property
    def port(self):
        return self._front.port

    @property
    def base_url(self):
        return self._front.base_url

    @property
    def url(self):
        """The sandbox-style checkout endpoint, e.g. http://127.0.0.1:8899/vmp/checkout-test."""
        return self._front.url

    @property
    def production_url(self):
        return self._front.production_url

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
        return self._state.faults

    @faults.setter
    def faults(self, value):
        self._state.replace_faults(value)

    def set_faults(self, **switches):
        """Change some switches, keep the others: ``emu.set_faults(notify_drop=True)``."""
        return self._state.update_faults(switches)

    def reset_faults(self):
        self._state.reset_faults()

    # --- State --- #

    def reset(self):
        """Forget every order, session, notification and refund, and clear the faults."""
        self.wait_idle()
        self._state.reset()
        self.reset_faults()

    @property
    def state(self):
        """A JSON-serialisable snapshot of everything the emulator saw and sent (a dict; also
        callable, so ``emu.state()`` gives the same)."""
        self._preauth.expire_due()
        return self._state.snapshot(
            {
                'sid': self.store.sid,
                'wallet_number': self.store.wallet_number,
                'key_index': self.store.key_index,
                'name': self.store.name,
                'url': self.url,
                'production_url': self.production_url,
                'certificate_path': str(self.certificate_path),
            }
        )

    def order(self, order_id):
        """The state of one order (a dict), or None."""
        self._preauth.expire_due()
        return self._state.copy_order(order_id)

    def expire_preauth(self, order_id):
        """Let an authorised pre-authorisation expire now, as myPOS reverses one after its hold
        period: `IPCPreAuthStatus` 5, completion and cancellation refused (14); its expiry date
        stays as it was. :return: the order. :raise EmulatorError: if it is not authorised."""
        return self._preauth.expire(order_id)

    def set_preauth_expiry(self, order_id, expiry):
        """Set the expiry date of an authorised pre-authorisation (a `datetime.date` or
        'YYYY-MM-DD'); a date before today (UTC) expires it at once.
        :return: the order. :raise EmulatorError: if it is not authorised."""
        return self._preauth.set_expiry(order_id, expiry)

    def notifications(self, order_id=None, method=None):
        """The notification records (oldest first), optionally of one order and/or method."""
        return self._state.copy_notifications(order_id, method)

    def refunds(self, order_id=None):
        """The accepted refunds (oldest first), optionally of one purchase OrderID."""
        return self._state.copy_refunds(order_id)

    def tokens(self):
        """The stored cards: CardToken -> sid, pan (last 4), exp_date (YYMM), card_type, saved_by
        (the OrderIDs that stored it), created_at."""
        return self._state.copy_tokens()

    def card_token(self, card='4006090000000007', sid=None):
        """The CardToken this run gives `card` at the store (or at `sid`), stored or not."""
        return self._checkout.card_token(card, sid)

    def store_card(self, card='4006090000000007', expiry='12/30', sid=None):
        """Store a card as an approved CardTokenRequest=1 purchase does, without the page.

        :param sid: The store it is stored at; another SID than the emulator's gives a token that
                    IPCIAPurchase refuses (5), for tests.
        :return: Its CardToken.
        :raise EmulatorError: For a malformed, expired or declined test card.
        """
        return self._checkout.store_card(card, expiry, sid)['token']

    def api_calls(self):
        return self._state.copy_api_calls()

    def max_concurrent_api_calls(self):
        """The most server-to-server calls answered at once since the last reset."""
        with self._state.lock:
            return self._state.api_in_flight_max

    def rejected(self):
        return self._state.copy_rejected()

    def wait_idle(self, timeout=15.0):
        """Wait for background notifications (notify_delay, concurrent duplicates) to finish.

        :return: True if none is left running.
        """
        return self._notifier.wait_idle(timeout)

    # --- Test drivers (real HTTP against this emulator, as a browser would) --- #

    def submit(self, fields):
        """POST an IPCPurchase form like a browser. Return (status code, session URL or None, html).

        :param fields: (name, value) pairs in posting order, a dict, or the HTML of the redirect
                       form (its first form's inputs are posted, in order).
        """
        return self._shopper.submit(fields)

    def pay(
        self, fields, card='4006090000000007', expiry='12/30', cvc='123', follow=False, method=None
    ):
        """Do what a customer does: post the purchase form, then pay on the card page.

        `method` ('1' card, '2' iDEAL, '4' Satispay, '5' TWINT, '6' IRIS) is chosen on the page;
        for a method other than card its "Pay with ..." step is then pressed. None: the page's
        card form as posted without a choice.

        The notification goes to URL_Notify over real HTTP exactly as with a browser. Nothing is
        posted to URL_OK / URL_Cancel unless `follow` is true: then the return form is posted
        there (no redirect followed) and the answer is in ``result.followed``.

        :param fields: See :meth:`submit`.
        :rtype: PaymentResult
        """
        return self._shopper.pay(fields, card, expiry, cvc, follow, method)

    def cancel(self, fields, follow=False):
        """Post the purchase form, then press Cancel on the card page. :rtype: PaymentResult"""
        return self._shopper.cancel(fields, follow)

    def resend(self, order_id):
        """Post the order's last notification (IPCPurchaseNotify or Rollback) to URL_Notify again.

        :return: The new notification record.
        """
        return self._notifier.resend(order_id)
