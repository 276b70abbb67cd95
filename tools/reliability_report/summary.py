"""Section "Summary" of the report: one row per kind of attack or fault tried."""

from .sections import AT_MOST_ONCE


def summary(add, fig, run):
    forged, fuzz, conc = fig['forged'], fig['fuzz'], fig['concurrency']
    faults, secrets, upgrade = fig['faults'], fig['secrets'], fig['upgrade']
    recut, lost = fig['recut'], fig['lost_answers']
    reversal, log_access = fig['rollback_after_done'], fig['log_access']
    tokens = fig['token_charges']
    add('## Summary')
    add('')
    add('| # | What was tried | How many | What happened |')
    add('|---|---|---|---|')
    if forged:
        add(
            f"| 1 | Forged and odd notifications on `/payment/mypos/webhook` | "
            f"{forged['total']} cases | "
            f"HTTP 5xx: {forged['http_5xx']}; state changes: {forged['state_changes']}; "
            f"`OK` only to the {forged['answered_ok']} idempotent repeats |"
        )
    if fuzz:
        add(
            f"| 2 | Property-based fuzzing (hypothesis) of webhook bodies and browser returns | "
            f"{fuzz['total_examples']} requests | HTTP 5xx: {fuzz['http_5xx']}; state changes: "
            f"{fuzz['state_changes']}; `OK` answers: "
            f"{sum(g['answered_ok'] for g in fuzz['generators'].values())} "
            f"({fuzz['seconds']} s) |"
        )
    if conc:
        one, many = conc['identical'], conc['distinct']
        add(
            f"| 3 | Concurrency on Odoo with {conc['workers']} HTTP workers and PostgreSQL | "
            f"51 + 200 requests | one tx: {one['final_state']}, {one['account_payments']} "
            f"account payment; 200 txs: "
            f"{', '.join(f'{v} {k}' for k, v in many['final_states'].items())}, "
            f"{many['account_payments']} account payments; "
            f"server errors: {conc['server_errors_logged']} |"
        )
    if faults:
        add(
            f"| 4 | Faults at the myPOS boundary (test connection, refund, status check) | "
            f"{len(faults['status_check'])} status-check faults + the cases of the other suites "
            f"below | no money state changed on a guess; the next status check settled every "
            f"one |"
        )
    if secrets:
        add(
            f"| 5 | Secrets: ORM, JSON-RPC, export, payment form, redirect form, logs, errors | "
            f"{len(secrets['checks'])} checks | no credential readable by non-admins; no "
            f"private key material anywhere |"
        )
    if upgrade:
        u, d = upgrade['upgrade'], upgrade['uninstall']
        add(
            f"| 6 | Upgrade and uninstall | 1 upgrade + 1 uninstall | credentials kept: "
            f"{all(u['credentials_kept'].values())}; transactions kept: "
            f"{u['transactions_kept']}; provider after uninstall: code "
            f"`{d['provider']['code']}`, {d['provider']['state']}; "
            f"transactions readable: {d['transactions_readable']} |"
        )
    if recut:
        add(
            f"| 7 | Genuine myPOS signatures re-cut at '-' and re-named, on all three routes | "
            f"{recut['count']} requests | HTTP 5xx: {recut['http_5xx']}; state changes: "
            f"{recut['changed']}; `OK` answers: {recut['ok']} |"
        )
    if lost:
        add(
            f"| 8 | Refund answer lost after myPOS made the refund | 1 refund + a second "
            f"attempt | refunds sent {lost['refunds_sent']}, made by myPOS "
            f"{lost['refunds_made_by_mypos']} (0 double refunds); "
            f"{lost['state_after_lost_answer']}, then "
            f"{lost['state_after_status_check']} by the status check |"
        )
    if reversal:
        add(
            f"| 9 | Rollback after done (and its replays) | {reversal['rollbacks_posted']} "
            f"rollbacks | reversals booked: {reversal['reversals_booked']} "
            f"({reversal['reversal_amount']}), outbound payment: "
            f"{reversal['outbound_payment']}, activities: {reversal['activities']} |"
        )
    if log_access:
        add(
            f"| 10 | Access to the myPOS log (customer data) | 3 users | employee without "
            f"payment access refused: {log_access['employee_refused']}; accountant reads: "
            f"{log_access['accountant_reads']}; other company's hidden: "
            f"{log_access['other_company_hidden']} |"
        )
    if tokens:
        cases = tokens['cases']
        add(
            f"| 11 | Charges of a saved card (IPCIAPurchase): declines, lost and late answers, "
            f"replays, second clicks | {len(cases)} cases | double charges: "
            f"{sum(max(c['charged'] - 1, 0) for c in cases)}; charged but not shown paid: "
            f"{sum(1 for c in cases if c['charged'] and c['state_after_check'] != 'done')}; "
            f"shown paid but not charged: "
            f"{sum(1 for c in cases if not c['charged'] and c['state_after_check'] == 'done')} |"
        )
    outcomes = [run.outcome(test) for test, _case, _asserted in AT_MOST_ONCE]
    add(
        f"| 12 | At most once: retries after a lost answer, another worker, two processes at "
        f"once, a rollback after myPOS acted, unclear zero statuses, link holders (section 9) | "
        f"{len(outcomes)} tests | passed: {outcomes.count('passed')} of {len(outcomes)}; each "
        f"passing test asserts 0 double charges, 0 double refunds, 0 forgotten charges |"
    )
    add('')
