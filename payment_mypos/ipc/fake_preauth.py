# Part of payment_mypos. License LGPL-3.
"""The pre-authorisation page of the fake myPOS (:mod:`.fake`) and its test controls: the checks of
an `IPCPreAuthorization` form, the hold, its notify and the browser's return
(https://developers.mypos.com/apis/checkout-api/pre-authorization,
https://developers.mypos.com/apis/checkout-api/pre-authorization-notify,
https://developers.mypos.com/apis/checkout-api/pre-authorization-cancel). The calls on the hold are
in :mod:`.fake_calls`."""

import copy
import datetime
import re
from decimal import Decimal

from . import const
from .const import Status
from .fake_rules import (
    DECLINED_CARDS,
    IPC_VERSIONS,
    PREAUTH_HOLD_DAYS,
    PaymentResult,
    Reject,
    now,
    read_amount,
)


class PreAuthPage:
    """What :class:`~.fake.FakeMyPOS` does with a pre-authorisation form (a mixin: the store, its
    orders, the notify delivery and the fault switches are the fake's)."""

    # --- Test controls --- #

    def expire(self, order_id):
        """The hold lapses now (IPCPreAuthStatus 5 REVERSED; completion refused with 14)."""
        with self.lock:
            order = self.orders[order_id]
            if order['status'] != 'authorized':
                raise ValueError(f"the pre-authorization {order_id} is {order['status']}")
            order.update(
                status='reversed',
                released_amount=order['authorized_amount'],
                preauth_expiry=min(order['preauth_expiry'], now().date() - datetime.timedelta(1)),
            )

    def set_preauth_expiry(self, order_id, date):
        """Set the hold's expiry date; once it is past (UTC), the hold lapses as in :meth:`expire`.

        :param datetime.date date: The last day of the hold.
        """
        with self.lock:
            order = self.orders[order_id]
            if order['method'] != const.PREAUTH_METHOD or not order['ipc_trnref']:
                raise ValueError(f"{order_id} is not a pre-authorization")
            order['preauth_expiry'] = date

    # --- The hosted page --- #

    def _check_preauthorization(self, fields):
        """Check an IPCPreAuthorization form as myPOS would: the merchant's signature and store,
        version 1.4 or later (myPOS's PHP SDK refuses older ones), ItemName and the URLs
        required, no cart and no card to save (the call has neither), the amount positive."""
        self._check_identity(fields)
        version = fields.get('IPCVersion')
        if IPC_VERSIONS.index(version) < IPC_VERSIONS.index('1.4'):
            raise Reject(
                Status.E_INVALID_PARAMS, "IPCPreAuthorization needs IPCVersion 1.4 or later"
            )
        fields.require(
            'ItemName', 'Amount', 'Currency', 'OrderID', 'URL_OK', 'URL_Cancel', 'URL_Notify'
        )
        for name in ('CartItems', 'CardTokenRequest'):
            if fields.get(name) is not None:
                raise Reject(
                    Status.E_INVALID_PARAMS, f"{name} is not a field of IPCPreAuthorization"
                )
        currency = fields.get('Currency')
        if currency not in const.SUPPORTED_CURRENCIES:
            raise Reject(Status.E_STORE_RESTRICTED, f"the currency {currency!r} is not enabled")
        if read_amount(fields.get('Amount')) <= 0:
            raise Reject(Status.E_WRONG_AMOUNT, f"Amount {fields.get('Amount')!r} is not positive")
        return {
            'order_id': fields.get('OrderID'),
            'amount_text': fields.get('Amount'),
            'currency': currency,
            'item_name': fields.get('ItemName'),
            'url_ok': fields.get('URL_OK'),
            'url_cancel': fields.get('URL_Cancel'),
            'url_notify': fields.get('URL_Notify'),
        }

    def _open_preauth(self, preauth):
        """The order of an accepted form, or the result of a refused one (lock held)."""
        return self._open_order(
            preauth,
            const.PREAUTH_METHOD,
            item_name=preauth['item_name'],
            ipc_trnref=None,
            authorized_amount=None,
            captured_amount=None,
            released_amount=None,
            preauth_expiry=None,
        )

    def _pay_preauth(self, fields, card, deliver):
        """:meth:`~.fake.FakeMyPOS.pay` for an IPCPreAuthorization form: hold the amount, post the
        signed IPCPreAuthorizationNotify, send the browser to URL_OK with IPCPreAuthorizationOK.

        A declined card holds nothing and posts nothing (as a declined purchase). What myPOS does
        when the notify is not answered `OK` is undocumented (for a purchase it reverses and posts
        IPCPurchaseRollback; no pre-authorisation rollback exists): here the hold is released
        (IPCPreAuthStatus 5 REVERSED), nothing more is posted, and the browser goes to URL_Cancel
        with IPCPreAuthorizationCancel.
        """
        try:
            preauth = self._check_preauthorization(fields)
        except Reject as reject:
            return PaymentResult(
                'rejected', reject.status, reject.message, order_id=fields.get('OrderID')
            )
        number = re.sub(r'[\s-]', '', str(card))
        with self.lock:
            order = self._open_preauth(preauth)
            if isinstance(order, PaymentResult):
                return order
            if number in DECLINED_CARDS:
                order['status'] = 'declined'
                return PaymentResult(
                    'declined',
                    Status.E_TRANSACTION_DECLINED,
                    DECLINED_CARDS[number],
                    order_id=preauth['order_id'],
                )
            notify, ok_message = self._hold(order, preauth, number)
            faults = copy.copy(self.faults)
            self.faults.notify_fail_once = False
        result = PaymentResult(
            'authorized', order_id=preauth['order_id'], ipc_trnref=order['ipc_trnref']
        )
        result.notify_fields = notify
        acknowledged = True
        self._set_last_message(order, notify)
        if faults.notify_drop or deliver is None:
            self._record(order, notify, error="not sent (notify_drop)" if deliver else None)
        elif faults.notify_fail_once:
            self._record(order, notify, error="not delivered (notify_fail_once)")
            acknowledged = False
        else:
            acknowledged = self._deliver(order, notify, deliver)
            if faults.notify_duplicate:
                acknowledged = self._deliver(order, notify, deliver) or acknowledged
        with self.lock:
            if not acknowledged and order['status'] == 'authorized':
                order.update(status='reversed', released_amount=order['authorized_amount'])
            result.notifications = self.notifications(order_id=preauth['order_id'])
            result.outcome = order['status']
        if acknowledged:
            result.return_method = const.PREAUTH_RETURN_METHODS['ok']
            result.return_url, result.return_fields = preauth['url_ok'], ok_message
        else:
            result.return_method = const.PREAUTH_RETURN_METHODS['cancel']
            result.return_url = preauth['url_cancel']
            result.return_fields = self._order_message(result.return_method, preauth)
        return result

    def _hold(self, order, preauth, number):
        """Hold the amount until today + PREAUTH_HOLD_DAYS; return the signed (notify, OK)."""
        trnref = str(next(self._trnrefs))
        authorized_at = now()
        expiry = authorized_at.date() + datetime.timedelta(days=PREAUTH_HOLD_DAYS)
        request_datetime = authorized_at.strftime('%Y-%m-%d %H:%M:%S')
        extra = [
            ('IPC_Trnref', trnref),
            ('RequestSTAN', f'{next(self._stans) % 1000000:06d}'),
            ('RequestDateTime', request_datetime),
            ('PreAuthExpDate', expiry.strftime('%y%m%d')),
            ('BillingDescriptor', self.billing_descriptor),
        ]
        order.update(
            status='authorized',
            ipc_trnref=trnref,
            request_datetime=request_datetime,
            pan=number[-4:],
            payment_method=const.PAYMENT_METHOD_CARD,  # The call has no PaymentMethod: a card.
            authorized_amount=Decimal(preauth['amount_text']),
            captured_amount=Decimal(0),
            released_amount=Decimal(0),
            preauth_expiry=expiry,
        )
        self.trnrefs[trnref] = order['order_id']
        notify = self._order_message(const.PREAUTH_NOTIFY_METHOD, preauth, extra)
        ok_message = self._order_message(const.PREAUTH_RETURN_METHODS['ok'], preauth, extra)
        return notify, ok_message

    def _cancel_preauth(self, fields):
        """:meth:`~.fake.FakeMyPOS.cancel` for an IPCPreAuthorization form: nothing is held; the
        browser gets the signed IPCPreAuthorizationCancel."""
        try:
            preauth = self._check_preauthorization(fields)
        except Reject as reject:
            return PaymentResult('rejected', reject.status, reject.message)
        with self.lock:
            order = self._open_preauth(preauth)
            if isinstance(order, PaymentResult):
                return order
            method = const.PREAUTH_RETURN_METHODS['cancel']
            message = self._order_message(method, preauth)
            order.update(status='cancelled', last_message=message)
        return PaymentResult(
            'cancelled',
            order_id=preauth['order_id'],
            return_method=method,
            return_url=preauth['url_cancel'],
            return_fields=message,
        )
