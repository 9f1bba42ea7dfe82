"""Key text to key bytes: one codec for the replicator and the operator; refusals never show the key."""

from __future__ import annotations

import pytest
from cdc_replicator.contract import keycodec
from cdc_replicator.contract.policy import KeyEncoding
from cdc_replicator.masking import keys

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "encoding", "expected"),
    [
        ("MDEyMzQ1Njc4OWFiY2RlZg==", KeyEncoding.BASE64, b"0123456789abcdef"),
        ("00112233445566778899aabbccddeeff", KeyEncoding.HEX, bytes.fromhex("00112233445566778899aabbccddeeff")),
        ("a utf8 key of some length", KeyEncoding.UTF8, b"a utf8 key of some length"),
    ],
)
def test_decodes_each_encoding(text: str, encoding: KeyEncoding, expected: bytes) -> None:
    assert keycodec.decode_key(text, encoding, "k") == expected


@pytest.mark.parametrize(
    ("text", "encoding", "reason"),
    [
        ("not base64!", KeyEncoding.BASE64, "k: the field is not valid base64"),
        ("c2hvcnQ=", KeyEncoding.BASE64, "k: the key is 5 bytes, at least 16 are needed"),
        ("0011zz", KeyEncoding.HEX, "k: the field is not valid hex"),
        ("short", KeyEncoding.UTF8, "k: the key is 5 bytes, at least 16 are needed"),
        (42, KeyEncoding.UTF8, "k: the field is not a string"),
    ],
)
def test_refusals_name_the_place_never_the_value(text: object, encoding: KeyEncoding, reason: str) -> None:
    with pytest.raises(keycodec.InvalidKeyError) as refused:
        keycodec.decode_key(text, encoding, "k")
    assert str(refused.value) == reason
    with pytest.raises(keys.KeyLoadError) as refused_by_loader:
        keys.decode_key(text, encoding, "k")
    assert str(refused_by_loader.value) == reason
