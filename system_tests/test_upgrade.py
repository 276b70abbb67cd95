# Part of payment_mypos. License LGPL-3.
"""Item 6 of docs/RELIABILITY.md: upgrading keeps the credentials and the transactions;
uninstalling resets the provider as Odoo's providers are reset and leaves the transactions
readable. On a database without account payments (account_payment refuses to uninstall a
provider whose payment method is used by account payments)."""

from conftest import generate_key_pair

CREDENTIAL_FIELDS = (
    'mypos_sid',
    'mypos_wallet_number',
    'mypos_key_index',
    'mypos_private_key_pem',
    'mypos_public_certificate',
)


def test_upgrade_then_uninstall(odoo_system):
    db, how = odoo_system.new_db('upg')
    store_key, _store_certificate = generate_key_pair()
    _mypos_key, certificate = generate_key_pair()
    setup = odoo_system.action(
        db,
        'setup_provider',
        certificate=certificate,
        journal=False,
        credentials={
            'mypos_sid': '000000000012345',
            'mypos_wallet_number': '40012345678',
            'mypos_key_index': 3,
            'mypos_private_key': store_key,
        },
    )
    provider_id = setup['provider_id']
    txs = odoo_system.action(db, 'create_transactions', prefix='UPG', count=3)
    ids = [tx['id'] for tx in txs]
    odoo_system.action(db, 'set_done', ids=ids[:2])
    provider_before = odoo_system.action(db, 'provider_state', provider_id=provider_id)
    txs_before = odoo_system.action(db, 'transactions', ids=ids)
    assert txs_before['account_payments_total'] in (0, None)
    assert provider_before['mypos_sid'] == '000000000012345'
    assert 'PRIVATE KEY' in provider_before['mypos_private_key_pem']

    odoo_system.odoo(
        '-d', db, '-u', 'payment_mypos', '--stop-after-init', '--no-http', log=f'upgrade-{db}.log'
    )
    provider_upgraded = odoo_system.action(db, 'provider_state', provider_id=provider_id)
    txs_upgraded = odoo_system.action(db, 'transactions', ids=ids)

    odoo_system.action(db, 'uninstall', module='payment_mypos')
    module = odoo_system.action(db, 'module_state', module='payment_mypos')
    provider_after = odoo_system.action(db, 'provider_state', provider_id=provider_id)
    txs_after = odoo_system.action(db, 'transactions', ids=ids)

    def summary(transactions):
        return {
            key: (value['state'], value['provider_reference'], value['reference'], value['amount'])
            for key, value in transactions['transactions'].items()
        }

    kept = {
        field: provider_upgraded.get(field) == provider_before.get(field)
        for field in CREDENTIAL_FIELDS
    }

    assert all(kept.values()), kept
    assert summary(txs_upgraded) == summary(txs_before)
    assert module['state'] == 'uninstalled'
    # Reset like `reset_payment_provider` does for Odoo's own providers; the record stays as
    # its transactions point at it.
    assert provider_after['exists']
    assert provider_after['code'] == 'none'
    assert provider_after['state'] == 'disabled'
    assert provider_after['is_published'] is False
    assert provider_after['redirect_form_view_id'] is False
    assert not set(CREDENTIAL_FIELDS) & set(provider_after), "the credential columns are gone"
    assert summary(txs_after) == summary(txs_before)
