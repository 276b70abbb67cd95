# Part of payment_mypos. License LGPL-3.
"""Small Odoo-side helpers: the protocol's errors and myPOS's statuses in the reader's language,
and the addon's own files."""

import functools
import hashlib
import logging

from odoo import fields
from odoo.tools import config, file_open

from . import const, ipc

_logger = logging.getLogger(__name__)


@functools.lru_cache(maxsize=4)
def read_addon_file(path):
    """Return the text of a file shipped with the addon (the public sandbox key material)."""
    with file_open(f'payment_mypos/{path}') as file:
        return file.read()


def sandbox_certificate():
    """Return myPOS's public sandbox certificate (PEM)."""
    return read_addon_file(const.SANDBOX_CERTIFICATE_FILE)


def sandbox_private_key():
    """Return the private key of myPOS's public sandbox store (PEM)."""
    return read_addon_file(const.SANDBOX_PRIVATE_KEY_FILE)


def instance_tag(env):
    """Return the short tag of this database that keeps its OrderIDs apart in a shared store."""
    db_uuid = env['ir.config_parameter'].sudo().get_param('database.uuid', '')
    return hashlib.sha256(db_uuid.encode()).hexdigest()[:8]


def get_int_param(env, name, default):
    """Return a whole-number system parameter, or `default` when it is unset or not a number."""
    value = env['ir.config_parameter'].sudo().get_param(name)
    try:
        return int(value) if value else default
    except ValueError:
        _logger.warning("Ignoring the system parameter %s=%r (not a number)", name, value)
        return default


def next_check_date(check_count):
    """Return when to check again a transaction checked `check_count` times (growing interval)."""
    # The exponent is capped before it is used, whatever the number of checks allowed.
    doublings = min(max(check_count, 0), const.MAX_CHECK_DOUBLINGS)
    delay = min(const.FIRST_CHECK_DELAY * (2**doublings), const.MAX_CHECK_INTERVAL)
    return fields.Datetime.now() + delay


def check_time_budget():
    """Return how many seconds a status-check run may launch calls: half the cron's real-time
    limit, less room for the calls still in flight (None: no limit)."""
    limit = config['limit_time_real_cron']
    if limit is None or limit < 0:
        limit = config['limit_time_real']
    if not limit or limit <= 0:
        return None
    return max(limit / 2 - 2 * ipc.const.REQUEST_TIMEOUT, ipc.const.REQUEST_TIMEOUT)


def is_sandbox_store(sid, wallet_number):
    """Tell whether a store is myPOS's public sandbox one, the only store known to be a test one."""
    return sid == ipc.const.SANDBOX_SID or wallet_number == ipc.const.SANDBOX_WALLET_NUMBER


def translate(env, template, params):
    """Return a lazy template of a table in the language of `env`, filled with `params`."""
    text = env._(template)
    return text % params


def is_status(value):
    """Tell whether `value` is a status code as myPOS writes one: exactly '0', or ASCII digits
    not all zeros ('00', ' 4' are none; see `ipc.Status.number`)."""
    return ipc.Status.number(value) is not None


def explain_status(env, status, status_msg=None):
    """Return what a myPOS `Status` means and what to do, in the language of `env`
    (https://developers.mypos.com/apis/checkout-api/checkout-getting-started/error-messages).

    :param int|str status: The code.
    :param str status_msg: myPOS's own `StatusMsg` (its words, quoted as they are), if any.
    :rtype: str
    """
    number = ipc.Status.number(status)
    if number is None:
        return env._("myPOS answered with an unknown status %s.", ipc.shown_status(status))
    code = ipc.Status.of(number)
    if code is ipc.Status.SUCCESS:
        return env._("Success.")
    text = const.STATUS_EXPLANATIONS.get(code)
    return env._(
        "Error %(code)s %(name)s%(detail)s: %(text)s",
        code=number,
        name=ipc.const.STATUS_NAMES.get(number, 'unknown'),
        detail=env._(' (myPOS: "%s")', status_msg) if status_msg else '',
        text=env._(text) if text else env._("myPOS answered with an undocumented status."),
    )


def explain_error(env, error):
    """Return a protocol error as a sentence in the language of `env`; never raises (it runs in
    error handlers): anything unexpected gives the error's English text.

    :param ipc.IPCError error: The error; its parameters that are errors are explained too.
    :rtype: str
    """
    try:
        return _explain_error(env, error)
    except Exception:  # noqa: BLE001 - the explanation must never hide the error it explains.
        _logger.exception("Cannot explain the myPOS error %r", error.code)
        return str(error)


def _explain_error(env, error):
    if isinstance(error, ipc.RemoteError) and error.kind is ipc.Failure.UNCLEAR:
        template = const.PROTOCOL_ERRORS['remote_unclear']
        return translate(env, template, {'status': ipc.shown_status(error.status)})
    if isinstance(error, ipc.RemoteError) and error.kind in (
        ipc.Failure.STATUS,
        ipc.Failure.UNSIGNED,
    ):
        status_msg = ipc.get_field(error.tree or [], 'StatusMsg')
        if error.kind is ipc.Failure.STATUS:
            return explain_status(env, error.status, status_msg)
        status = explain_status(env, error.status, status_msg) if error.status else ''
        template = const.PROTOCOL_ERRORS['remote_unsigned']
        return translate(env, template, {'status': status}).strip()
    template = const.PROTOCOL_ERRORS.get(error.code)
    if template is None:
        return str(error)
    params = {
        name: explain_error(env, value) if isinstance(value, ipc.IPCError) else value
        for name, value in error.params.items()
    }
    try:
        return translate(env, template, params)
    except (KeyError, TypeError, ValueError):  # A translation naming other parameters.
        _logger.warning("The translation of %r does not fit its parameters", error.code)
        return str(error)
