# Part of payment_mypos. License LGPL-3.

import datetime
import functools
import logging
import re

from odoo import api, fields, models

from .. import const, utils

_logger = logging.getLogger(__name__)

# Values that must never be stored in clear in the log, whatever the field is called.
_CARD_NUMBER_RE = re.compile(r'\b\d{12,19}\b')
# Fields whose value is replaced by a short marker: long, or secret.
_HIDDEN_FIELDS = {'signature', 'cardtoken', 'privatekey', 'pk', 'cvc', 'cvv'}


def redact_pairs(pairs, depth=0):
    """Return the text of (name, value) pairs for the log: one `Name = value` per line.

    `Signature` and card tokens are replaced by a marker, card numbers are masked down to their
    last four digits and nested objects (the `OrderStatus` of `IPCGetTxnStatus`) are indented.

    :param list pairs: (name, value) pairs; a value may be a list of pairs.
    :rtype: str
    """
    lines = []
    indent = '    ' * depth
    for name, value in pairs or ():
        if isinstance(value, list):
            lines.append(f'{indent}{name}:')
            lines.append(redact_pairs(value, depth + 1))
            continue
        value = '' if value is None else str(value)
        if name.lower() in _HIDDEN_FIELDS:
            value = f'[{len(value)} characters, not shown]' if value else ''
        else:
            value = _CARD_NUMBER_RE.sub(
                lambda m: '*' * (len(m.group()) - 4) + m.group()[-4:], value
            )
        lines.append(f'{indent}{name} = {value}')
    return '\n'.join(line for line in lines if line)


class PaymentMyPOSLog(models.Model):
    """One message exchanged with myPOS about a transaction: what was sent, what came back.

    Written for support: an accountant opens the transaction and sees every call (refund, status
    check) and every message myPOS sent about it, redacted (no signature, no card data).
    """

    _name = 'payment.mypos.log'
    _description = "myPOS Call Log"
    _order = 'id desc'
    _rec_name = 'method'

    transaction_id = fields.Many2one(
        comodel_name='payment.transaction',
        required=True,
        index=True,
        ondelete='cascade',
        readonly=True,
    )
    direction = fields.Selection(
        selection=[('out', "Sent to myPOS"), ('in', "Received from myPOS")],
        required=True,
        readonly=True,
    )
    method = fields.Char(string="IPC Method", readonly=True)
    order_id = fields.Char(string="myPOS Order ID", readonly=True)
    outcome = fields.Char(
        readonly=True,
        help="What the module concluded from the exchange (or why there was no usable answer).",
    )
    payload = fields.Text(string="Content (redacted)", readonly=True)
    repeat_count = fields.Integer(
        string="Times Received",
        default=1,
        readonly=True,
        help="How many times this very message came in (myPOS repeats notifications; replays "
        "are counted here instead of filling the log).",
    )

    def _check_access(self, operation):
        """Override of `base` to show the log only to those who may read payment transactions.

        The log holds customer names, e-mails and card endings: it is as private as the
        payments it is about, whatever the access right on the log itself says. Reads and
        searches check the model this way; the record rule keeps each company's own.
        """
        result = super()._check_access(operation)
        if result or operation != 'read':
            return result
        if not self.env['payment.transaction'].has_access('read'):
            return self, functools.partial(
                self.env['ir.model.access']._make_access_error, 'payment.transaction', 'read'
            )
        return None

    @api.model
    def _mypos_retention_cutoff(self):
        """Return the date before which the log may forget, or None when it keeps everything."""
        days = utils.get_int_param(
            self.env, const.LOG_RETENTION_PARAM, const.DEFAULT_LOG_RETENTION_DAYS
        )
        if days <= 0:
            return None
        return fields.Datetime.now() - datetime.timedelta(days=days)

    @api.autovacuum
    def _gc_mypos_log(self):
        """Forget the exchanges, with the customer data they hold, of transactions final and
        unchanged for longer than `payment_mypos.log_retention_days` (default about 13 months),
        like Odoo's own logs; never those of a transaction still open or changed recently."""
        cutoff = self._mypos_retention_cutoff()
        if not cutoff:
            return
        self.env.cr.execute(
            f"""
            DELETE FROM {self._table} log
             USING payment_transaction tx
             WHERE tx.id = log.transaction_id
               AND log.create_date < %s
               AND tx.write_date < %s
               AND tx.state NOT IN ('draft', 'pending', 'authorized')
            """,
            [cutoff, cutoff],
        )
        _logger.info(
            "myPOS log: forgot %s exchange(s) from before %s", self.env.cr.rowcount, cutoff
        )

    @api.model
    def _mypos_add(
        self, transaction, direction, method, pairs=None, order_id=None, outcome=None, once=False
    ):
        """Record one exchange; never raises for the content's sake.

        :param recordset transaction: The `payment.transaction` it is about.
        :param str direction: 'out' or 'in'.
        :param str method: The IPC method (`IPCRefund`, `IPCGetTxnStatus`, `IPCPurchaseNotify`...).
        :param list pairs: The fields, as (name, value) pairs (nested lists allowed), or None.
        :param bool once: Count a repeat of the same message and outcome instead of adding it.
        :return: The log record.
        """
        values = {
            'transaction_id': transaction.id,
            'direction': direction,
            'method': method,
            'order_id': order_id,
            'outcome': (outcome or '')[:1000] or False,
            'payload': redact_pairs(pairs) if pairs else False,
        }
        if once:
            repeated = self.sudo().search(
                [(name, '=', value) for name, value in values.items()], limit=1
            )
            if repeated:
                repeated.repeat_count += 1
                return repeated
        # The transaction's company spares create() looking up the current user's company (the
        # public user's, on the webhook), a third of a notification's handling time.
        return self.sudo().with_company(transaction.company_id).create(values)
