# Part of payment_mypos. License LGPL-3.
"""The protocol's errors: a code and parameters for whoever explains them, English for the log."""

import enum

from .const import Status


class IPCError(ValueError):
    """Base class of every protocol error.

    Its text is English, for logs and for the refusals answered to myPOS; `code` and `params`
    let the Odoo side explain it in the reader's language (`payment_mypos.const.PROTOCOL_ERRORS`).
    A parameter may itself be an :class:`IPCError` (the reason of a wrapped error).
    """

    default_code = 'ipc_error'

    def __init__(self, message, *, code=None, **params):
        super().__init__(message)
        self.code = code or self.default_code
        self.params = params


class MalformedMessage(IPCError):
    """The message cannot be parsed or lacks a required field."""

    default_code = 'malformed'


class InvalidSignature(IPCError):
    """The message's signature is missing or does not verify."""

    default_code = 'signature_invalid'


class InvalidKey(IPCError):
    """A key or certificate cannot be loaded."""

    default_code = 'key_invalid'


class Failure(str, enum.Enum):
    """Why a server-to-server call gave no usable answer, each with the one question that
    matters for money: may myPOS have acted on the call?"""

    UNREACHABLE = 'unreachable'  # No connection could be made: the request never left.
    LOST = 'lost'  # The connection broke after the request left.
    TIMEOUT = 'timeout'  # No complete answer within the deadline.
    HTTP = 'http'  # An HTTP error status.
    GARBAGE = 'garbage'  # Not XML nor JSON, too large, or not in the layout of the answer.
    UNSIGNED = 'unsigned'  # No signature (myPOS does not sign some error answers).
    SIGNATURE = 'signature'  # A signature that does not verify with myPOS's certificate.
    STATUS = 'status'  # A signed answer whose `Status` is a refusal's code: myPOS refused the call.
    # A signed answer whose `Status` is neither '0' nor a refusal's code ('00', ' 0', '', none):
    # zero written otherwise may be a success, so it is no proof that nothing moved.
    UNCLEAR = 'unclear'

    @property
    def may_have_moved_money(self):
        """Whether myPOS may have acted on the call: only a refusal it signed, or a request that
        never left, proves that it did not."""
        return self not in (Failure.UNREACHABLE, Failure.STATUS)


def shown_status(status, limit=40):
    """Return a `Status` as received, quoted (`repr`), cut to about `limit` characters."""
    shown = repr(status)
    return shown if len(shown) <= limit else shown[: limit - 3] + '...'


class RemoteError(IPCError):
    """A server-to-server call did not give a usable answer; `kind` (a :class:`Failure`) says why.

    `status` is myPOS's `Status` as received (text) when the answer gave one, `tree` the parsed
    answer when there was one.
    """

    default_code = 'remote'

    def __init__(self, kind, message, status=None, tree=None, code=None, **params):
        super().__init__(message, code=code or f'remote_{Failure(kind).value}', **params)
        self.kind = Failure(kind)
        self.status = status
        self.tree = tree

    @property
    def status_code(self):
        """myPOS's `Status` as a :class:`~.const.Status`, or None if none, undocumented, or not
        written as myPOS writes a code (see :meth:`~.const.Status.number`)."""
        return Status.of(self.status)
