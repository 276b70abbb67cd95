# Part of payment_mypos. License LGPL-3.
"""Small Odoo-side helpers: the protocol's errors and myPOS's statuses in the reader's language,
and the addon's own files."""

import functools
import hashlib
import logging

from odoo.tools import file_open

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
