"""The operator decodes masking keys exactly as the replicator's masking module does."""

from __future__ import annotations

import pytest
from cdc_operator import masking_keys
from cdc_replicator.masking import keys as replicator_keys
from cdc_replicator.masking.policy import KeyEncoding

pytestmark = pytest.mark.unit

CASES = [
    ("MDEyMzQ1Njc4OWFiY2RlZg==", KeyEncoding.BASE64),
    ("not base64!", KeyEncoding.BASE64),
    ("c2hvcnQ=", KeyEncoding.BASE64),
    ("00112233445566778899aabbccddeeff", KeyEncoding.HEX),
    ("0011zz", KeyEncoding.HEX),
    ("a utf8 key of some length", KeyEncoding.UTF8),
    ("short", KeyEncoding.UTF8),
]


@pytest.mark.parametrize(("text", "encoding"), CASES)
def test_same_bytes_and_same_refusals_as_the_replicator(text: str, encoding: KeyEncoding) -> None:
    try:
        expected: bytes | str = replicator_keys.decode_key(text, encoding, "k")
    except replicator_keys.KeyLoadError as exc:
        expected = str(exc)
    try:
        got: bytes | str = masking_keys.decode(text, encoding, "k")
    except masking_keys.InvalidKeyError as exc:
        got = str(exc)
    assert got == expected
    assert masking_keys.MIN_KEY_BYTES == replicator_keys.MIN_KEY_BYTES
