"""The replicator config contract: strict, with errors that name the offending key."""

from __future__ import annotations

import pytest
from cdc_replicator.contract import config as rc

pytestmark = pytest.mark.unit

MINIMAL = """
pipeline: team-a/shop
source:
  nodeName: node1
  cdcRawPath: /var/lib/cassandra/cdc_raw
  contactPoints: [cassandra:9042]
  keyspaces: [shop]
destinations:
  - name: warehouse
    type: postgres
    endpoint: pg:5432
    database: dw
    credentials: {usernameEnv: PG_USER, passwordEnv: PG_PASSWORD}
checkpoint: {path: /var/run/cdc/checkpoint.json}
"""


def test_minimal_config_gets_defaults_and_round_trips() -> None:
    cfg = rc.parse(MINIMAL)
    assert cfg.tuning.batch_size == 10_000
    assert cfg.source.port == 9042
    assert rc.parse(cfg.to_yaml()) == cfg


def test_unknown_keys_are_errors_naming_the_key() -> None:
    with pytest.raises(rc.ConfigError, match=r"destinations\.0\.pasword"):
        rc.parse(MINIMAL.replace("database: dw", "database: dw\n    pasword: x"))


def test_bad_destination_type_and_missing_env() -> None:
    with pytest.raises(rc.ConfigError, match=r"destinations\.0\.type"):
        rc.parse(MINIMAL.replace("type: postgres", "type: mysql"))
    creds = rc.parse(MINIMAL).destinations[0].credentials
    assert creds is not None
    assert creds.resolve({"PG_USER": "u", "PG_PASSWORD": "p"}) == ("u", "p")
    with pytest.raises(rc.ConfigError, match="PG_PASSWORD"):
        creds.resolve({"PG_USER": "u"})


def test_load_reports_missing_file() -> None:
    with pytest.raises(rc.ConfigError, match="cannot read"):
        rc.load("/nonexistent/replicator.yaml")


def test_masking_keys_named_by_rules_must_be_configured() -> None:
    policy = """
masking:
  policies:
    - name: pii
      rules:
        - name: email
          classification: PII
          match: {keyspace: shop, table: customers, column: email}
          action: hmac
          keyRef: tokens
"""
    with pytest.raises(rc.ConfigError, match="not configured: tokens"):
        rc.parse(MINIMAL + policy)
    cfg = rc.parse(MINIMAL + policy + "  keys:\n    - {name: tokens, env: CDC_MASK_KEY_TOKENS}\n")
    assert cfg.masking.policies[0].rules[0].key_ref == "tokens"
