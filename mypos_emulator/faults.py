"""The fault switches: how a test makes the emulator misbehave as myPOS or the network may.

See README.md (Fault switches) for what each switch does to the wire.
"""

import copy
import dataclasses
import re
from dataclasses import dataclass

from ._ipc import const


class EmulatorError(Exception):
    """Misuse of the emulator (bad configuration, bad fault value, ...)."""


_DUPLICATE_MODES = (False, 'sequential', 'concurrent')
_API_FAULTS = (
    'api_http_status',
    'api_redirect',
    'api_garbage',
    'api_bad_signature',
    'api_unsigned',
    'api_timeout',
    'api_drop_answer',
    'api_drip',
    'refund_insufficient_funds',
    'token_decline',
    'api_status_text',
)
# What XML 1.0 cannot carry (control characters, surrogates, U+FFFE/U+FFFF).
_NOT_XML_RE = re.compile('[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]')


# The HTTP statuses each status fault may take.
_HTTP_STATUS_FAULTS = {
    'api_http_status': range(100, 600),
    'api_redirect': (301, 302, 303, 307, 308),
}


def _error_status(value):
    """A documented myPOS error status (not 0), or None; else ValueError."""
    if value in (None, ''):
        return None
    if isinstance(value, bool):
        raise ValueError(value)
    status = int(str(value))
    if status == 0 or status not in const.STATUS_NAMES:
        raise ValueError(value)
    return status


def _status_text(value):
    """The text of the api_status_text fault, or None; else ValueError."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or _NOT_XML_RE.search(value):
        raise ValueError(value)
    return value


def _echoed_text(value):
    """The PaymentMethod the notify_payment_method fault echoes: None (off) or a text."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise ValueError(value)
    return value


# The switches whose values are checked by a function of their own.
_COERCE = {
    'token_decline': _error_status,
    'api_status_text': _status_text,
    'notify_payment_method': _echoed_text,
}


@dataclass
class Faults:
    """Fault switches. All are sticky (stay set until changed or reset) except `notify_fail_once`,
    which is consumed by the next payment, and the api_* / refund / token faults when
    `api_faults_remaining` is set (they then apply to that many server-to-server calls only).
    """

    # Notifications (IPCPurchaseNotify / IPCPurchaseRollback to URL_Notify):
    notify_delay: float = 0.0  # Seconds; the browser goes to URL_OK at once, notify sent later.
    notify_drop: bool = False  # Never send the notify; the payment stays paid (reconciliation).
    notify_duplicate: bool | str = False  # 'sequential' (True) or 'concurrent': send twice.
    notify_reorder: bool = False  # Rollback first, then a stale notify; payment ends reversed.
    notify_fail_once: bool = False  # One-shot: notify not delivered, treated as failed: rollback.
    notify_omit_card_type: bool = False  # Leave CardType out of the notify (as the real sandbox).
    notify_payment_method: str | None = None  # The notify (and OK) echo this PaymentMethod.
    # Server-to-server calls (IPCRefund, IPCGetTxnStatus, IPCGetPaymentStatus, IPCIAPurchase):
    api_http_status: int | None = None  # Answer this HTTP status (e.g. 503); call not processed.
    api_redirect: int | None = None  # Redirect (e.g. 307) to this very endpoint; not processed.
    api_garbage: bool = False  # Answer HTTP 200 with an HTML body; the call is processed.
    api_bad_signature: bool = False  # Answer with a Signature that does not verify; processed.
    api_unsigned: bool = False  # Answer without any Signature (as myPOS may for errors); processed.
    api_timeout: float = 0.0  # Sleep this many seconds before answering; processed.
    api_drop_answer: bool = False  # Close the connection without any answer; processed.
    api_drip: float = 0.0  # Send the answer one byte every this many seconds; processed.
    refund_insufficient_funds: bool = False  # IPCRefund answers Status 13 E_NOT_SUFFICIENT_FUNDS.
    token_decline: int | None = None  # IPCIAPurchase answers this Status (e.g. 21); not charged.
    api_status_text: str | None = None  # The answer's Status is this text ('00', ' 0'); processed.
    api_faults_remaining: int | None = None  # None = sticky; n = the api faults hit n calls.

    def as_dict(self):
        return dataclasses.asdict(self)

    def update(self, values):
        """Set switches from a mapping (e.g. JSON); ``{"reset": true}`` first clears them all."""
        values = dict(values or {})
        if values.pop('reset', False):
            self.reset()
        names = {f.name for f in dataclasses.fields(self)}
        unknown = set(values) - names
        if unknown:
            raise EmulatorError(f"unknown fault switch(es): {', '.join(sorted(unknown))}")
        for name, value in values.items():
            setattr(self, name, self._coerce(name, value))
        return self

    def reset(self):
        for f in dataclasses.fields(self):
            setattr(self, f.name, f.default)
        return self

    @staticmethod
    def _coerce(name, value):
        try:
            if name in ('notify_delay', 'api_timeout', 'api_drip'):
                value = float(value or 0)
                if value < 0:
                    raise ValueError
                return value
            if name == 'notify_duplicate':
                if value in (True, 'true', 'True', 1):
                    return 'sequential'
                if value in (False, None, '', 0, 'false', 'False'):
                    return False
                if value not in _DUPLICATE_MODES:
                    raise ValueError
                return value
            if name in _HTTP_STATUS_FAULTS:
                if value in (None, '', 0):
                    return None
                if int(value) not in _HTTP_STATUS_FAULTS[name]:
                    raise ValueError
                return int(value)
            if name in _COERCE:
                return _COERCE[name](value)
            if name == 'api_faults_remaining':
                if value in (None, ''):
                    return None
                value = int(value)
                if value < 1:
                    raise ValueError
                return value
            if isinstance(value, str):
                return value.lower() in ('1', 'true', 'yes', 'on')
            return bool(value)
        except (TypeError, ValueError):
            raise EmulatorError(f"invalid value {value!r} for fault switch {name}") from None

    def api_active(self, method):
        return bool(
            self.api_http_status
            or self.api_redirect
            or self.api_garbage
            or self.api_bad_signature
            or self.api_unsigned
            or self.api_timeout
            or self.api_drop_answer
            or self.api_drip
            or (self.refund_insufficient_funds and method == 'IPCRefund')
            or (self.token_decline and method == 'IPCIAPurchase')
            or self.api_status_text is not None
        )

    def take_api(self, method):
        """The switches one server-to-server call sees; counts `api_faults_remaining` down."""
        taken = copy.copy(self)
        if self.api_active(method) and self.api_faults_remaining is not None:
            self.api_faults_remaining -= 1
            if self.api_faults_remaining <= 0:
                for name in _API_FAULTS:
                    setattr(self, name, Faults.__dataclass_fields__[name].default)
                self.api_faults_remaining = None
        return taken if taken.api_active(method) else Faults()

    def take_payment(self):
        """The switches one approved payment sees; `notify_fail_once` is spent by it."""
        taken = copy.copy(self)
        self.notify_fail_once = False
        return taken
