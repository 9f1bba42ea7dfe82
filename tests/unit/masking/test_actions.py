"""The action functions and key decoding, checked against the standard library's own HMAC."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from cdc_replicator.contract.policy import KeyEncoding
from cdc_replicator.cql.types import parse_type
from cdc_replicator.masking.actions import KeyMaterial, encoder_for, hash_fn, hmac_fn, partial_fn
from cdc_replicator.masking.keys import KeyLoadError, decode_key, keys_from_environment

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
    assert decode_key(text, KeyEncoding(encoding), "k") == expected


def test_bad_keys_are_refused_without_showing_them() -> None:
    with pytest.raises(KeyLoadError, match=r"^key k: the field is not valid hex$") as bad:
        decode_key("zz-secret-zz", KeyEncoding.HEX, "key k")
    assert "zz-secret-zz" not in str(bad.value)
    with pytest.raises(KeyLoadError, match="the field is not a string"):
        decode_key(12345, KeyEncoding.HEX, "key k")


def test_keys_from_the_environment_carry_their_version() -> None:
    environ = {
        "MASK_TOKENS": base64.b64encode(b"t" * 32).decode(),
        "MASK_TOKENS_VERSION": "4",
        "MASK_SALT": base64.b64encode(b"s" * 32).decode(),
    }
    keys = keys_from_environment({"tokens": "MASK_TOKENS"}, environ=environ).snapshot().keys
    assert keys["tokens"] == KeyMaterial(4, b"t" * 32)
    with pytest.raises(KeyLoadError) as failed:
        keys_from_environment({"salt": "MASK_SALT", "gone": "MASK_GONE"}, environ=environ)
    assert str(failed.value) == (
        "masking key 'salt' from $MASK_SALT: $MASK_SALT_VERSION must hold the key's version (a number); "
        "masking key 'gone' from $MASK_GONE: the variable is not set"
    )
    assert environ["MASK_SALT"] not in str(failed.value)
