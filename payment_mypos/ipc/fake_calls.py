# Part of payment_mypos. License LGPL-3.
"""The server-to-server calls of the fake myPOS (:mod:`.fake`): the checks myPOS makes on what a
merchant posts, IPCRefund, IPCGetTxnStatus, IPCGetPaymentStatus, IPCIAPurchase and the three
pre-authorisation calls (https://developers.mypos.com/apis/checkout-api), and the faults as the
transport reports them."""

import time
from decimal import Decimal

from . import const
from .answers import flatten_values
from .const import Status
from .errors import Failure, RemoteError
from .fake_rules import (
    ANSWER_METHOD_KEY,
    API_FAULTS,
    CUSTOMER_ECHO,
    GARBAGE,
    IPC_VERSIONS,
    PAID_OR_PAYING,
    PAYMENT_STATUS,
    PREAUTH_HELD,
    PREAUTH_STATUS,
    SIGNED_AMOUNT_RE,
    Fields,
    Reject,
    now,
    offered_methods,
    read_amount,
    render_answer,
    today,
)
from .signing import sign, verify


class ServerCalls:
    """What :class:`~.fake.FakeMyPOS` answers server to server (a mixin: the store, its orders
    and the fault switches are the fake's)."""

    def _check_identity(self, fields):
        """The checks of every call: SID (1/4), KeyIndex (1/3), Signature (2), WalletNumber
        (1/5), IPCVersion (1/5); see https://developers.mypos.com/apis/checkout-api."""
        sid = fields.get('SID', '')
        if not sid:
            raise Reject(Status.E_MISSING_REQ_PARAMS, "missing required field(s): SID")
        if sid != self.sid:
            raise Reject(Status.E_INVALID_SID, f"unknown store SID {sid!r}")
        key_index = fields.get('KeyIndex', '')
        if not key_index:
            raise Reject(Status.E_MISSING_REQ_PARAMS, "missing required field(s): KeyIndex")
        if key_index.strip() != str(self.key_index):
            raise Reject(
                Status.E_IPC_ERROR,
                f"KeyIndex {key_index!r} is not a key of this store (expected {self.key_index})",
            )
        pairs = fields.pairs
        if not fields.get('Signature') or pairs[-1][0].lower() != 'signature':
            raise Reject(Status.E_SIGNATURE_FAILED, "the request has no Signature last")
        values = [value for name, value in pairs[:-1]]
        if not verify(values, pairs[-1][1], self.merchant_public_key_pem):
            raise Reject(
                Status.E_SIGNATURE_FAILED, "the Signature does not verify with the merchant's key"
            )
        wallet = fields.get('WalletNumber', '')
        if not wallet:
            raise Reject(Status.E_MISSING_REQ_PARAMS, "missing required field(s): WalletNumber")
        if wallet != self.wallet_number:
            raise Reject(
                Status.E_INVALID_PARAMS, f"WalletNumber {wallet!r} does not own store {self.sid}"
            )
        fields.require('IPCVersion')
        if fields.get('IPCVersion') not in IPC_VERSIONS:
            raise Reject(
                Status.E_INVALID_PARAMS, f"unsupported IPCVersion {fields.get('IPCVersion')!r}"
            )

    def _check_money(self, fields, store_only=False):
        """Amount (9), Currency (5/25), OrderID and the cart rows summing to Amount (9)."""
        fields.require(*(() if store_only else ('Amount', 'CartItems')), 'Currency', 'OrderID')
        currency = fields.get('Currency')
        if currency not in const.SUPPORTED_CURRENCIES:
            raise Reject(Status.E_STORE_RESTRICTED, f"the currency {currency!r} is not enabled")
        if store_only:
            return Decimal(0)
        amount = read_amount(fields.get('Amount'))
        if amount <= 0:
            raise Reject(Status.E_WRONG_AMOUNT, f"Amount {fields.get('Amount')!r} is not positive")
        count = int(fields.get('CartItems'))
        total = Decimal(0)
        for n in range(1, count + 1):
            fields.require(f'Article_{n}', f'Quantity_{n}', f'Price_{n}', f'Amount_{n}')
            price = read_amount(fields.get(f'Price_{n}'), f'Price_{n}', SIGNED_AMOUNT_RE)
            row = read_amount(fields.get(f'Amount_{n}'), f'Amount_{n}', SIGNED_AMOUNT_RE)
            if row != price * int(fields.get(f'Quantity_{n}')):
                raise Reject(Status.E_WRONG_AMOUNT, f"Amount_{n} is not Quantity_{n} x Price_{n}")
            if fields.get(f'Currency_{n}') != currency:
                raise Reject(Status.E_INVALID_PARAMS, f"Currency_{n} differs from Currency")
            total += row
        if total != amount:
            raise Reject(Status.E_WRONG_AMOUNT, f"the cart rows sum to {total}, not to Amount")
        return amount

    def _check_purchase(self, fields):
        self._check_identity(fields)
        if fields.get('IPCmethod') != 'IPCPurchase':
            raise Reject(Status.E_UNSUPPORTED_CALL, f"{fields.get('IPCmethod')!r} on the page")
        token_request = fields.get('CardTokenRequest')
        store_only = token_request == const.CARD_TOKEN_STORE
        fields.require('URL_OK', 'URL_Cancel', 'URL_Notify', 'PaymentParametersRequired')
        if token_request not in ('0', '1', '2'):
            raise Reject(Status.E_INVALID_PARAMS, f"CardTokenRequest {token_request!r}")
        self._check_money(fields, store_only)
        methods = offered_methods(
            fields.get('PaymentMethod'), fields.get('Currency'), token_request
        )
        return {
            'payment_methods': methods,
            'order_id': fields.get('OrderID'),
            'amount_text': '0.00' if store_only else fields.get('Amount'),
            'currency': fields.get('Currency'),
            'url_ok': fields.get('URL_OK'),
            'url_cancel': fields.get('URL_Cancel'),
            'url_notify': fields.get('URL_Notify'),
            'card_token_request': token_request,
            'payment_parameters_required': fields.get('PaymentParametersRequired'),
            'customer': {name: fields.get(name) for name in CUSTOMER_ECHO if fields.get(name)},
        }

    # --- The server-to-server calls --- #

    def post(self, url, fields, user_agent=None):
        """Stand-in for :func:`.transport.post`, whose `user_agent` it ignores: the body of
        myPOS's HTTP 200 answer, or the :class:`RemoteError` the transport raises for what the
        faults make of the exchange."""
        if url != self.url:
            raise RemoteError(
                Failure.UNREACHABLE,
                f"myPOS cannot be reached at {url} (ConnectionError: nothing listens there; "
                f"the fake myPOS is at {self.url})",
                url=url,
                error='ConnectionError',
            )
        fields = Fields(fields)
        with self.lock:
            self.in_flight += 1
            self.in_flight_max = max(self.in_flight_max, self.in_flight)
        try:
            return self._call(url, fields)
        finally:
            with self.lock:
                self.in_flight -= 1

    def _call(self, url, fields):
        method = fields.get('IPCmethod', '')
        with self.lock:
            faults = self.faults.take_api(method)
        call = {
            'method': method,
            'order_id': fields.get('OrderID'),
            'ipc_trnref': fields.get('IPC_Trnref'),
            'amount': fields.get('Amount'),
            'status': None,
            'fault': None,
            'fields': list(fields.pairs),
        }
        http_status = faults.api_http_status or faults.api_redirect
        if http_status:  # Answered by something in front of myPOS; never processed.
            call['fault'] = f"http {http_status}"
            with self.lock:
                self.calls.append(call)
            raise RemoteError(
                Failure.HTTP,
                f"myPOS answered with HTTP error {http_status} at {url}",
                url=url,
                http_status=http_status,
            )
        try:
            tree = self._process(method, fields, faults)
        except Reject as reject:
            tree = [
                (ANSWER_METHOD_KEY.get(method, 'IPCmethod'), method),
                ('Status', str(int(reject.status))),
                ('StatusMsg', reject.message),
            ]
            call['status'] = int(reject.status)
        else:
            call['status'] = 0
        if faults.api_status_text is not None:
            tree = [(k, faults.api_status_text if k == 'Status' else v) for k, v in tree]
        pairs = [*tree, ('Signature', sign(flatten_values(tree), self.private_key_pem))]
        if faults.api_bad_signature:
            pairs[-1] = ('Signature', sign(['tampered'], self.private_key_pem))
        if faults.api_unsigned:
            pairs = pairs[:-1]
        body = GARBAGE if faults.api_garbage else render_answer(pairs, fields.get('OutputFormat'))
        call['fault'] = ', '.join(
            name for name in API_FAULTS if getattr(faults, name) not in (None, False, 0.0)
        )
        with self.lock:
            self.calls.append(call)
        if faults.api_drop_answer:
            raise RemoteError(
                Failure.LOST,
                f"the connection to myPOS at {url} broke after the request was sent "
                "(ConnectionError: Connection aborted, RemoteDisconnected): myPOS may have "
                "acted on it",
                url=url,
                error='ConnectionError',
            )
        delay = faults.api_timeout + faults.api_drip * len(body)
        if delay >= const.REQUEST_TIMEOUT:
            raise RemoteError(
                Failure.TIMEOUT,
                f"myPOS did not answer within {const.REQUEST_TIMEOUT} seconds ({url}): "
                "Read timed out.",
                url=url,
                seconds=const.REQUEST_TIMEOUT,
            )
        if delay:
            time.sleep(delay)
        return body

    def _process(self, method, fields, faults):
        self._check_identity(fields)
        handler = {
            const.REFUND_METHOD: self._refund,
            const.TXN_STATUS_METHOD: self._txn_status,
            'IPCGetPaymentStatus': self._payment_status,
            const.TOKEN_PURCHASE_METHOD: self._token_purchase,
            const.PREAUTH_COMPLETION_METHOD: self._preauth_completion,
            const.PREAUTH_CANCELLATION_METHOD: self._preauth_cancellation,
            const.PREAUTH_STATUS_METHOD: self._preauth_status,
        }.get(method)
        if handler is None:
            raise Reject(Status.E_UNSUPPORTED_CALL, f"IPCmethod {method} is not supported")
        with self.lock:
            return handler(fields, faults)

    def _refund(self, fields, faults):
        fields.require('IPC_Trnref', 'Amount', 'Currency')
        amount = read_amount(fields.get('Amount'))
        if amount <= 0:
            raise Reject(Status.E_WRONG_AMOUNT, "the refund Amount must be positive")
        trnref, currency = fields.get('IPC_Trnref'), fields.get('Currency')
        refund_order_id = fields.get('OrderID') or ''
        order_id = self.trnrefs.get(trnref)
        if order_id is None:
            raise Reject(Status.E_INVALID_PARAMS, f"unknown IPC_Trnref {trnref!r}")
        order = self.orders[order_id]
        if order['status'] not in ('paid', 'captured'):
            raise Reject(
                Status.E_TRANSACTION_NOT_PERMITTED,
                f"the purchase {order_id} is {order['status']}, not paid",
            )
        if currency != order['currency']:
            raise Reject(Status.E_INVALID_PARAMS, f"Currency {currency} is not the purchase's")
        if refund_order_id and (
            refund_order_id in self.orders
            or any(r['refund_order_id'] == refund_order_id for r in self.refund_records)
        ):
            raise Reject(
                Status.E_DUPLICATE_TRANSMISSION, f"OrderID {refund_order_id} was already used"
            )
        if faults.refund_insufficient_funds:
            raise Reject(Status.E_NOT_SUFFICIENT_FUNDS, "not enough funds in the merchant account")
        # A captured pre-authorisation is refunded with its IPC_Trnref, up to what was captured
        # (an assumption: https://developers.mypos.com/apis/checkout-api/pre-authorization-notify
        # calls it the reference "for subsequent refund or reversal"; no source shows one).
        paid = order['captured_amount'] if order['status'] == 'captured' else order['amount']
        balance = Decimal(paid) - order['refunded']
        if amount > balance:
            raise Reject(
                Status.E_WRONG_AMOUNT,
                f"the refund {fields.get('Amount')} exceeds the refundable balance {balance:.2f}",
            )
        order['refunded'] += amount
        refund = {
            'order_id': order_id,
            'refund_order_id': refund_order_id,
            'ipc_trnref': trnref,
            'amount': fields.get('Amount'),
            'currency': currency,
        }
        order['refunds'].append(refund)
        self.refund_records.append(dict(refund))
        return [
            ('IPCmethod', const.REFUND_METHOD),
            ('IPC_Trnref', trnref),
            ('Amount', fields.get('Amount')),
            ('Currency', currency),
            ('Status', '0'),
            ('StatusMsg', 'Success'),
        ]

    def _token_purchase(self, fields, faults):
        """Charge a saved card: https://developers.mypos.com/apis/checkout-api (IPCIAPurchase)."""
        fields.require('OrderID', 'Amount', 'Currency', 'CardToken')
        self._check_money(fields)
        order_id, token = fields.get('OrderID'), fields.get('CardToken')
        card = self.tokens.get(token)
        if card is None or card['sid'] != self.sid:
            raise Reject(Status.E_INVALID_PARAMS, f"unknown CardToken {token!r}")
        order = self.orders.get(order_id)
        if order and order['status'] in (*PAID_OR_PAYING, *PREAUTH_HELD):
            raise Reject(
                Status.E_DUPLICATE_TRANSMISSION,
                f"a payment was already made with OrderID {order_id}",
            )
        if not order:
            order = self.orders[order_id] = self._new_order(order_id, const.TOKEN_PURCHASE_METHOD)
        purchase = {
            'order_id': order_id,
            'amount_text': fields.get('Amount'),
            'currency': fields.get('Currency'),
        }
        order.update(
            method=const.TOKEN_PURCHASE_METHOD,
            card_token=token,
            amount=purchase['amount_text'],
            currency=purchase['currency'],
            pan=card['pan'],
            payment_method=const.PAYMENT_METHOD_CARD,
        )
        if faults.token_decline:
            order['status'] = 'declined'
            raise Reject(
                faults.token_decline,
                f"the stored card was not charged: {faults.token_decline.name} (fault)",
            )
        trnref = str(next(self._trnrefs))
        request_datetime = now().strftime('%Y-%m-%d %H:%M:%S')
        order.update(
            status='paid',
            ipc_trnref=trnref,
            request_datetime=request_datetime,
            # What IPCGetTxnStatus nests as OrderStatus: the last message myPOS sent about it.
            last_message=self._order_message(
                const.TOKEN_PURCHASE_METHOD,
                purchase,
                [('IPC_Trnref', trnref), ('RequestDateTime', request_datetime)],
            ),
        )
        self.trnrefs[trnref] = order_id
        return [
            ('IPCmethod', const.TOKEN_PURCHASE_METHOD),
            ('IPC_Trnref', trnref),
            ('Amount', purchase['amount_text']),
            ('Currency', purchase['currency']),
            ('Status', '0'),
            ('StatusMsg', 'Success'),
        ]

    def _txn_status(self, fields, _faults):
        """IPCGetTxnStatus: the last message myPOS signed about the order, nested as
        `OrderStatus` (for a refund's OrderID, the refund itself)."""
        fields.require('OrderID')
        order_id = fields.get('OrderID')
        order = self._payment_order(order_id)
        last = list(order['last_message']) if order and order['last_message'] else None
        tree = [('IPCMethod', const.TXN_STATUS_METHOD), ('OrderID', order_id)]
        if not last:
            refund = next(
                (r for r in self.refund_records if r['refund_order_id'] == order_id), None
            )
            if refund:
                order = refund
                last = self._order_message(
                    const.REFUND_METHOD,
                    {
                        'order_id': order_id,
                        'amount_text': refund['amount'],
                        'currency': refund['currency'],
                    },
                    [('IPC_Trnref', refund['ipc_trnref'])],
                )
        if last:
            tree.append(('OrderStatus', last))
        return tree + [('Status', '0'), ('StatusMsg', 'Success' if order else 'Order not found')]

    def _payment_status(self, fields, _faults):
        fields.require('OrderID')
        order_id = fields.get('OrderID')
        order = self._payment_order(order_id)
        tree = [('IPCMethod', 'IPCGetPaymentStatus'), ('OrderID', order_id)]
        if not order:
            return tree + [
                ('PaymentStatus', '0'),
                ('Status', '0'),
                ('StatusMsg', 'Order not found'),
            ]
        trnref = order['ipc_trnref'] if order['status'] in ('paid', 'reversed') else ''
        return tree + [
            ('PaymentMethod', order['payment_method'] or const.PAYMENT_METHOD_CARD),
            ('PaymentStatus', PAYMENT_STATUS[order['status']]),
            ('PaymentReference', f'MTFAKE{trnref}' if trnref else ''),
            ('Amount', order['amount']),
            ('Currency', order['currency']),
            ('IPC_Trnref', trnref or ''),
            ('Status', '0'),
            ('StatusMsg', 'Success'),
        ]

    def _payment_order(self, order_id):
        """The order the two payment status calls know of: a pre-authorisation is answered as an
        unknown order (what myPOS says of one is undocumented:
        https://developers.mypos.com/apis/checkout-api/pre-auth-status is the call for it)."""
        order = self.orders.get(order_id)
        return None if order and order['method'] == const.PREAUTH_METHOD else order

    # --- Pre-authorisation: https://developers.mypos.com/apis/checkout-api/pre-auth-* --- #

    def _preauth_order(self, fields):
        """The pre-authorisation of the call's OrderID, its lapse applied (lock held).

        :raise Reject: 5 E_INVALID_PARAMS if myPOS holds no pre-authorisation of that OrderID
            (none made, or its page cancelled before a card was tried): the preamble's choice.
        """
        fields.require('OrderID')
        order = self.orders.get(fields.get('OrderID'))
        if (
            not order
            or order['method'] != const.PREAUTH_METHOD
            or order['status'] not in PREAUTH_STATUS
            or (order['status'] != 'declined' and not order['ipc_trnref'])
        ):
            raise Reject(
                Status.E_INVALID_PARAMS,
                f"no pre-authorization with OrderID {fields.get('OrderID')!r}",
            )
        self._lapse(order)
        return order

    def _lapse(self, order):
        """Release a hold past its expiry date: IPCPreAuthStatus 5 from then on."""
        if order['status'] == 'authorized' and today() > order['preauth_expiry']:
            order.update(status='reversed', released_amount=order['authorized_amount'])

    def _preauth_money(self, fields, order, method):
        """The call's Amount (positive, 9) in the pre-authorisation's Currency (5)."""
        fields.require('Amount', 'Currency')
        amount = read_amount(fields.get('Amount'))
        if amount <= 0:
            raise Reject(Status.E_WRONG_AMOUNT, f"the {method} Amount must be positive")
        if fields.get('Currency') != order['currency']:
            raise Reject(
                Status.E_INVALID_PARAMS,
                f"Currency {fields.get('Currency')} is not the pre-authorization's",
            )
        return amount

    @staticmethod
    def _not_permitted(order, what):
        return Reject(
            Status.E_TRANSACTION_NOT_PERMITTED,
            f"the pre-authorization {order['order_id']} is {order['status']}: {what} refused",
        )

    def _preauth_completion(self, fields, _faults):
        """Capture once, at most the authorised amount; a lower one releases the rest (as
        https://developers.mypos.com/in-app-payments/android-payments/pre-authorization-completion
        says). A second completion, or one after a cancellation or the lapse: 14; above: 9."""
        order = self._preauth_order(fields)
        amount = self._preauth_money(fields, order, 'completion')
        if order['status'] != 'authorized':
            raise self._not_permitted(order, "completion")
        authorized = Decimal(order['authorized_amount'])
        if amount > authorized:
            raise Reject(
                Status.E_WRONG_AMOUNT,
                f"the completion {fields.get('Amount')} exceeds the pre-authorized amount "
                f"{authorized:.2f}",
            )
        order.update(status='captured', captured_amount=amount, released_amount=authorized - amount)
        return [
            ('IPCmethod', const.PREAUTH_COMPLETION_METHOD),
            ('Amount', fields.get('Amount')),
            ('Currency', fields.get('Currency')),
            ('OrderID', order['order_id']),
            ('Status', '0'),
            ('StatusMsg', 'Success'),
        ]

    def _preauth_cancellation(self, fields, _faults):
        """Release the whole hold. OrderID, Amount and Currency as myPOS's PHP SDK requires them;
        a partial cancellation is unconfirmed, so an Amount other than the authorised one is
        refused (9). After a completion, a cancellation or the lapse: 14."""
        order = self._preauth_order(fields)
        amount = self._preauth_money(fields, order, 'cancellation')
        if order['status'] != 'authorized':
            raise self._not_permitted(order, "cancellation")
        if amount != Decimal(order['authorized_amount']):
            raise Reject(
                Status.E_WRONG_AMOUNT,
                f"the cancellation {fields.get('Amount')} is not the pre-authorized "
                f"{order['authorized_amount']}",
            )
        order.update(status='cancelled', released_amount=amount)
        return [
            ('IPCmethod', const.PREAUTH_CANCELLATION_METHOD),
            ('Amount', fields.get('Amount')),
            ('Currency', fields.get('Currency')),
            ('Status', '0'),
            ('StatusMsg', 'Success'),
        ]

    def _preauth_status(self, fields, _faults):
        """The pre-authorisation's IPCPreAuthStatus and its expiry, DD/MM/YYYY (empty for a
        declined card: it never held anything)."""
        order = self._preauth_order(fields)
        expiry = order['preauth_expiry']
        return [
            ('IPCmethod', const.PREAUTH_STATUS_METHOD),
            ('OrderID', order['order_id']),
            ('IPCPreAuthStatus', str(int(PREAUTH_STATUS[order['status']]))),
            ('PreAuthExpDate', expiry.strftime('%d/%m/%Y') if expiry else ''),
            ('Status', '0'),
            ('StatusMsg', 'Success'),
        ]
