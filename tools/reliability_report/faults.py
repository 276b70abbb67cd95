"""Section 4 of the report: the faults injected at the myPOS boundary, with their tests."""

STATUS_TEST = 'TestStatusCheckFaults::test_status_check_faults_then_settled'

# (operation, fault, expected, test) of the fault table, section 4.
FAULT_MATRIX = [
    (
        'Test connection',
        'connection refused',
        '"Endpoint unreachable", nothing stored but the result',
        'TestConnection::test_unreachable',
    ),
    (
        'Test connection',
        'timeout',
        '"Endpoint timed out" within the request timeout',
        'TestConnection::test_timeout',
    ),
    (
        'Test connection',
        'HTTP 503, garbage',
        '"Endpoint error" / "Not a myPOS answer"',
        'TestConnection::test_http_error_and_garbage',
    ),
    (
        'Test connection',
        'wrongly signed answer',
        '"signature does not verify"',
        'TestConnection::test_answer_signature_does_not_verify',
    ),
    (
        'Refund',
        'connection refused',
        'error (surely not sent), no payment',
        'TestRefunds::test_network_error_before_sending',
    ),
    (
        'Refund',
        'HTTP 503',
        'pending, never re-sent, settled by the status check',
        'TestRefunds::test_http_5xx_leaves_pending',
    ),
    (
        'Refund',
        'garbage',
        'pending, settled by the status check',
        'TestRefunds::test_garbage_answer_leaves_pending',
    ),
    (
        'Refund',
        'wrongly signed answer',
        'pending, settled by the status check',
        'TestRefunds::test_wrongly_signed_answer_leaves_pending',
    ),
    (
        'Refund',
        'unsigned answer',
        'pending, settled by the status check',
        'TestRefunds::test_unsigned_answer_leaves_pending',
    ),
    (
        'Refund',
        'timeout',
        'pending, settled by the status check',
        'TestRefunds::test_timeout_then_status_check',
    ),
    (
        'Refund',
        'replayed request (duplicate OrderID)',
        'not refunded twice',
        'TestRefunds::test_replayed_request_does_not_refund_twice',
    ),
    (
        'Refund',
        'connection closed after myPOS refunded',
        'pending, second refund refused, settled by the status check',
        'TestLostAnswers::test_lost_refund_answer_never_refunds_twice',
    ),
    (
        'Refund',
        'answer trickling a byte at a time',
        'pending at the deadline, settled by the status check',
        'TestLostAnswers::test_slow_drip_answer_keeps_the_deadline',
    ),
    (
        'Status check',
        'wrongly signed status',
        'not applied',
        'TestStatusCheck::test_wrongly_signed_status_not_applied',
    ),
]


def faults_section(add, run, faults):
    add('## 4. Faults at the myPOS boundary')
    add('')
    add(
        'The emulator (`mypos_emulator/`) injects the faults; a closed loopback port plays '
        '"connection refused". Test outcomes are from this run.'
    )
    add('')
    add('| Operation | Fault | Expected | Test | Outcome |')
    add('|---|---|---|---|---|')
    for operation, fault, expected, test in FAULT_MATRIX:
        add(f"| {operation} | {fault} | {expected} | `{test}` | {run.outcome(test)} |")
    for row in (faults or {}).get('status_check', []):
        add(
            f"| Status check (lost notification) | {row['fault']} | "
            f"{row['during_fault']['outcome']}, stays {row['during_fault']['state']}; next "
            f"check: {row['next_check']['outcome']} → {row['next_check']['state']} | "
            f"`{STATUS_TEST}` | {run.outcome(STATUS_TEST)} |"
        )
    add('')
