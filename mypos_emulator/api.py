"""The server-to-server calls (IPCRefund, IPCGetTxnStatus, IPCGetPaymentStatus, IPCIAPurchase, and
the pre-authorisation calls of :mod:`.preauth`), their signed answers, and the api_* fault
switches that bend those answers on the way out.
"""

import copy
from decimal import Decimal

from . import answers, messages
from ._ipc import const, fake_rules, ipc
from .messages import Reject
from .preauth import PreAuth, is_preauth
from .state import TAKEN, iso, new_order, note_sent, now
from .wire import Response


def _add_fault(call, text):
    call['fault'] = ', '.join(filter(None, [call['fault'], text]))


class Api:
    """Answers the calls a merchant's server makes, and records each call."""

    def __init__(self, context, state, store, keys, front):
        self.context = context
        self.state = state
        self.store = store
        self.keys = keys
        self.front = front  # The api_redirect fault points back at its checkout URL.
        self.preauth = PreAuth(state)

    def call(self, method, fields, headers):
        """Answer one call of `method` (one of messages.API_METHODS), faults applied; count how
        many are answered at once (a merchant's politeness is part of what tests check).
        Nothing is required of the `headers` (myPOS's PHP SDK sends no User-Agent)."""
        with self.state.lock:
            self.state.api_in_flight += 1
            self.state.api_in_flight_max = max(
                self.state.api_in_flight_max, self.state.api_in_flight
            )
        try:
            return self._call(method, fields)
        finally:
            with self.state.lock:
                self.state.api_in_flight -= 1

    def _call(self, method, fields):
        faults = self.state.take_api_faults(method)
        call = {
            'at': iso(),
            'method': method,
            'order_id': fields.get('OrderID'),
            'ipc_trnref': fields.get('IPC_Trnref'),
            'amount': fields.get('Amount'),
            'status': None,
            'fault': None,
        }
        if faults.api_http_status or faults.api_redirect:
            return self._unprocessed(call, faults)
        try:
            tree, reject = self._process(method, fields, faults), None
        except Reject as error:
            tree, reject = None, error
        response = self.answer(
            method,
            tree,
            reject=reject,
            fields=fields,
            bad_signature=faults.api_bad_signature,
            unsigned=faults.api_unsigned,
            status_text=faults.api_status_text,
        )
        call['status'] = reject.status if reject else 0
        call['status_msg'] = reject.message if reject else 'Success'
        if faults.api_status_text is not None:
            _add_fault(call, f'Status {faults.api_status_text!r}')
        if faults.api_garbage:
            call['fault'] = 'garbage'
            response = Response(
                200,
                "<html><head><title>Error</title></head><body>Temporary problem<br></body></html>",
            )
        elif faults.api_bad_signature:
            call['fault'] = 'bad signature'
        elif faults.api_unsigned:
            call['fault'] = 'unsigned'
        if faults.api_timeout:
            _add_fault(call, f'timeout {faults.api_timeout}s')
        with self.state.lock:
            self.state.api_calls.append(call)
        self.context.log(
            f"{method} {call['order_id'] or call['ipc_trnref']!r}: Status {call['status']}"
            f"{' (' + call['fault'] + ')' if call['fault'] else ''}"
        )
        if faults.api_drop_answer:
            _add_fault(call, 'answer dropped')
            response.drop = True
        if faults.api_drip:
            _add_fault(call, f'drip {faults.api_drip}s')
            response.drip = faults.api_drip
        if faults.api_timeout:
            self.context.stopping.wait(faults.api_timeout)
        return response

    def answer(
        self,
        method,
        tree,
        reject=None,
        fields=None,
        bad_signature=False,
        unsigned=False,
        status_text=None,
    ):
        """The signed XML/JSON answer of `tree`, or of `reject` (a signed error answer);
        `status_text`, when given, is written (and signed) as its `Status`."""
        if reject is not None:
            key = answers.ANSWER_METHOD_KEY.get(method, 'IPCmethod')
            tree = [
                (key, method or ''),
                ('Status', str(reject.status)),
                ('StatusMsg', reject.message),
            ]
        if status_text is not None:
            tree = [(name, status_text if name == 'Status' else value) for name, value in tree]
        pairs = answers.signed(tree, self.keys.private_key_pem)
        if bad_signature:
            values = ipc.flatten_values(pairs[:-1]) + ['tampered']
            pairs[-1] = ('Signature', ipc.sign(values, self.keys.private_key_pem))
        if unsigned:
            pairs = pairs[:-1]
        content_type, body = answers.render(pairs, fields.get('OutputFormat') if fields else '')
        return Response(200, body, content_type)

    def _unprocessed(self, call, faults):
        """The api_http_status / api_redirect answer: the call is answered, never processed."""
        status = faults.api_http_status or faults.api_redirect
        call.update(fault=f"{'http' if faults.api_http_status else 'redirect'} {status}")
        with self.state.lock:
            self.state.api_calls.append(call)
        if faults.api_http_status:
            return Response(
                status,
                f"<html><body><h1>{status}</h1>Service error "
                f"(emulator fault api_http_status)</body></html>",
            )
        return Response(
            status,
            "Moved (emulator fault api_redirect)",
            'text/plain',
            {'Location': self.front.url},
        )

    def _process(self, method, fields, faults):
        """Check and carry out the call; return its answer tree or raise Reject."""
        messages.check_identity(fields, self.store)
        handler = {
            'IPCRefund': self._refund,
            'IPCGetTxnStatus': self._txn_status,
            'IPCGetPaymentStatus': self._payment_status,
            'IPCIAPurchase': self._token_purchase,
            **self.preauth.handlers,
        }.get(method)
        if handler is None:
            raise Reject(ipc.Status.E_UNSUPPORTED_CALL, f"IPCmethod {method} is not emulated")
        return handler(fields, faults)

    def _refund(self, fields, faults):
        fields.require('IPC_Trnref', 'Amount', 'Currency')
        amount = messages.parse_amount(fields.get('Amount'))
        if amount <= 0:
            raise Reject(ipc.Status.E_WRONG_AMOUNT, "the refund Amount must be positive")
        trnref, currency = fields.get('IPC_Trnref'), fields.get('Currency')
        refund_order_id = fields.get('OrderID') or ''
        with self.state.lock:
            order_id = self.state.trnrefs.get(trnref)
            if order_id is None:
                raise Reject(ipc.Status.E_INVALID_PARAMS, f"unknown IPC_Trnref {trnref!r}")
            order = self.state.orders[order_id]
            # A completed pre-authorisation is refunded with its notify's IPC_Trnref, up to the
            # captured amount (an assumption: no myPOS source shows it).
            captured = is_preauth(order) and order['status'] == 'captured'
            if order['status'] != 'paid' and not captured:
                raise Reject(
                    ipc.Status.E_TRANSACTION_NOT_PERMITTED,
                    f"the purchase {order_id} is {order['status']}, not paid",
                )
            if currency != order['currency']:
                raise Reject(
                    ipc.Status.E_INVALID_PARAMS,
                    f"Currency {currency} differs from the purchase's {order['currency']}",
                )
            if refund_order_id and (
                refund_order_id in self.state.orders
                or any(r['refund_order_id'] == refund_order_id for r in self.state.refunds)
            ):
                raise Reject(
                    ipc.Status.E_DUPLICATE_TRANSMISSION,
                    f"OrderID {refund_order_id} was already used",
                )
            if faults.refund_insufficient_funds:
                raise Reject(
                    ipc.Status.E_NOT_SUFFICIENT_FUNDS,
                    "not enough funds in the merchant account (fault)",
                )
            base = order['captured_amount'] if captured else order['amount']
            balance = Decimal(base) - order['refunded']
            if amount > balance:
                raise Reject(
                    ipc.Status.E_WRONG_AMOUNT,
                    f"the refund {fields.get('Amount')} exceeds the refundable balance "
                    f"{messages.format_decimal(balance)}",
                )
            order['refunded'] += amount
            refund = {
                'at': iso(),
                'order_id': order_id,
                'refund_order_id': refund_order_id,
                'ipc_trnref': trnref,
                'amount': fields.get('Amount'),
                'currency': currency,
                'balance_after': Decimal(base) - order['refunded'],
            }
            order['refunds'].append(refund)
            self.state.refunds.append(dict(refund))
        return [
            ('IPCmethod', 'IPCRefund'),
            ('IPC_Trnref', trnref),
            ('Amount', fields.get('Amount')),
            ('Currency', currency),
            ('Status', '0'),
            ('StatusMsg', 'Success'),
        ]

    def _token_purchase(self, fields, faults):
        """Charge a stored card (IPCIAPurchase); answer as myPOS's Checkout API v1.4 document."""
        purchase = messages.check_token_purchase(fields, self.store)
        order_id, token = purchase['order_id'], purchase['card_token']
        with self.state.lock:
            card = self.state.tokens.get(token)
            if card is None or card['sid'] != self.store.sid:  # 5: emulator's choice.
                raise Reject(ipc.Status.E_INVALID_PARAMS, f"unknown CardToken {token!r}")
            order = self.state.orders.get(order_id)
            if order and order['status'] in TAKEN:  # As for IPCPurchase.
                raise Reject(
                    ipc.Status.E_DUPLICATE_TRANSMISSION,
                    f"a payment was already made with OrderID {order_id}",
                )
            if not order:
                order = self.state.orders[order_id] = new_order(order_id, 'IPCIAPurchase')
            order.update(
                {
                    'method': 'IPCIAPurchase',
                    'card_token': token,
                    'amount': purchase['amount_text'],
                    'currency': purchase['currency'],
                    'payment_method': '1',
                    'pan': card['pan'],
                    'card_type': card['card_type'],
                }
            )
            attempt = {'at': iso(), 'pan': card['pan'], 'card_token': token}
            order['attempts'].append(attempt)
            if faults.token_decline:
                status = faults.token_decline
                attempt.update(outcome='declined', status=status)
                order['status'] = 'declined'
                raise Reject(
                    status,
                    f"the stored card was not charged: {const.STATUS_NAMES[status]} "
                    f"(fault token_decline)",
                )
            trnref = self.state.next_trnref()
            request_datetime = now().strftime('%Y-%m-%d %H:%M:%S')
            attempt['outcome'] = 'approved'
            # What IPCGetTxnStatus nests as OrderStatus (emulator's choice: the docs say only "the
            # last message myPOS sent", docs/mypos-protocol.md §4.8, which was this call's answer).
            order_status = answers.order_message(
                'IPCIAPurchase',
                self.store,
                purchase['amount_text'],
                purchase['currency'],
                order_id,
                self.keys.private_key_pem,
                [('IPC_Trnref', trnref), ('RequestDateTime', request_datetime)],
            )
            order.update(
                {
                    'status': 'paid',
                    'ipc_trnref': trnref,
                    'request_datetime': request_datetime,
                    'paid_at': iso(),
                    'last_message': order_status,
                }
            )
            note_sent(order, 'IPCIAPurchase', 'answer')
            self.state.trnrefs[trnref] = order_id
        return [
            ('IPCmethod', 'IPCIAPurchase'),
            ('IPC_Trnref', trnref),
            ('Amount', purchase['amount_text']),
            ('Currency', purchase['currency']),
            ('Status', '0'),
            ('StatusMsg', 'Success'),
        ]

    def _txn_status(self, fields, _faults):
        fields.require('OrderID')
        order_id = fields.get('OrderID')
        with self.state.lock:
            order = self.state.orders.get(order_id)
            if is_preauth(order):  # Emulator's choice: only IPCPreAuthStatus tells of a hold.
                order = None
            last = (
                [tuple(pair) for pair in order['last_message']]
                if order and order['last_message']
                else None
            )
        tree = [('IPCMethod', 'IPCGetTxnStatus'), ('OrderID', order_id)]
        if not last:
            # A refund's OrderID: its last message is the refund itself (undocumented for real
            # myPOS, docs/mypos-protocol.md §4.8, §9 — an assumption the module documents).
            refunds = self.state.copy_refunds()
            refund = next((r for r in refunds if r['refund_order_id'] == order_id), None)
            if refund:
                order = refund
                last = answers.order_message(
                    'IPCRefund',
                    self.store,
                    refund['amount'],
                    refund['currency'],
                    order_id,
                    self.keys.private_key_pem,
                    [('IPC_Trnref', refund['ipc_trnref'])],
                )
        if last:
            tree.append(('OrderStatus', last))
        return tree + [('Status', '0'), ('StatusMsg', 'Success' if order else 'Order not found')]

    def _payment_status(self, fields, _faults):
        fields.require('OrderID')
        order_id = fields.get('OrderID')
        with self.state.lock:
            order = copy.deepcopy(self.state.orders.get(order_id))
        tree = [('IPCMethod', 'IPCGetPaymentStatus'), ('OrderID', order_id)]
        if not order or is_preauth(order):  # As IPCGetTxnStatus: unknown.
            return tree + [
                ('PaymentStatus', '0'),
                ('Status', '0'),
                ('StatusMsg', 'Order not found'),
            ]
        payment_status = fake_rules.PAYMENT_STATUS[order['status']]
        trnref = order['ipc_trnref'] if order['status'] in ('paid', 'reversed') else ''
        return tree + [
            ('PaymentMethod', order.get('payment_method') or '1'),
            ('PaymentStatus', payment_status),
            ('PaymentReference', f'MTEMU{trnref}' if trnref else ''),
            ('Amount', order['amount']),
            ('Currency', order['currency']),
            ('IPC_Trnref', trnref or ''),
            ('DateTime', order['request_datetime'] if trnref else ''),
            ('FeeAmount', '0.00' if payment_status == '1' else ''),
            ('Status', '0'),
            ('StatusMsg', 'Success'),
        ]
