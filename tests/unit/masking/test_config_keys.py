"""The config's masking keys: from environment variables (the operator's route) or straight from Vault."""

from __future__ import annotations

import pytest
from cdc_replicator.contract import config as rc
from cdc_replicator.masking.actions import KeyMaterial
from cdc_replicator.masking.keys import KeySnapshot, MergedKeys, StaticKeys

from tests.unit.operator.test_replicator_config import MINIMAL

pytestmark = pytest.mark.unit

POLICY = """
masking:
  policies:
    - name: pii
      rules:
        - {name: email, classification: PII, match: {column: email}, action: hmac, keyRef: tokens}
        - {name: ssn, classification: PII, match: {column: ssn}, action: hash, saltRef: salt}
"""

VAULT = """
  vault:
    address: http://127.0.0.1:8200
    auth: {method: token, tokenEnv: VAULT_TOKEN}
    refreshSeconds: 30
    keys:
      - {name: tokens, path: cdc/masking/tokens}
      - {name: salt, mount: kv, path: /cdc/masking/salt/, field: salt, encoding: utf8}
"""


def test_keys_from_vault_satisfy_the_rules_and_round_trip() -> None:
    cfg = rc.parse(MINIMAL + POLICY + VAULT)
    vault = cfg.masking.vault
    assert vault is not None
    assert vault.refresh_seconds == 30
    assert vault.auth.method == "token"
    assert [(k.name, k.mount, k.path, k.field) for k in vault.keys] == [
        ("tokens", "secret", "cdc/masking/tokens", "key"),
        ("salt", "kv", "cdc/masking/salt", "salt"),
    ]
    assert rc.parse(cfg.to_yaml()) == cfg


def test_environment_and_vault_keys_mix_but_never_share_a_name() -> None:
    mixed = VAULT.replace("      - {name: tokens, path: cdc/masking/tokens}\n", "")
    cfg = rc.parse(MINIMAL + POLICY + "  keys:\n    - {name: tokens, env: CDC_MASK_KEY_TOKENS}\n" + mixed)
    assert cfg.masking.key_names() == ["tokens", "salt"]
    with pytest.raises(rc.ConfigError, match="configured twice: tokens"):
        rc.parse(MINIMAL + POLICY + "  keys:\n    - {name: tokens, env: CDC_MASK_KEY_TOKENS}\n" + VAULT)
    with pytest.raises(rc.ConfigError, match="not configured: tokens"):
        rc.parse(MINIMAL + POLICY + mixed)


def test_vault_section_is_strict() -> None:
    with pytest.raises(rc.ConfigError, match=r"masking\.vault\.refreshSecond"):
        rc.parse(MINIMAL + POLICY + VAULT.replace("refreshSeconds", "refreshSecond"))
    with pytest.raises(rc.ConfigError, match=r"masking\.vault\.keys"):
        rc.parse(MINIMAL + POLICY + VAULT.split("    keys:", maxsplit=1)[0] + "    keys: []\n")


def test_merged_keys_change_generation_only_when_a_provider_does() -> None:
    class Rotating(StaticKeys):
        def rotate(self, version: int) -> None:
            self._snapshot = KeySnapshot(self._snapshot.generation + 1, {"b": KeyMaterial(version, b"c" * 16)})

    rotating = Rotating({"b": KeyMaterial(1, b"b" * 16)})
    merged = MergedKeys(StaticKeys({"a": KeyMaterial(4, b"a" * 16)}), rotating)
    first = merged.snapshot()
    assert {n: m.version for n, m in first.keys.items()} == {"a": 4, "b": 1}
    assert merged.snapshot() is first
    rotating.rotate(2)
    second = merged.snapshot()
    assert second.generation > first.generation
    assert {n: m.version for n, m in second.keys.items()} == {"a": 4, "b": 2}
