"""The action functions and key decoding, checked against the standard library's own HMAC."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from cdc_replicator.masking.actions import KeyMaterial, encoder_for, hash_fn, hmac_fn, partial_fn
from cdc_replicator.masking.keys import KeyLoadError, decode_key
from cdc_replicator.masking.policy import KeySource
from cdc_replicator.types.cql import parse_type

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("key_length", [16, 32, 64, 65, 200])
def test_hmac_equals_the_standard_construction_for_any_key_length(key_length: int) -> None:
    key = bytes(range(256))[:key_length]
    mask = hmac_fn(KeyMaterial(7, key), encoder_for(parse_type("text")))
    for value in ["", "a", "ünïcødé", "x" * 1000]:
        assert mask(value) == "v7:" + hmac.new(key, value.encode(), hashlib.sha256).hexdigest()
    assert mask(None) is None


def test_hash_is_salt_then_value() -> None:
    mask = hash_fn(KeyMaterial(1, b"s" * 16), encoder_for(parse_type("int")))
    assert mask(12) == hashlib.sha256(b"s" * 16 + b"12").hexdigest()
    assert mask(12) == mask(12)  # the salted state is copied, not consumed


def test_partial_keeps_the_length() -> None:
    mask = partial_fn(0, "x")
    assert mask("secret") == "xxxxxx"


def test_key_material_hides_its_bytes() -> None:
    material = KeyMaterial(3, b"super-secret-bytes")
    assert "super-secret" not in repr(material)
    assert "super-secret" not in str(material)
    assert "version=3" in repr(material)


@pytest.mark.parametrize(
    ("encoding", "text", "expected"),
    [
        ("base64", base64.b64encode(b"0123456789abcdef").decode(), b"0123456789abcdef"),
        ("hex", (b"0123456789abcdef").hex(), b"0123456789abcdef"),
        ("utf8", "0123456789abcdef", b"0123456789abcdef"),
    ],
)
def test_key_encodings(encoding: str, text: str, expected: bytes) -> None:
    source = KeySource.model_validate({"name": "k", "path": "p", "encoding": encoding})
    assert decode_key(source, text) == expected


def test_bad_keys_are_refused_without_showing_them() -> None:
    source = KeySource.model_validate({"name": "k", "path": "cdc/k", "encoding": "hex"})
    with pytest.raises(
        KeyLoadError, match=r"masking key 'k' at secret/cdc/k field 'key': the field is not valid hex"
    ) as bad:
        decode_key(source, "zz-secret-zz")
    assert "zz-secret-zz" not in str(bad.value)
    with pytest.raises(KeyLoadError, match="the field is not a string"):
        decode_key(source, 12345)
