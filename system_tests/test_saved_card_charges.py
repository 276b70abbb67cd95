# Part of payment_mypos. License LGPL-3.
"""Two accountants (two Odoo processes, two PostgreSQL transactions) charge the customer's saved
card at the same moment, one for invoice 1, the other for invoices 1 and 2 in one payment:
myPOS receives one charge, each invoice is paid at most once (docs/RELIABILITY.md, section 8).
An HttpCase shares one test cursor, so it cannot show this."""

import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mypos_emulator import Emulator


def test_two_simultaneous_charges_of_one_invoice(odoo_system):
    with (
        tempfile.TemporaryDirectory() as state_dir,
        Emulator(host='127.0.0.1', port=0, state_dir=state_dir) as emulator,
    ):
        db, _how = odoo_system.new_db('charge')
        setup = odoo_system.action(
            db, 'setup_provider', certificate=emulator.certificate_pem, url=emulator.url
        )
        assert setup['journal'] is not False, "account payments need a bank journal"
        ids = odoo_system.action(db, 'saved_card_invoices', card_token=emulator.store_card())
        first, second = ids['invoice_ids']
        # Each charge stays 3 s in flight at myPOS, well within the call's deadline.
        emulator.set_faults(api_timeout=3)
        signals = Path(state_dir)
        go = signals / 'go'

        def charge(invoice_ids):
            return odoo_system.action(
                db,
                'charge_invoices',
                invoice_ids=invoice_ids,
                token_id=ids['token_id'],
                ready_file=str(signals / f'ready-{len(invoice_ids)}'),
                go_file=str(go),
            )

        with ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(charge, [first]), pool.submit(charge, [first, second])]
            deadline = time.monotonic() + 180
            while len(list(signals.glob('ready-*'))) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            go.touch()
            outcomes = [future.result() for future in futures]
        charges = [c for c in emulator.api_calls() if c['method'] == 'IPCIAPurchase']
        shown = odoo_system.action(db, 'invoice_payments', invoice_ids=ids['invoice_ids'])

    assert len(charges) == 1, (charges, outcomes)
    assert sorted(o['state'] for o in outcomes) == ['done', 'refused'], outcomes
    (refused,) = [o for o in outcomes if o['state'] == 'refused']
    assert 'being sent to myPOS' in refused['message'], outcomes
    (done,) = [o for o in outcomes if o['state'] == 'done']
    # The winner's invoices are paid, the other one (if any) still owes all of it.
    expected = [0.0, 0.0] if done['amount'] == 150.0 else [0.0, 50.0]
    assert shown == {'residuals': expected, 'posted_payments': 1}, (shown, outcomes)
