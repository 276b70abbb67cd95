# Part of payment_mypos. License LGPL-3.

import contextlib
import logging

from psycopg2.extensions import ISOLATION_LEVEL_READ_COMMITTED

from odoo import api, fields, models, sql_db

from .. import const

_logger = logging.getLogger(__name__)


class PaymentMyPOSOutbox(models.Model):
    """A call that moves money (a saved card's charge, a refund), recorded before it is sent.

    Written and committed on a connection of its own, so that it outlives a rollback of the
    request that sent the call: the status check finds a call whose transaction Odoo lost, asks
    myPOS how it ended and books it or tells a person. It holds plain ids, not foreign keys: the
    records it names may not be committed yet when it is written.
    """

    _name = 'payment.mypos.outbox'
    _description = "myPOS Calls Sent"
    _order = 'id desc'
    _rec_name = 'order_id'

    order_id = fields.Char(string="myPOS Order ID", required=True, readonly=True)
    method = fields.Char(string="IPC Method", required=True, readonly=True)
    reference = fields.Char(readonly=True, help="The reference of the transaction that sent it.")
    operation = fields.Char(readonly=True)
    amount = fields.Float(readonly=True, help="The transaction's amount (negative for a refund).")
    currency_name = fields.Char(string="Currency", readonly=True)
    provider_db_id = fields.Integer(string="Provider ID", readonly=True)
    partner_db_id = fields.Integer(string="Partner ID", readonly=True)
    token_db_id = fields.Integer(string="Token ID", readonly=True)
    source_db_id = fields.Integer(
        string="Refunded Transaction ID", readonly=True, help="The payment a refund refunds."
    )
    invoice_db_ids = fields.Char(string="Invoice IDs", readonly=True)
    order_db_ids = fields.Char(string="Sales Order IDs", readonly=True)
    lock_keys = fields.Char(
        readonly=True,
        help="What the call pays or refunds (documents; else card and amount), space-delimited: "
        "a new call of the same is held back while this one is unsettled.",
    )
    state = fields.Selection(
        selection=[
            ('sent', "Sent"),
            ('recorded', "Recorded"),
            ('recovered', "Recovered"),
            ('flagged', "Flagged to a person"),
            ('void', "Nothing moved"),
        ],
        default='sent',
        required=True,
        readonly=True,
        help="Sent: no transaction of Odoo is known to hold it yet. Recorded: its transaction "
        "holds it. Recovered: its transaction was lost and rebuilt from myPOS's answer. "
        "Flagged: myPOS could not tell; a person was asked to look. Nothing moved: myPOS did "
        "not make it.",
    )
    transaction_db_id = fields.Integer(string="Transaction ID", readonly=True)
    check_count = fields.Integer(string="Status Checks", readonly=True)
    next_check = fields.Datetime(string="Next Status Check", readonly=True)

    def init(self):
        """Override of `base`: one row per OrderID, searched by state and lock keys."""
        res = super().init()
        self.env.cr.execute(
            f"CREATE UNIQUE INDEX IF NOT EXISTS {self._table}_order_id_uniq "
            f"ON {self._table} (order_id)"
        )
        self.env.cr.execute(
            f"CREATE INDEX IF NOT EXISTS {self._table}_sent_index "
            f"ON {self._table} (id) WHERE state = 'sent'"
        )
        return res

    # === BUSINESS METHODS ===#

    @api.model
    @contextlib.contextmanager
    def _mypos_cursor(self):
        """A cursor on a connection of its own, committed on exit: what it writes survives a
        rollback of the current request (even in tests, whose cursors share one transaction).

        READ COMMITTED, not Odoo's REPEATABLE READ: a reservation that waited for another
        worker's advisory lock must see the call that worker committed meanwhile, which a
        snapshot taken when its first statement (the lock) began would hide.
        """
        cr = sql_db.db_connect(self.env.cr.dbname).cursor()
        # Before any statement; the pool gives the connection back REPEATABLE READ next time.
        cr.connection.set_isolation_level(ISOLATION_LEVEL_READ_COMMITTED)
        try:
            yield cr
            # Its own connection, never the request's: committing it is the point.
            cr.commit()  # pylint: disable=invalid-commit
        finally:
            cr.close()

    @api.model
    def _mypos_lock_keys(self, tx):
        """Return what a call of `tx` pays or refunds, as lock keys (sorted)."""
        if tx.operation == 'refund':
            return [f'refund:{tx.source_transaction_id.id}']
        keys = [
            f'{prefix}:{record_id}'
            for prefix, name in (('inv', 'invoice_ids'), ('so', 'sale_order_ids'))
            if name in tx._fields
            for record_id in tx[name].ids
        ]
        return sorted(keys) or [f'card:{tx.token_id.id}:{tx.currency_id.name}:{tx.amount}']

    @api.model
    def _mypos_reserve(self, tx, method):
        """Record the call `tx` is about to send, unless an unsettled call of the same documents
        holds them; committed before the call is sent.

        A call holds its documents until its transaction is final (error, cancelled, done and
        post-processed; a refund: done) in this request's own view: a transaction another request
        committed after this one began is invisible here, and this request's idea of what the
        documents still owe does not count it yet. The advisory locks make two requests reserving
        the same documents take turns; the connection of its own sees the calls other requests
        recorded since this one began.

        :param recordset tx: The `payment.transaction` about to send the call (its OrderID set).
        :param str method: The IPC method about to be sent.
        :return: The (order_id, reference, amount, currency) of the calls holding the documents;
                 empty when the call was recorded and may be sent.
        :rtype: list
        """
        keys = self._mypos_lock_keys(tx)
        order_id = tx.mypos_order_id
        with self._mypos_cursor() as cr:
            for key in keys:
                cr.execute(
                    'SELECT pg_advisory_xact_lock(%s, hashtext(%s))', [const.OUTBOX_LOCK_SPACE, key]
                )
            cr.execute(
                f"""
                SELECT order_id, reference, amount, currency_name
                  FROM {self._table}
                 WHERE state = 'sent'
                   AND order_id != %s
                   AND string_to_array(trim(lock_keys), ' ') && %s::text[]
              ORDER BY id
                """,
                [order_id, keys],
            )
            candidates = cr.fetchall()
            final_here = {
                other.mypos_order_id
                for other in self.env['payment.transaction']
                .sudo()
                .search([('mypos_order_id', 'in', [row[0] for row in candidates])])
                if other.state in ('error', 'cancel')
                or (
                    other.state == 'done'
                    and (other.is_post_processed or other.operation == 'refund')
                )
            }
            holding = [row for row in candidates if row[0] not in final_here]
            if holding:
                cr.rollback()
                return holding
            cr.execute(
                f"""
                INSERT INTO {self._table} (
                    order_id, method, reference, operation, amount, currency_name,
                    provider_db_id, partner_db_id, token_db_id, source_db_id, invoice_db_ids,
                    order_db_ids, lock_keys, state, check_count, create_date, write_date
                ) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'sent', 0,
                          now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC')
                ON CONFLICT (order_id) DO NOTHING
                """,
                [
                    order_id,
                    method,
                    tx.reference,
                    tx.operation,
                    tx.amount,
                    tx.currency_id.name,
                    tx.provider_id.id,
                    tx.partner_id.id,
                    tx.token_id.id or None,
                    tx.source_transaction_id.id or None,
                    ','.join(map(str, tx.invoice_ids.ids)) if 'invoice_ids' in tx._fields else '',
                    ','.join(map(str, tx.sale_order_ids.ids))
                    if 'sale_order_ids' in tx._fields
                    else '',
                    f" {' '.join(keys)} ",
                ],
            )
        _logger.info("Recorded %s %s of %s before sending it", method, order_id, tx.reference)
        return []

    @api.model
    def _mypos_reserve_preauth(self, preauth, method, target):
        """Record the capture or release of an authorisation about to be sent, unless one was
        recorded already (by a request that rolled back, a double click): one per authorisation,
        as myPOS makes one (docs/mypos-protocol.md, Pre-authorisation). A call myPOS refused is
        recorded again in its place.

        :param recordset preauth: The authorised `payment.transaction` (its OrderID is the row's).
        :param str method: `IPCPreAuthCompletion` or `IPCPreAuthCancellation`.
        :param recordset target: The capture or release transaction.
        :return: The row's id when the call may be sent, else None.
        :rtype: int|None
        """
        order_id = preauth.mypos_order_id
        with self._mypos_cursor() as cr:
            cr.execute(
                'SELECT pg_advisory_xact_lock(%s, hashtext(%s))',
                [const.OUTBOX_LOCK_SPACE, f'preauth:{order_id}'],
            )
            cr.execute(
                f"""
                INSERT INTO {self._table} AS o (
                    order_id, method, reference, operation, amount, currency_name,
                    provider_db_id, partner_db_id, lock_keys, state, check_count, create_date,
                    write_date
                ) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'sent', 0,
                          now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC')
                ON CONFLICT (order_id) DO UPDATE
                   SET method = EXCLUDED.method, reference = EXCLUDED.reference,
                       amount = EXCLUDED.amount, state = 'sent', check_count = 0,
                       next_check = NULL, transaction_db_id = NULL,
                       create_date = EXCLUDED.create_date, write_date = EXCLUDED.write_date
                 WHERE o.state = 'void'
                RETURNING id
                """,
                [
                    order_id,
                    method,
                    target.reference or preauth.reference,
                    preauth.operation,
                    target.amount,
                    preauth.currency_id.name,
                    preauth.provider_id.id,
                    preauth.partner_id.id,
                    f' preauth:{order_id} ',
                ],
            )
            row = cr.fetchone()
        if row:
            _logger.info("Recorded %s %s of %s before sending it", method, order_id, preauth)
        return row and row[0]

    @api.model
    def _mypos_preauth_row(self, preauth):
        """Return the capture or release recorded for an authorisation (method, amount, state,
        create_date), unless myPOS refused it; None if there is none."""
        with self._mypos_cursor() as cr:
            cr.execute(
                f"SELECT id, method, amount, state, create_date FROM {self._table} "
                "WHERE order_id = %s AND state != 'void'",
                [preauth.mypos_order_id],
            )
            rows = cr.dictfetchall()
        return rows[0] if rows else None

    @api.model
    def _mypos_void_preauth(self, preauth, before):
        """Forget the capture or release of an authorisation recorded before `before`, which
        myPOS did not make (it still holds the authorisation), so that it may be sent again.

        :return: Whether there was one.
        :rtype: bool
        """
        with self._mypos_cursor() as cr:
            cr.execute(
                f"UPDATE {self._table} SET state = 'void', write_date = now() AT TIME ZONE 'UTC' "
                "WHERE order_id = %s AND state != 'void' AND create_date <= %s",
                [preauth.mypos_order_id, before],
            )
            return bool(cr.rowcount)

    @api.model
    def _mypos_fetch_due(self, before, limit):
        """Return the unsettled calls recorded before `before` whose check is due, as dicts;
        those whose transaction was committed are marked recorded first, all at once."""
        with self._mypos_cursor() as cr:
            cr.execute(
                f"""
                UPDATE {self._table} o
                   SET state = 'recorded', transaction_db_id = tx.id,
                       write_date = now() AT TIME ZONE 'UTC'
                  FROM payment_transaction tx
                 WHERE o.state = 'sent' AND o.create_date <= %s
                   AND tx.mypos_order_id = o.order_id
                """,
                [before],
            )
            cr.execute(
                f"""
                SELECT id, order_id, method, reference, operation, amount, currency_name,
                       provider_db_id, partner_db_id, token_db_id, source_db_id,
                       invoice_db_ids, order_db_ids, check_count
                  FROM {self._table}
                 WHERE state = 'sent' AND create_date <= %s
                   AND (next_check IS NULL OR next_check <= now() AT TIME ZONE 'UTC')
              ORDER BY id
                 LIMIT %s
                """,
                [before, limit],
            )
            return cr.dictfetchall()

    @api.model
    def _mypos_update(self, row_id, **values):
        """Write on a call's row on the connection of its own (committed at once)."""
        columns = ', '.join(f'{name} = %s' for name in values)
        with self._mypos_cursor() as cr:
            cr.execute(
                f"UPDATE {self._table} SET {columns}, write_date = now() AT TIME ZONE 'UTC' "
                "WHERE id = %s",
                [*values.values(), row_id],
            )

    @api.model
    def _mypos_row_terms(self, row):
        """What a message about a lost call names: its method, OrderID, amount and reference."""
        return {
            'method': row['method'],
            'order_id': row['order_id'],
            'amount': abs(row['amount']),
            'currency': row['currency_name'],
            'reference': row['reference'],
        }

    @api.model
    def _mypos_row_records(self, row):
        """The documents a lost call paid (else its customer), to put a to-do on."""
        records = []
        for name, ids in (
            ('account.move', row['invoice_db_ids']),
            ('sale.order', row['order_db_ids']),
        ):
            if ids and name in self.env:
                found = self.env[name].sudo().browse(int(i) for i in ids.split(',')).exists()
                if found:
                    records.append(found)
        return records or self.env['res.partner'].sudo().browse(row['partner_db_id']).exists()

    @api.autovacuum
    def _gc_mypos_settled_calls(self):
        """Forget the settled calls older than the myPOS log's retention (`payment_mypos.
        log_retention_days`); a call still `sent` is kept until the status check settles it.
        On the connection of its own, where the rows are written."""
        cutoff = self.env['payment.mypos.log']._mypos_retention_cutoff()
        if not cutoff:
            return
        with self._mypos_cursor() as cr:
            cr.execute(
                f"DELETE FROM {self._table} WHERE state != 'sent' AND write_date < %s", [cutoff]
            )
            _logger.info("myPOS: forgot %s settled call(s) sent before %s", cr.rowcount, cutoff)
