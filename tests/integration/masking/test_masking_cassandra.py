"""Masking events decoded from the real Cassandra's commitlog, with keys from the real OpenBao.

PII goes in through CQL (partition and clustering keys, simple columns, a set, a map, a
non-frozen UDT, a frozen list, deletions); the masked events must hold none of the raw values,
and every token must equal one computed here independently with the standard library.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cdc_replicator.contract.policy import KeySource, MaskingPolicySpec
from cdc_replicator.events import Operation
from cdc_replicator.masking.apply import range_survives_masking
from cdc_replicator.masking.audit import MaskingMetrics
from cdc_replicator.masking.keys import VaultKeyStore, VaultSettings
from cdc_replicator.masking.masker import Masker
from cdc_replicator.masking.plans import destination_type
from cdc_replicator.masking.rules import PolicyError
from cdc_replicator.schema.registry import SchemaRegistry
from prometheus_client import generate_latest

from tests.integration.commitlog import fixtures
from tests.integration.commitlog.helpers import only, run, start_position, wait_for_events
from tests.integration.masking.conftest import KeyWriter

pytestmark = pytest.mark.integration
cdc_raw, keyspace, registry = fixtures.cdc_raw, fixtures.keyspace, fixtures.registry

HMAC_KEY = b"patient-token-key-0123456789abcdef"
SALT = b"clinic-salt-0123456789"
RAW = {
    "patient_id": "MRN-0042-7731",
    "visit_day": "2026-11-26 oncology",
    "ssn": "078-05-1120",
    "phone": "+1-202-555-0143",
    "diagnosis": "C50.912 breast cancer",
    "email1": "grace.hopper@example.org",
    "email2": "g.hopper@navy.example.mil",
    "attr_key": "insurer-member-id",
    "attr_value": "AETNA-W123456789",
    "home_email": "grace@home.example",
    "home_phone": "+1-202-555-0199",
    "history": "prior mastectomy 2019",
    "removed_key": "emergency-contact-name",
}


def rule(name: str, column: str, action: str, path: list[str] | None = None, **params: Any) -> dict[str, Any]:
    return {
        "name": name,
        "classification": "PHI",
        "match": {"table": "patients", "column": column, "path": path or []},
        "action": action,
        **params,
    }


SPEC = MaskingPolicySpec.model_validate(
    {
        "rules": [
            rule("patient", "patient_id", "hmac", keyRef="tokens"),
            rule("visit", "visit_day", "hmac", keyRef="tokens"),
            rule("ssn", "ssn", "hash", saltRef="salt"),
            rule("phone", "phone", "partial", keepLast=4),
            rule("diagnosis", "diagnosis", "redact"),
            rule("emails", "emails", "hmac", ["element"], keyRef="tokens"),
            rule("attr-keys", "attrs", "hmac", ["key"], keyRef="tokens"),
            rule("attr-values", "attrs", "redact", ["value"]),
            rule("home-email", "home", "hash", ["email"], saltRef="salt"),
            rule("home-phone", "home", "partial", ["phone"], keepLast=2),
            rule("history", "history", "hmac", ["element"], keyRef="tokens"),
        ]
    }
)


def token(text: str) -> str:
    return "v1:" + hmac.new(HMAC_KEY, text.encode(), hashlib.sha256).hexdigest()


def salted(text: str) -> str:
    return hashlib.sha256(SALT + text.encode()).hexdigest()


def test_events_from_the_real_commitlog_leave_masked(
    cql_session: Any,
    keyspace: str,
    cdc_raw: Path,
    registry: SchemaRegistry,
    lab: dict[str, Any],
    write_key: KeyWriter,
    token_env: Callable[[str], str],
    metrics: MaskingMetrics,
    caplog: pytest.LogCaptureFixture,
) -> None:
    run(cql_session, f"CREATE TYPE {keyspace}.contact (email text, phone text)")
    run(
        cql_session,
        f"CREATE TABLE {keyspace}.patients (patient_id text, visit_day text, ssn text, phone text, "
        "diagnosis text, age int, emails set<text>, attrs map<text, text>, home contact, "
        "history frozen<list<text>>, PRIMARY KEY (patient_id, visit_day)) WITH cdc = true",
    )
    after = start_position(cdc_raw)
    t, r = f"{keyspace}.patients", RAW
    key = f"patient_id = '{r['patient_id']}' AND visit_day = '{r['visit_day']}'"
    run(
        cql_session,
        f"INSERT INTO {t} (patient_id, visit_day, ssn, phone, diagnosis, age, emails, attrs, home, history) VALUES "
        f"('{r['patient_id']}', '{r['visit_day']}', '{r['ssn']}', '{r['phone']}', '{r['diagnosis']}', 83, "
        f"{{'{r['email1']}'}}, {{'{r['attr_key']}': '{r['attr_value']}', '{r['removed_key']}': 'x'}}, "
        f"{{email: '{r['home_email']}', phone: '{r['home_phone']}'}}, ['{r['history']}'])",
    )
    run(cql_session, f"UPDATE {t} SET emails = emails + {{'{r['email2']}'}} WHERE {key}")
    run(cql_session, f"DELETE attrs['{r['removed_key']}'] FROM {t} WHERE {key}")
    run(cql_session, f"DELETE FROM {t} WHERE {key}")
    run(cql_session, f"DELETE FROM {t} WHERE patient_id = '{r['patient_id']}' AND visit_day > 'a'")
    registry.refresh(force=True)
    events = only(
        wait_for_events(cdc_raw, registry, keyspace, after, lambda e: len(only(e, "patients")) >= 5), "patients"
    )
    assert len(events) == 5
    # The raw values really are in the decoded events: the test would prove nothing otherwise.
    for name, raw in RAW.items():
        assert raw in repr(events), f"raw {name} is not in the decoded events"

    settings = VaultSettings.model_validate(
        {"address": lab["openbao"]["addr"], "auth": {"method": "token", "tokenEnv": token_env(lab["openbao"]["token"])}}
    )
    sources = [
        KeySource(name="tokens", path=write_key("tokens", HMAC_KEY)),
        KeySource(name="salt", path=write_key("salt", SALT)),
    ]
    keys = VaultKeyStore(settings, sources, metrics)
    keys.load()
    masker = Masker(SPEC, keys, metrics)
    tables = [table for table in registry.tables() if table.keyspace == keyspace]
    masker.check(tables)
    with caplog.at_level(logging.DEBUG):
        masked = masker.mask_batch(events, lambda e: registry.find(e.keyspace, e.table))

    outputs = [repr(masked), caplog.text, generate_latest(metrics.registry).decode()]
    for name, raw in RAW.items():
        for output in outputs:
            assert raw not in output, f"raw {name} leaked"

    insert, append, remove, row_delete, range_delete = masked
    assert insert.partition_key == {"patient_id": token(r["patient_id"])}
    assert insert.clustering == {"visit_day": token(r["visit_day"])}
    assert insert.cells["ssn"].value == salted(r["ssn"])
    assert insert.cells["phone"].value == "*" * (len(r["phone"]) - 4) + r["phone"][-4:]
    assert insert.cells["diagnosis"].value == "[REDACTED]"
    assert insert.cells["age"].value == 83
    assert insert.cells["history"].value == (token(r["history"]),)
    assert [c.path for c in insert.complex["emails"].cells] == [token(r["email1"])]
    assert sorted((c.path, c.value) for c in insert.complex["attrs"].cells) == sorted(
        [(token(r["attr_key"]), "[REDACTED]"), (token(r["removed_key"]), "[REDACTED]")]
    )
    assert [(c.path, c.value) for c in insert.complex["home"].cells] == [
        ("email", salted(r["home_email"])),
        ("phone", "*" * (len(r["home_phone"]) - 2) + r["home_phone"][-2:]),
    ]
    assert [c.path for c in append.complex["emails"].cells] == [token(r["email2"])]
    (tombstone,) = remove.complex["attrs"].cells
    assert (tombstone.path, tombstone.deleted) == (token(r["removed_key"]), True)
    # Same key, same tokens: the deletion lands on the row the insert made.
    assert row_delete.operation is Operation.DELETE_ROW
    assert (row_delete.partition_key, row_delete.clustering) == (insert.partition_key, insert.clustering)
    assert range_delete.operation is Operation.DELETE_RANGE
    patients = registry.find(keyspace, "patients")
    assert patients is not None
    plan = masker.plan(patients)
    assert not range_survives_masking(plan, range_delete)  # `visit_day > 'a'` needs order; tokens have none

    assert {c: str(destination_type(plan, c)) for c in ("patient_id", "ssn", "age", "attrs", "history", "home")} == {
        "patient_id": "text",
        "ssn": "text",
        "age": "int",
        "attrs": "map<text, text>",
        "history": "frozen<list<text>>",
        "home": "contact",
    }

    bad = MaskingPolicySpec.model_validate({"rules": [rule("age", "age", "partial", keepLast=1)]})
    with pytest.raises(PolicyError, match=rf"rule 'age' \(partial\) cannot mask {keyspace}\.patients\.age of type int"):
        Masker(bad, keys, metrics).check(tables)
