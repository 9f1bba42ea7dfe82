"""Decoding masking keys read from Vault, as the replicator would, without importing its masking engine.

``cdc_replicator.masking.keys.decode_key`` is the reference; importing it would pull the masking
engine and cassandra-driver into the operator image. This mirrors it (a unit test compares the two
over the same inputs) so a bad key turns the pipeline ``Ready=False`` with ``MaskingKeyInvalid``
instead of a replicator refusing to start. Messages name the key and the path, never key bytes.
"""

from __future__ import annotations

import base64
import binascii

from cdc_replicator.masking.policy import KeyEncoding

MIN_KEY_BYTES = 16  # as cdc_replicator.masking.keys.MIN_KEY_BYTES


class InvalidKeyError(ValueError):
    """The stored value is not a usable key; the message is safe to show."""


def decode(text: str, encoding: KeyEncoding, where: str) -> bytes:
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
