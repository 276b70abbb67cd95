# Part of payment_mypos. License LGPL-3.
"""Mark as live the myPOS payments that were started before `mypos_live` existed.

A transaction of a provider that is live at the upgrade is taken as started live, so that the
public sandbox certificate never verifies its messages later (see `_mypos_verify`).
"""


def migrate(cr, version):
    if not version:
        return
    cr.execute(
        """
        UPDATE payment_transaction tx
           SET mypos_live = TRUE
          FROM payment_provider provider
         WHERE tx.provider_id = provider.id
           AND provider.code = 'mypos'
           AND provider.state = 'enabled'
           AND tx.mypos_order_id IS NOT NULL
        """
    )
