"""The benchmark database: modules, providers and the open transactions the loads pay."""

import datetime
import os
import subprocess
import urllib.parse

from .console import die, log
from .odoo_server import odoo_command

MODULES = ('payment_mypos', 'payment_demo')
BENCH_PREFIX = 'BENCH-'  # references of the open transactions the webhook pays
CHECKOUT_PREFIX = 'BCHK'  # reference prefix of the transactions the checkout creates
DEMO_PREFIX = 'BDEMO-'  # references of the open payment_demo transactions its route pays
DEMO_TRANSACTIONS = 8000
AMOUNT = 12.34  # checkout amount (EUR)


def installed_modules(db):
    import psycopg2

    try:
        connection = psycopg2.connect(dbname=db)
    except psycopg2.OperationalError:
        return None
    try:
        with connection.cursor() as cr:
            cr.execute("SELECT name FROM ir_module_module WHERE state = 'installed'")
            return {name for (name,) in cr.fetchall()}
    except psycopg2.Error:
        return set()
    finally:
        connection.close()


def install_or_update(args):
    """Create the database with the modules when missing; else update payment_mypos."""
    logfile = os.path.join(args.work_dir, 'install.log')
    installed = installed_modules(args.db)
    if installed is None or not set(MODULES) <= installed:
        if installed is not None and not installed:
            die(
                f"database {args.db} exists but is not an Odoo database: drop it (dropdb {args.db})"
            )
        log(f"Installing {','.join(MODULES)} into {args.db} (log: {logfile})")
        odoo_args = ['-i', ','.join(MODULES), '--without-demo=all']
    elif os.environ.get('MYPOS_BENCH_NO_UPDATE') == '1':
        return
    else:
        log(f"Updating payment_mypos in {args.db} (log: {logfile})")
        odoo_args = ['-u', 'payment_mypos']
    result = subprocess.run(
        odoo_command(args)
        + [
            '-c',
            args.config,
            '-d',
            args.db,
            *odoo_args,
            '--stop-after-init',
            '--no-http',
            f'--logfile={logfile}',
        ],
        check=False,
    )
    if result.returncode:
        die(f"odoo-bin {' '.join(odoo_args)} failed (log: {logfile})")
    missing = set(MODULES) - (installed_modules(args.db) or set())
    if missing:
        die(f"not installed in {args.db}: {', '.join(sorted(missing))} (log: {logfile})")


def boot_odoo(args):
    import odoo
    from odoo.tools import config

    config.parse_config(['-c', args.config, '-d', args.db, '--log-level=warn', '--no-http'])
    return odoo


def prepare_database(args, base_url, certificate):
    """Configure the providers, keep N open myPOS transactions, return what the loads need."""
    odoo = boot_odoo(args)
    from odoo.modules.registry import Registry

    registry = Registry(args.db)
    with registry.cursor() as cr:
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
        env['ir.config_parameter'].set_param('web.base.url', base_url)
        env['ir.config_parameter'].set_param('web.base.url.freeze', 'True')
        eur = env.ref('base.EUR')
        eur.active = True
        card = env.ref('payment.payment_method_card')
        demo_method = env.ref('payment_demo.payment_method_demo')
        partner = env['res.partner'].search([('ref', '=', 'mypos-bench')], limit=1) or env[
            'res.partner'
        ].create(
            {
                'name': 'Bench Customer',
                'ref': 'mypos-bench',
                'email': 'bench@example.com',
                'street': '1 Bench Street',
                'city': 'Sofia',
                'zip': '1000',
                'country_id': env.ref('base.bg').id,
                'phone': '+359 2 000 0000',
            }
        )
        mypos = env.ref('payment_mypos.payment_provider_mypos')
        demo = env.ref('payment.payment_provider_demo')
        mypos.write(
            {'state': 'test', 'is_published': True, 'mypos_public_certificate': certificate}
        )
        demo.write({'state': 'test', 'is_published': True})
        mypos.payment_method_ids |= card
        demo.payment_method_ids |= demo_method
        (card | demo_method).write({'active': True})

        Transaction = env['payment.transaction'].sudo()
        # The transactions a previous run's checkout created.
        Transaction.search([('reference', '=like', CHECKOUT_PREFIX + '%')]).unlink()
        # Open transactions: reset those a previous run paid, create the missing ones.
        cr.execute(
            """
            UPDATE payment_transaction
               SET state = 'draft', provider_reference = NULL, state_message = NULL,
                   is_post_processed = FALSE, payment_method_id = %s
             WHERE provider_id = %s AND reference LIKE %s AND state != 'draft'
        """,
            [card.id, mypos.id, BENCH_PREFIX + '%'],
        )
        cr.execute(
            """
            UPDATE payment_transaction
               SET state = 'draft', provider_reference = NULL, state_message = NULL,
                   is_post_processed = FALSE
             WHERE provider_id = %s AND reference LIKE %s AND state != 'draft'
        """,
            [demo.id, DEMO_PREFIX + '%'],
        )
        env.invalidate_all()
        existing_demo = Transaction.search_count([('reference', '=like', DEMO_PREFIX + '%')])
        if existing_demo < DEMO_TRANSACTIONS:
            log(f"Creating {DEMO_TRANSACTIONS - existing_demo} open payment_demo transactions")
            for start in range(existing_demo, DEMO_TRANSACTIONS, 1000):
                Transaction.create(
                    [
                        {
                            'provider_id': demo.id,
                            'payment_method_id': demo_method.id,
                            'reference': f'{DEMO_PREFIX}{index:06d}',
                            'amount': 10 + (index % 900) / 10,
                            'currency_id': eur.id,
                            'partner_id': partner.id,
                            'operation': 'online_direct',
                        }
                        for index in range(start, min(start + 1000, DEMO_TRANSACTIONS))
                    ]
                )
                env.flush_all()
                cr.commit()
                env.invalidate_all()
        cr.execute(
            "SELECT reference FROM payment_transaction WHERE provider_id = %s"
            " AND reference LIKE %s AND state = 'draft' ORDER BY id",
            [demo.id, DEMO_PREFIX + '%'],
        )
        open_demo = [reference for (reference,) in cr.fetchall()]
        existing = Transaction.search_count(
            [
                ('provider_id', '=', mypos.id),
                ('reference', '=like', BENCH_PREFIX + '%'),
            ]
        )
        if existing < args.open_transactions:
            log(f"Creating {args.open_transactions - existing} open myPOS transactions")
            for start in range(existing, args.open_transactions, 1000):
                stop = min(start + 1000, args.open_transactions)
                txs = Transaction.create(
                    [
                        {
                            'provider_id': mypos.id,
                            'payment_method_id': card.id,
                            'reference': f'{BENCH_PREFIX}{index:06d}',
                            'amount': 10 + (index % 900) / 10,
                            'currency_id': eur.id,
                            'partner_id': partner.id,
                            'operation': 'online_redirect',
                            'landing_route': '/payment/status',
                        }
                        for index in range(start, stop)
                    ]
                )
                for tx in txs:
                    tx._mypos_get_order_id()
                env.flush_all()
                cr.commit()
                env.invalidate_all()
        cr.execute(
            """
            SELECT t.id, t.mypos_order_id, t.amount, c.name
              FROM payment_transaction t JOIN res_currency c ON c.id = t.currency_id
             WHERE t.provider_id = %s AND t.reference LIKE %s AND t.state = 'draft'
               AND t.mypos_order_id IS NOT NULL
             ORDER BY t.id
        """,
            [mypos.id, BENCH_PREFIX + '%'],
        )
        open_txs = cr.fetchall()
        sid = mypos._mypos_get_credentials().sid
        # payment.utils.generate_access_token needs a request; the same HMAC without one.
        access_token = odoo.tools.hmac(
            env(su=True), 'generate_access_token', f'{partner.id}|{AMOUNT}|{eur.id}'
        )
        cr.commit()
        context = {
            'sid': sid,
            'open_txs': open_txs,
            'open_count': len(open_txs),
            'open_demo': open_demo,
            'mypos': {'provider_id': mypos.id, 'payment_method_id': card.id, 'flow': 'redirect'},
            'demo': {'provider_id': demo.id, 'payment_method_id': demo_method.id, 'flow': 'direct'},
            'partner_id': partner.id,
            'currency_id': eur.id,
            'access_token': access_token,
            'mypos_provider_id': mypos.id,
        }
    odoo.sql_db.close_all()
    return context


def count_paid(args, context, since_ids):
    import psycopg2

    connection = psycopg2.connect(dbname=args.db)
    try:
        with connection.cursor() as cr:
            cr.execute(
                "SELECT count(*) FROM payment_transaction WHERE id = ANY(%s) AND state = 'done'",
                [list(since_ids)],
            )
            return cr.fetchone()[0]
    finally:
        connection.close()


def notification_bodies(private_key, sid, txs, run_tag):
    """Signed IPCPurchaseNotify bodies, one per transaction, in myPOS's field order."""
    from odoo.addons.payment_mypos import ipc

    now = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M:%S')
    bodies = []
    for index, (_tx_id, order_id, amount, currency) in enumerate(txs):
        fields = [
            ('IPCmethod', 'IPCPurchaseNotify'),
            ('SID', sid),
            ('Amount', f'{amount:.2f}'),
            ('Currency', currency),
            ('OrderID', order_id),
            ('IPC_Trnref', f'{run_tag}{index:06d}'),
            ('RequestSTAN', f'{index % 1000000:06d}'),
            ('RequestDateTime', now),
            ('PaymentMethod', '1'),
            ('BillingDescriptor', 'myPOS  * BENCHSTORE'),
            ('PAN', '0007'),
            ('CardType', '3'),
        ]
        bodies.append(urllib.parse.urlencode(ipc.sign_fields(fields, private_key)))
    return bodies
