# Part of payment_mypos. License LGPL-3.
"""Actions on an Odoo database for the system tests, run in a separate process:

    python odoo_actions.py <odoo.conf> <db> <action> <json arguments>

Prints one line `RESULT <json>` with the action's result. Runs with the Odoo Python of the
caller (the same interpreter as pytest), importing Odoo like odoo-bin does.
"""

import json
import sys


def _env(cr):
    from odoo import SUPERUSER_ID, api

    return api.Environment(cr, SUPERUSER_ID, {})


def _provider(env):
    return env.ref('payment_mypos.payment_provider_mypos')


def setup_provider(env, certificate, credentials=None, journal=True, url='http://127.0.0.1:9/vmp'):
    """myPOS in test state with a throw-away "myPOS" certificate (and optional credentials)."""
    provider = _provider(env)
    values = {'state': 'test', 'is_published': True, 'mypos_public_certificate': certificate}
    values.update(credentials or {})
    if journal and 'journal_id' in provider._fields:
        bank = env['account.journal'].search(
            [('type', '=', 'bank'), ('company_id', '=', provider.company_id.id)], limit=1
        )
        if bank:
            values['journal_id'] = bank.id
    provider.write(values)
    env['ir.config_parameter'].set_param('payment_mypos.sandbox_url', url)
    return {
        'provider_id': provider.id,
        'journal': bool(provider['journal_id'].id) if 'journal_id' in provider._fields else None,
    }


def create_transactions(env, prefix, count, amount=10.0):
    """`count` draft myPOS transactions with their OrderIDs."""
    provider = _provider(env)
    currency = env.ref('base.EUR')
    currency.active = True
    partner = env.ref('base.partner_admin')
    method = env.ref('payment.payment_method_card')
    txs = env['payment.transaction'].create(
        [
            {
                'provider_id': provider.id,
                'payment_method_id': method.id,
                'reference': f'{prefix}-{index}',
                'amount': amount + index / 100,
                'currency_id': currency.id,
                'partner_id': partner.id,
                'operation': 'online_redirect',
            }
            for index in range(count)
        ]
    )
    result = []
    for tx in txs:
        result.append(
            {
                'id': tx.id,
                'reference': tx.reference,
                'order_id': tx._mypos_get_order_id(),
                'amount': f'{tx.amount:.2f}',
                'currency': tx.currency_id.name,
            }
        )
    return result


def transactions(env, ids, post_process=False):
    """State, references and account payments of the transactions; optionally post-process the
    done ones first (twice, as the status page and the cron both may)."""
    txs = env['payment.transaction'].browse(ids)
    if post_process:
        for _attempt in range(2):
            for tx in txs.filtered(lambda t: t.state == 'done' and not t.is_post_processed):
                tx._post_process()
            env.cr.commit()
            txs.invalidate_recordset()
    payments = {}
    if 'account.payment' in env:
        for payment in env['account.payment'].search([('payment_transaction_id', 'in', ids)]):
            payments.setdefault(str(payment.payment_transaction_id.id), []).append(payment.id)
    return {
        'transactions': {
            str(tx.id): {
                'state': tx.state,
                'provider_reference': tx.provider_reference,
                'reference': tx.reference,
                'amount': tx.amount,
                'is_post_processed': tx.is_post_processed,
                'payment_id': tx.payment_id.id if 'payment_id' in tx._fields else None,
            }
            for tx in txs
        },
        'account_payments': payments,
        'account_payments_total': env['account.payment'].search_count([])
        if 'account.payment' in env
        else None,
    }


def saved_card_invoices(env, card_token, amounts=(100.0, 50.0)):
    """A customer with a myPOS saved card (the emulator's token) and posted invoices."""
    from odoo import Command

    provider = _provider(env)
    currency = env.ref('base.EUR')
    currency.active = True
    partner = env['res.partner'].create({'name': 'Card Holder', 'email': 'holder@example.com'})
    token = env['payment.token'].create(
        {
            'provider_id': provider.id,
            'payment_method_id': env.ref('payment.payment_method_visa').id,
            'partner_id': partner.id,
            'provider_ref': card_token,
            'payment_details': '0007 (12/30)',
            'mypos_sid': provider._mypos_get_credentials().sid,
        }
    )
    invoices = env['account.move'].create(
        [
            {
                'move_type': 'out_invoice',
                'partner_id': partner.id,
                'currency_id': currency.id,
                'invoice_line_ids': [
                    Command.create(
                        {'name': 'Gym', 'quantity': 1, 'price_unit': amount, 'tax_ids': []}
                    )
                ],
            }
            for amount in amounts
        ]
    )
    invoices.action_post()
    return {'invoice_ids': invoices.ids, 'token_id': token.id}


def charge_invoices(env, invoice_ids, token_id, ready_file, go_file):
    """The accountant's Register Payment of the invoices (one payment) with the saved card,
    started when `go_file` appears (so that two processes charge at the same moment); its
    outcome, committed."""
    import pathlib
    import time

    from odoo.exceptions import UserError

    provider = _provider(env)
    line = provider.journal_id.inbound_payment_method_line_ids.filtered(
        lambda line: line.payment_provider_id == provider
    )
    env['account.move'].browse(invoice_ids).read(['amount_residual'])  # Snapshot taken now.
    pathlib.Path(ready_file).touch()
    deadline = time.monotonic() + 120
    while not pathlib.Path(go_file).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        wizard = (
            env['account.payment.register']
            .with_context(active_model='account.move', active_ids=invoice_ids)
            .create(
                {
                    'journal_id': provider.journal_id.id,
                    'payment_method_line_id': line.id,
                    'payment_token_id': token_id,
                    'group_payment': True,
                }
            )
        )
        payment = wizard._create_payments()
        tx = payment.payment_transaction_id
        result = {'state': tx.state, 'message': tx.state_message or '', 'amount': tx.amount}
        env.cr.commit()
    except UserError as error:
        env.cr.rollback()
        result = {'state': 'refused', 'message': str(error.args[0])}
    except Exception as error:  # noqa: BLE001 - reported: the request rolled back, as Odoo's would.
        env.cr.rollback()
        result = {'state': 'failed', 'message': f'{type(error).__name__}: {error}'}
    return result


def invoice_payments(env, invoice_ids):
    """What the invoices show: their residuals and their posted payments."""
    invoices = env['account.move'].browse(invoice_ids)
    payments = env['account.payment'].search(
        [
            ('payment_transaction_id.invoice_ids', 'in', invoice_ids),
            ('state', 'in', ('in_process', 'paid')),
        ]
    )
    return {'residuals': invoices.mapped('amount_residual'), 'posted_payments': len(payments)}


def set_done(env, ids, reference_prefix='PRE'):
    """Mark transactions done as a verified notification would (for the upgrade test)."""
    for tx in env['payment.transaction'].browse(ids):
        tx.provider_reference = f'{reference_prefix}{tx.id}'
        tx._set_done()
    return {}


def provider_state(env, provider_id):
    provider = env['payment.provider'].browse(provider_id).exists()
    if not provider:
        return {'exists': False}
    fields = ['code', 'state', 'is_published', 'name', 'module_id', 'redirect_form_view_id']
    fields += [
        f
        for f in (
            'mypos_sid',
            'mypos_wallet_number',
            'mypos_key_index',
            'mypos_private_key_pem',
            'mypos_public_certificate',
        )
        if f in provider._fields
    ]
    values = provider.read(fields)[0]
    values['module_state'] = provider.module_id.state
    values['exists'] = True
    return json.loads(json.dumps(values, default=str))


def uninstall(env, module):
    env['ir.module.module'].search([('name', '=', module)]).button_immediate_uninstall()
    return {}


def module_state(env, module):
    return {'state': env['ir.module.module'].search([('name', '=', module)]).state}


ACTIONS = {
    'setup_provider': setup_provider,
    'create_transactions': create_transactions,
    'transactions': transactions,
    'set_done': set_done,
    'saved_card_invoices': saved_card_invoices,
    'charge_invoices': charge_invoices,
    'invoice_payments': invoice_payments,
    'provider_state': provider_state,
    'uninstall': uninstall,
    'module_state': module_state,
}


def main():
    config_file, db, action, arguments = sys.argv[1:5]
    # Each module named: on 19.0, `import odoo` (a namespace package) imports none of them.
    import odoo.modules.registry
    import odoo.service.server
    from odoo.tools import config

    config.parse_config(['-c', config_file, '-d', db, '--no-http'])
    odoo.service.server.load_server_wide_modules()
    registry = odoo.modules.registry.Registry(db)
    with registry.cursor() as cr:
        result = ACTIONS[action](_env(cr), **json.loads(arguments))
    print('RESULT ' + json.dumps(result, default=str))


if __name__ == '__main__':
    main()
