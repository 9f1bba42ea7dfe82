"""Audit: counters per rule and column, one log line per batch, and never a raw value anywhere."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from cdc_replicator.events import Cell
from cdc_replicator.masking.actions import KeyMaterial
from cdc_replicator.masking.audit import MaskingMetrics
from cdc_replicator.masking.keys import KeySnapshot, StaticKeys
from cdc_replicator.masking.masker import Masker, merge_policies
from cdc_replicator.masking.plans import MaskingError
from cdc_replicator.masking.rules import PolicyError
from prometheus_client import CollectorRegistry, generate_latest

from tests.unit.masking.support import make_event, make_table, policy

pytestmark = pytest.mark.unit

PATIENTS = make_table(
    "clinic",
    "patients",
    [("patient_id", "text")],
    [],
    [("email", "text"), ("ssn", "text"), ("phone", "text"), ("diagnosis", "text"), ("notes", "map<text, text>")],
)
SPEC = policy(
    {"name": "pid", "classification": "PHI", "match": {"column": "patient_id"}, "action": "hmac", "keyRef": "tokens"},
    {"name": "email", "classification": "PII", "match": {"column": "email"}, "action": "hmac", "keyRef": "tokens"},
    {"name": "ssn", "classification": "PII", "match": {"column": "ssn"}, "action": "hash", "saltRef": "pepper"},
    {"name": "phone", "classification": "PII", "match": {"column": "phone"}, "action": "partial", "keepLast": 2},
    {"name": "dx", "classification": "PHI", "match": {"column": "diagnosis"}, "action": "redact"},
    {"name": "notes", "classification": "PHI", "match": {"column": "notes", "path": ["value"]}, "action": "null"},
)
RAW = {
    "patient_id": "MRN-0042-7731",
    "email": "grace.hopper@example.org",
    "ssn": "078-05-1120",
    "phone": "+1-202-555-0143",
    "diagnosis": "J45.909 asthma",
    "note": "lives alone, door code 4417",
}


def patient_events() -> list[Any]:
    return [
        make_event(
            PATIENTS,
            {"patient_id": RAW["patient_id"]},
            cells={"email": RAW["email"], "ssn": RAW["ssn"], "phone": RAW["phone"], "diagnosis": RAW["diagnosis"]},
            complex_cells={"notes": [Cell(RAW["note"], 5, path="home")]},
        ),
        make_event(PATIENTS, {"patient_id": RAW["patient_id"]}, cells={"email": RAW["email"]}),
    ]


@pytest.fixture
def masker(keys: dict[str, KeyMaterial]) -> Masker:
    return Masker(SPEC, StaticKeys(keys), MaskingMetrics(CollectorRegistry()))


def test_counters_per_rule_and_column_and_one_log_line_per_batch(
    masker: Masker, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="cdc_replicator.masking.audit"):
        masker.mask_batch(patient_events(), lambda _e: PATIENTS)
    (line,) = [r for r in caplog.records if r.name == "cdc_replicator.masking.audit"]
    record = json.loads(line.getMessage())
    assert record["event"] == "masking.batch"
    assert record["events"] == 2
    assert {(f["field"], f["rule"], f["action"], f["classification"], f["count"]) for f in record["masked"]} == {
        ("patient_id", "pid", "hmac", "PHI", 2),
        ("email", "email", "hmac", "PII", 2),
        ("ssn", "ssn", "hash", "PII", 1),
        ("phone", "phone", "partial", "PII", 1),
        ("diagnosis", "dx", "redact", "PHI", 1),
        ("notes.value", "notes", "null", "PHI", 1),
    }
    assert line.audit == record  # type: ignore[attr-defined]
    sample = masker.metrics.registry.get_sample_value(
        "cdc_masking_masked_values_total",
        {
            "rule": "email",
            "classification": "PII",
            "action": "hmac",
            "keyspace": "clinic",
            "table": "patients",
            "column": "email",
        },
    )
    assert sample == 2


def test_raw_values_never_appear_in_events_logs_or_metrics(masker: Masker, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        masked = masker.mask_batch(patient_events(), lambda _e: PATIENTS)
        masker.mask_batch(patient_events(), lambda _e: PATIENTS)
    outputs = [
        caplog.text,
        *(r.getMessage() for r in caplog.records),
        *(json.dumps(getattr(r, "audit", None)) for r in caplog.records),
        generate_latest(masker.metrics.registry).decode(),
        repr(masked),
        repr(masker.keys.snapshot()),
    ]
    for output in outputs:
        for name, raw in RAW.items():
            assert raw not in output, f"raw {name} leaked"
    # The phone keeps its last two characters by design; nothing longer of it survives.
    assert masked[0].cells["phone"].value == "*************43"
    for secret in (b"k" * 32, b"salt-of-the-earth"):
        assert all(secret.decode() not in output for output in outputs)


def test_unknown_table_or_mismatched_shape_is_refused_not_passed_through(masker: Masker) -> None:
    with pytest.raises(MaskingError, match=r"no schema for clinic\.patients"):
        masker.mask_batch(patient_events(), lambda _e: None)
    # An event whose `notes` arrives as a simple cell although the schema says multi-cell.
    odd = make_event(PATIENTS, {"patient_id": "p"}, cells={"notes": "free text"})
    with pytest.raises(MaskingError, match="'notes' arrived as a simple cell"):
        masker.mask_batch([odd], lambda _e: PATIENTS)


def test_plans_are_recompiled_after_a_key_rotation_or_schema_change(keys: dict[str, KeyMaterial]) -> None:
    class Rotating:
        def __init__(self) -> None:
            self.current = StaticKeys(keys).snapshot()

        def snapshot(self) -> KeySnapshot:
            return self.current

    provider = Rotating()
    masker = Masker(SPEC, provider, MaskingMetrics(CollectorRegistry()))
    event = make_event(PATIENTS, {"patient_id": "p"})
    first = masker.mask_batch([event], lambda _e: PATIENTS)[0].partition_key["patient_id"]
    assert masker.plan(PATIENTS) is masker.plan(PATIENTS)
    provider.current = KeySnapshot(1, keys | {"tokens": KeyMaterial(2, b"z" * 32)})
    second = masker.mask_batch([event], lambda _e: PATIENTS)[0].partition_key["patient_id"]
    assert first.startswith("v1:")
    assert second.startswith("v2:")


def test_check_is_the_load_time_gate_and_merge_keeps_names_unique(keys: dict[str, KeyMaterial]) -> None:
    masker = Masker(SPEC, StaticKeys({"tokens": keys["tokens"]}), MaskingMetrics(CollectorRegistry()))
    with pytest.raises(PolicyError, match="rule 'ssn' references salt 'pepper'"):
        masker.check([PATIENTS])
    with pytest.raises(PolicyError, match="'pid' appears twice"):
        merge_policies([SPEC, SPEC])
    assert len(merge_policies([SPEC, policy()]).rules) == len(SPEC.rules)
