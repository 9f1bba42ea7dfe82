"""Masking cost: nanoseconds per value for each action, and per event with a realistic policy.

Prints one JSON object per line:
  {"bench": "masking", "action": ..., "ns_per_value": ...}         one per action, on text values
  {"bench": "masking_event", "policy": ..., "ns_per_event": ...}   mask_event over 9-column rows

Each figure is the best of several rounds (the machine is shared; the minimum is the least
disturbed). Run: ``.venv/bin/python -m bench.masking``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

from cdc_replicator.contract.policy import MaskingPolicySpec
from cdc_replicator.cql.types import parse_type
from cdc_replicator.events import Cell, ChangeEvent, Operation, Position
from cdc_replicator.masking.actions import KeyMaterial
from cdc_replicator.masking.apply import mask_event
from cdc_replicator.masking.plans import compile_table
from cdc_replicator.schema.model import ColumnDef, TableSchema

VALUES = 20_000
ROUNDS = 7
KEYS = {"tokens": KeyMaterial(1, b"k" * 32), "salt": KeyMaterial(1, b"s" * 32)}
PARAMS: dict[str, dict[str, Any]] = {
    "hash": {"saltRef": "salt"},
    "hmac": {"keyRef": "tokens"},
    "redact": {},
    "partial": {"keepLast": 4},
    "null": {},
}
COLUMNS = [
    ("email", "text"),
    ("phone", "text"),
    ("ssn", "text"),
    ("name", "text"),
    ("city", "text"),
    ("age", "int"),
    ("score", "double"),
    ("created", "bigint"),
    ("status", "text"),
]


def table() -> TableSchema:
    regular = [ColumnDef(n, "regular", i, parse_type(t)) for i, (n, t) in enumerate(COLUMNS)]
    return TableSchema(
        id=uuid.uuid4(),
        keyspace="shop",
        name="customers",
        cdc=True,
        partition_key=(ColumnDef("id", "partition_key", 0, parse_type("uuid")),),
        clustering=(),
        columns={c.name.encode(): c for c in regular},
    )


def emit(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record) + "\n")  # the bench protocol: one JSON object per line


def best_ns(run: Callable[[], None], count: int) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter_ns()
        run()
        best = min(best, (time.perf_counter_ns() - start) / count)
    return round(best, 1)


def rule(name: str, column: str, action: str) -> dict[str, Any]:
    return {"name": name, "classification": "PII", "match": {"column": column}, "action": action, **PARAMS[action]}


def bench_actions(schema: TableSchema) -> None:
    emails = [f"customer{i:06d}@example.com" for i in range(VALUES)]
    for action in PARAMS:
        plan = compile_table(MaskingPolicySpec.model_validate({"rules": [rule(action, "email", action)]}), schema, KEYS)
        ((_, mask),) = plan.columns["email"].steps

        def run(mask: Callable[[Any], Any] = mask) -> None:
            for value in emails:
                mask(value)

        emit({"bench": "masking", "action": action, "ns_per_value": best_ns(run, VALUES)})


def events(schema: TableSchema) -> list[ChangeEvent]:
    out = []
    for i in range(VALUES // 4):
        values = [f"user{i}@example.com", f"+1-555-{i:07d}", f"{i:09d}", f"Name {i}", "Springfield", 30, 0.5, i, "ok"]
        out.append(
            ChangeEvent(
                keyspace=schema.keyspace,
                table=schema.name,
                table_id=schema.id,
                operation=Operation.UPSERT,
                # Read-only views, as the decoder makes them (copying one costs more than a dict).
                partition_key=MappingProxyType({"id": uuid.UUID(int=i)}),
                clustering=MappingProxyType({}),
                position=Position(1, i),
                cells=MappingProxyType(
                    {name: Cell(v, 1_700_000_000_000_000 + i) for (name, _), v in zip(COLUMNS, values, strict=True)}
                ),
            )
        )
    return out


def bench_events(schema: TableSchema) -> None:
    batch = events(schema)
    policies = {
        "none": [],
        # About a third of the columns: an email token, a phone kept partly, an SSN hashed.
        "third_of_columns": [
            rule("email", "email", "hmac"),
            rule("phone", "phone", "partial"),
            rule("ssn", "ssn", "hash"),
        ],
    }
    for name, rules in policies.items():
        plan = compile_table(MaskingPolicySpec.model_validate({"rules": rules}), schema, KEYS)
        counts = plan.new_counts()

        def run(plan: Any = plan, counts: list[int] = counts) -> None:
            for event in batch:
                mask_event(plan, event, counts)

        emit({"bench": "masking_event", "policy": name, "columns": 10, "ns_per_event": best_ns(run, len(batch))})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args()
    schema = table()
    bench_actions(schema)
    bench_events(schema)
    return 0


if __name__ == "__main__":
    sys.exit(main())
