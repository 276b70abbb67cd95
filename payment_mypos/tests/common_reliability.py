# Part of payment_mypos. License LGPL-3.
"""Shared helpers of the tests of what reaches Odoo's routes (docs/RELIABILITY.md): raw HTTP
requests through the real test server, and a snapshot of every transaction's money state."""

CONTROLLER_LOGGER = 'odoo.addons.payment_mypos.controllers.main'  # Logs each refused message.


class RawHttpMixin:
    """For HttpCase classes: any method, any body, no redirects followed, and a money-state
    snapshot of all transactions read straight from the database."""

    def _raw(self, method, path, data=None, headers=None, params=None):
        response = self.opener.request(
            method,
            self.base_url() + path,
            data=data,
            headers=headers,
            params=params,
            allow_redirects=False,
            timeout=30,
        )
        self.env.invalidate_all()
        return response

    def _money_snapshot(self):
        """Every transaction's money state: (state, provider reference, amount, currency, payment
        method, parent), by id, plus the number of transactions and account payments."""
        self.env.flush_all()
        cr = self.env.cr
        cr.execute("""
            SELECT id, state, provider_reference, amount, currency_id, payment_method_id,
                   source_transaction_id, mypos_order_id
              FROM payment_transaction ORDER BY id
        """)
        rows = {row[0]: tuple(str(value) for value in row[1:]) for row in cr.fetchall()}
        payments = 0
        if 'account.payment' in self.env:
            cr.execute("SELECT count(*) FROM account_payment")
            payments = cr.fetchone()[0]
        return {'transactions': rows, 'account_payments': payments}
