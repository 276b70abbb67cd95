# Part of payment_mypos. License LGPL-3.
"""The administrator's side of a myPOS provider: connection test, setup checks, configuration pack,
disconnection. Free functions of a provider record, kept out of the model so that it holds the
framework's concerns only."""

import ipaddress
import logging
import time
import uuid
from urllib.parse import urlsplit

from werkzeug import urls

from odoo import fields
from odoo.exceptions import ValidationError
from odoo.tools import LazyTranslate, format_datetime

from . import ipc, utils
from .controllers.main import MyPOSController

_logger = logging.getLogger(__name__)
_lt = LazyTranslate(__name__)

Failure, Status = ipc.Failure, ipc.Status

# What a failed connection test means, by failure: what is wrong, then what to do. `error` is the
# failure explained, `url` the endpoint, `index` the key index.
FAILURE_HINTS = {
    Failure.TIMEOUT: _lt(
        "Endpoint timed out: %(error)s Check that this server can open https connections to "
        "%(url)s (firewall, proxy), then try again; if it persists, myPOS may be having an outage."
    ),
    Failure.LOST: _lt(
        "Connection broken: %(error)s Check that nothing between this server and %(url)s (proxy, "
        "firewall) cuts connections, then try again."
    ),
    Failure.UNREACHABLE: _lt(
        "Endpoint unreachable: %(error)s Check this server's internet access (DNS, firewall, "
        "outgoing https) and, in test mode, the system parameter payment_mypos.sandbox_url if it "
        "is set."
    ),
    Failure.HTTP: _lt(
        "Endpoint error: %(error)s The URL may be wrong (check the system parameter "
        "payment_mypos.sandbox_url if it is set) or myPOS may be having an outage; try again "
        "later."
    ),
    Failure.GARBAGE: _lt(
        "Not a myPOS answer: %(error)s The endpoint %(url)s does not lead to myPOS's API (a proxy "
        "or a wrong URL?)."
    ),
    Failure.SIGNATURE: _lt(
        "The answer's signature does not verify: the configured myPOS certificate does not match "
        "the key myPOS signs with for key index %(index)s. Download the myPOS certificate of that "
        "key index from myPOS's dashboard (Online stores > your store > Keys), or import the "
        "configuration pack again."
    ),
}
# What a refusal by myPOS puts in question, by status; `sid`, `wallet`, `index` are the store's.
_STORE_PROBLEM = _lt(
    "Wallet or store problem: wallet number %(wallet)s, or store %(sid)s's setup in myPOS's "
    "dashboard."
)
STATUS_HEADLINES = {
    Status.E_SIGNATURE_FAILED: _lt(
        "Request signature refused: the store private key or the key index (%(index)s) does not "
        "match the public key uploaded to myPOS."
    ),
    Status.E_INVALID_SID: _lt("Invalid Store ID (SID): myPOS does not know store %(sid)s."),
    Status.E_INVALID_PARAMS: _STORE_PROBLEM,
    Status.E_INVALID_REFERER: _STORE_PROBLEM,
    Status.E_STORE_RESTRICTED: _STORE_PROBLEM,
    Status.E_IPC_ERROR: _lt(
        "myPOS refused the request: the key index (%(index)s) is not the store's latest one, or "
        "the credentials belong to the other environment."
    ),
}
# Statuses that often mean credentials of the other environment (API §1, §5).
ENVIRONMENT_STATUSES = {Status.E_IPC_ERROR, Status.E_INVALID_SID, Status.E_INVALID_PARAMS}


def is_sandbox_store(sid, wallet_number):
    """Tell whether a store is myPOS's public sandbox one, the only store known to be a test one."""
    return sid == ipc.const.SANDBOX_SID or wallet_number == ipc.const.SANDBOX_WALLET_NUMBER


def environment_warning(provider):
    """Return a warning when the credentials seem to belong to the other environment, or ''.

    myPOS refuses the sandbox's credentials on its live endpoint and the reverse, with errors 3 or
    5 (API §1, §5).
    """
    env = provider.env
    sandbox = is_sandbox_store(provider.mypos_sid, provider.mypos_wallet_number)
    if provider.state == 'enabled' and sandbox:
        return env._(
            "These are myPOS's public sandbox credentials, but the provider is Enabled (live): "
            "myPOS refuses them on its live endpoint, so customers could not pay. Import your "
            "store's live configuration pack, or set the provider to Test Mode."
        )
    if provider.state == 'test' and provider.mypos_sid and not sandbox:
        return env._(
            "These are not the credentials of myPOS's public sandbox store, but the provider is in "
            "Test Mode: if they are your live store's, myPOS refuses them on its sandbox. Set the "
            "provider to Enabled to use them, or clear them to test with the sandbox store."
        )
    return ''


def webhook_problems(provider):
    """Return what prevents myPOS from notifying this database's webhook in live use.

    myPOS posts notifications only to a public https URL (API §7 `URL_Notify`); a port other than
    the default one is not known to work.

    :return: The problems, as sentences (none if the URL is fine).
    :rtype: list
    """
    env = provider.env
    url = urls.url_join(provider.get_base_url(), MyPOSController._webhook_url)
    parts = urlsplit(url)
    problems = []
    if parts.scheme != 'https':
        problems.append(
            env._(
                "The webhook URL %(url)s is not https: myPOS notifies https URLs only. Serve Odoo "
                "over https and set the system parameter web.base.url to its https address.",
                url=url,
            )
        )
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port not in (None, 443) and not (parts.scheme == 'http' and port == 80):
        problems.append(
            env._(
                "The webhook URL %(url)s names port %(port)s: use the default https port (443), "
                "without a port in web.base.url.",
                url=url,
                port=port,
            )
        )
    host = (parts.hostname or '').lower()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        local = host in ('', 'localhost') or host.endswith(('.localhost', '.local'))
    else:
        local = not address.is_global
    if local:
        problems.append(
            env._(
                "The webhook URL %(url)s points to %(host)s, which myPOS cannot reach from the "
                "internet: set web.base.url to the public domain name of this database.",
                url=url,
                host=host or '?',
            )
        )
    return problems


def test_connection(provider):
    """Check our side of the setup, then call myPOS about a fresh dummy order.

    The call (`IPCGetTxnStatus`, API §4.8, §4.10) moves no money. It succeeds when myPOS answers
    with a signature that verifies with the configured myPOS certificate and a status that does
    not put the credentials in question: a success, a refusal about the dummy order, or a status
    that is not a code (`Failure.UNCLEAR`; the signature alone proves both keys), which the
    outcome quotes.

    :return: Whether the connection works, and the outcome for the administrator.
    :rtype: tuple(bool, str)
    """
    env = provider.env
    problems = []
    credentials = provider._mypos_get_credentials()
    try:
        ipc.check_credentials(credentials)
    except ipc.IPCError as error:
        problems.append(
            env._("Invalid credentials: %(error)s.", error=utils.explain_error(env, error))
        )
    if provider.state == 'enabled':
        if is_sandbox_store(credentials.sid, credentials.wallet_number):
            problems.append(
                env._("Sandbox credentials in live mode.") + " " + environment_warning(provider)
            )
        problems += webhook_problems(provider)
    if problems:  # Calling myPOS would only add noise, or use the wrong store.
        return False, "\n".join(problems)

    url = provider._mypos_get_api_url()
    order_id = ipc.make_order_id('odoo-connection-test', uuid.uuid4().hex[:8], int(time.time()))
    method = ipc.const.TXN_STATUS_METHOD
    status, status_msg = None, ''  # The dummy order's status, when not a success.
    try:
        provider._mypos_make_request(method, [('OrderID', order_id)])
    except ipc.RemoteError as error:
        # A signed answer that does not put the credentials in question proves the connection.
        proven = error.kind is Failure.UNCLEAR or (
            error.kind is Failure.STATUS
            and error.status_code not in ipc.const.CONNECTION_FAILURE_STATUSES
        )
        if not proven:
            return False, explain_connection_error(provider, error, credentials, url)
        status, status_msg = error.status, ipc.get_field(error.tree or [], 'StatusMsg')
    outcome = env._(
        "myPOS answered %(method)s at %(url)s and its signature verifies with the configured myPOS "
        "certificate: requests signed with key index %(index)s are accepted for store %(sid)s.",
        method=method,
        url=url,
        index=credentials.key_index,
        sid=credentials.sid,
    )
    if status:
        outcome += " " + env._(
            "(For the dummy order it answered: %(status)s)",
            status=utils.explain_status(env, status, status_msg),
        )
    if provider.state == 'test':
        outcome += " " + env._("Test mode: payments go to myPOS's sandbox and move no money.")
    return True, outcome


def explain_connection_error(provider, error, credentials, url):
    """Tell the administrator which part of the setup a failed call puts in question.

    :param ipc.RemoteError error: Why the call failed.
    :param ipc.Credentials credentials: The credentials the call was signed with.
    :param str url: The endpoint called.
    :return: The explanation: what is wrong, then what to do.
    :rtype: str
    """
    env = provider.env
    explained = utils.explain_error(env, error)
    if error.kind is Failure.UNCLEAR:  # Signed: its explanation says all there is to say.
        return explained
    hint = FAILURE_HINTS.get(error.kind)
    if hint is not None:
        params = {'error': explained, 'url': url, 'index': credentials.key_index}
        return utils.translate(env, hint, params)
    status = error.status_code
    if not utils.is_status(error.status):  # Unsigned, without a status.
        return env._(
            "myPOS's answer is not signed and gives no status, so it proves nothing: %(error)s",
            error=explained,
        )
    headline = STATUS_HEADLINES.get(status)
    store = {
        'index': credentials.key_index,
        'sid': credentials.sid,
        'wallet': credentials.wallet_number,
    }
    parts = [
        utils.translate(env, headline, store) if headline else env._("myPOS refused the request."),
        utils.explain_status(env, error.status, ipc.get_field(error.tree or [], 'StatusMsg')),
    ]
    if status in ENVIRONMENT_STATUSES:
        if provider.state == 'test' and credentials.sid != ipc.const.SANDBOX_SID:
            parts.append(
                env._(
                    "Live credentials in test mode? These are not myPOS's public sandbox "
                    "credentials; myPOS's sandbox refuses a live store's. Set the provider to "
                    "Enabled to use them, or clear them to test with the sandbox store."
                )
            )
        elif provider.state == 'enabled':
            parts.append(
                env._(
                    "Sandbox credentials in live mode? myPOS's live endpoint refuses sandbox "
                    "credentials: import your store's live configuration pack."
                )
            )
    if error.kind is Failure.UNSIGNED:
        parts.append(env._("(myPOS did not sign this answer, so it cannot be fully trusted.)"))
    return " ".join(parts)


def import_configuration_pack(provider, pack):
    """Decode and validate myPOS's Configuration Pack, then store its five credentials at once.

    :param str pack: The base64 text from myPOS's dashboard (API §6.3).
    :raise ValidationError: If the pack is malformed; nothing is changed then.
    """
    env = provider.env
    try:
        credentials = ipc.decode_configuration_pack(pack)
    except ipc.IPCError as error:
        raise ValidationError(
            env._(
                "myPOS: The configuration pack cannot be imported: %(reason)s. Copy the whole pack "
                "again from myPOS's dashboard (Online stores > your store > Keys). Nothing was "
                "changed.",
                reason=utils.explain_error(env, error),
            )
        ) from None
    provider.write(
        {
            'mypos_sid': credentials.sid,
            'mypos_wallet_number': credentials.wallet_number,
            'mypos_key_index': credentials.key_index,
            'mypos_private_key_pem': credentials.private_key,
            'mypos_public_certificate': credentials.certificate,
        }
    )
    _logger.info(
        "myPOS configuration pack imported on provider %s by user %s (SID %s, key index %s)",
        provider.id,
        env.uid,
        credentials.sid,
        credentials.key_index,
    )
    provider.message_post(
        body=env._(
            "A myPOS configuration pack was imported by %(user)s: the store credentials were "
            "replaced.",
            user=env.user.name,
        )
    )


def open_transactions(provider):
    """Return the myPOS transactions of a provider whose payment may still be under way."""
    return (
        provider.env['payment.transaction']
        .sudo()
        .search([('provider_id', '=', provider.id), ('state', 'in', ('draft', 'pending'))])
    )


def reset_values(provider):
    """The values that forget the store's credentials, keeping what verifies its notifications:
    myPOS's certificate and the store's ID (in `mypos_disconnected_sid`)."""
    return {
        'mypos_sid': False,
        'mypos_wallet_number': False,
        'mypos_key_index': 0,
        'mypos_private_key_pem': False,
        'mypos_disconnected_sid': provider.mypos_sid or provider.mypos_disconnected_sid,
        'mypos_last_test_date': False,
        'mypos_last_test_result': False,
        'mypos_last_test_success': False,
    }


def disconnect(provider):
    """Forget the store's credentials and disable the provider, keeping myPOS's certificate.

    The certificate and the store's ID (kept aside in `mypos_disconnected_sid`) still verify the
    notifications of the payments under way; nothing can be signed any more.
    """
    env = provider.env
    open_count = len(open_transactions(provider))
    provider.write({'state': 'disabled', **provider._get_reset_values()})
    _logger.info(
        "myPOS account disconnected from provider %s by user %s (%s open transactions)",
        provider.id,
        env.uid,
        open_count,
    )
    provider.message_post(
        body=env._(
            "myPOS account disconnected by %(user)s on %(date)s: Store ID, wallet number, key "
            "index and private key cleared, provider disabled. %(count)s transaction(s) were still "
            "draft or pending; their notifications are still verified with the kept myPOS "
            "certificate and applied.",
            user=env.user.name,
            date=format_datetime(env, fields.Datetime.now()),
            count=open_count,
        )
    )
