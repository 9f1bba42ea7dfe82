"""Turning a key's stored text into key bytes: the one definition the replicator and operator share.

It depends on nothing but the policy model, so the operator can check keys it reads from Vault
(and refuse a bad one with ``Ready=False``) without importing the masking package or hvac.
Messages name the key and where it came from, never its bytes.
"""

from __future__ import annotations

import base64
import binascii

from cdc_replicator.contract.policy import KeyEncoding

MIN_KEY_BYTES = 16
"""HMAC-SHA256 keys and salts shorter than this are guessable; refuse them."""


class InvalidKeyError(ValueError):
    """The stored value is not a usable key; the message is safe to show."""


def decode_key(text: object, encoding: KeyEncoding, where: str) -> bytes:
    """The key bytes of a stored value; errors say what is wrong and ``where``, never the value."""
    if not isinstance(text, str):
        raise InvalidKeyError(f"{where}: the field is not a string")
    try:
        if encoding == KeyEncoding.BASE64:
            secret = base64.b64decode(text, validate=True)
        elif encoding == KeyEncoding.HEX:
            secret = bytes.fromhex(text)
        else:
            secret = text.encode()
    except (binascii.Error, ValueError):
        raise InvalidKeyError(f"{where}: the field is not valid {encoding.value}") from None
    if len(secret) < MIN_KEY_BYTES:
        raise InvalidKeyError(f"{where}: the key is {len(secret)} bytes, at least {MIN_KEY_BYTES} are needed")
    return secret
