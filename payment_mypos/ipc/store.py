# Part of payment_mypos. License LGPL-3.
"""The store's credentials and myPOS's configuration pack (docs/mypos-protocol.md §6.3).

https://developers.mypos.com/apis/checkout-api/checkout-getting-started/authentication
"""

import base64
import binascii
import json
import re
from dataclasses import dataclass

from .errors import InvalidKey, IPCError, MalformedMessage
from .keys import load_private_key, load_public_key, normalize_pem


@dataclass(frozen=True)
class Credentials:
    """The five settings that identify a store: SID, wallet, key index and the two keys."""

    sid: str
    wallet_number: str
    key_index: int
    private_key: str  # The store's RSA private key, PEM.
    certificate: str  # myPOS's certificate or bare public key, PEM.


def decode_configuration_pack(pack):
    """Decode myPOS's Configuration Pack into :class:`Credentials`.

    :param str pack: The base64 text from myPOS's dashboard.
    :rtype: Credentials
    :raise MalformedMessage: If it is not the base64 of a JSON object with valid `sid`, `cn`,
                             `pk`, `pc` and `idx`.
    """
    try:
        data = json.loads(base64.b64decode(re.sub(r'\s+', '', pack or ''), validate=True))
    except (binascii.Error, ValueError):
        raise MalformedMessage(
            "the configuration pack is not base64-encoded JSON", code='pack_not_base64_json'
        ) from None
    if not isinstance(data, dict):
        raise MalformedMessage(
            "the configuration pack is not a JSON object", code='pack_not_object'
        )
    missing = [key for key in ('sid', 'cn', 'pk', 'pc', 'idx') if not data.get(key)]
    if missing:
        raise MalformedMessage(
            f"the configuration pack lacks {', '.join(missing)}",
            code='pack_missing_keys',
            keys=', '.join(missing),
        )
    unknown = set(data) - {'sid', 'cn', 'pk', 'pc', 'idx', 'appid', 'pid'}
    if unknown:
        raise MalformedMessage(
            f"the configuration pack has unknown keys: {', '.join(sorted(unknown))}",
            code='pack_unknown_keys',
            keys=', '.join(sorted(unknown)),
        )
    try:
        key_index = int(data['idx'])
    except (TypeError, ValueError):
        raise MalformedMessage(
            "the configuration pack's key index is not a number", code='pack_key_index'
        ) from None
    pems = {}
    for key, name in (('pk', "store private key"), ('pc', "myPOS certificate")):
        try:
            pems[key] = normalize_pem(str(data[key]))
        except InvalidKey as error:
            raise MalformedMessage(
                f"the configuration pack's {name} ({key}) is not valid: {error}",
                code=f'pack_{key}_invalid',
                reason=error,
            ) from None
    credentials = Credentials(
        sid=str(data['sid']),
        wallet_number=str(data['cn']),
        key_index=key_index,
        private_key=pems['pk'],
        certificate=pems['pc'],
    )
    check_credentials(credentials)
    return credentials


def check_credentials(credentials):
    """Validate the form of each credential; the message names the wrong one.

    :raise IPCError: On the first invalid credential.
    """
    if not re.fullmatch(r'\d{1,15}', credentials.sid or ''):
        raise IPCError("the Store ID (SID) must be digits only (at most 15)", code='sid_format')
    if not re.fullmatch(r'\d{1,11}', credentials.wallet_number or ''):
        raise IPCError(
            "the wallet number (client number) must be digits only (at most 11)",
            code='wallet_format',
        )
    if not 1 <= int(credentials.key_index or 0) <= 99:
        raise IPCError("the key index must be a whole number from 1 to 99", code='key_index_range')
    try:
        load_private_key(credentials.private_key)
    except InvalidKey as error:
        raise IPCError(
            f"the store private key is not valid: {error}",
            code='private_key_invalid',
            reason=error,
        ) from None
    try:
        load_public_key(credentials.certificate)
    except InvalidKey as error:
        raise IPCError(
            f"the myPOS certificate is not valid: {error}",
            code='certificate_invalid',
            reason=error,
        ) from None
