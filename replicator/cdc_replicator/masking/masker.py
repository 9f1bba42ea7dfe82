"""The masker the replicator holds: policy + keys + plan cache + audit, around the pure engine.

    masker = Masker(spec, keys, metrics)       # keys: VaultKeyStore (loaded) or StaticKeys
    masker.check(registry.tables())            # at startup: PolicyError -> refuse to start
    masked = masker.mask_batch(events, table_of)   # before any sink sees the batch

Plans are compiled per (table id, schema generation, key generation): a schema change or a
key rotation recompiles the affected plans on the next batch, and nothing else does.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from cdc_replicator.events import ChangeEvent
from cdc_replicator.masking.audit import AUDIT_LOGGER, MaskingMetrics, record_batch
from cdc_replicator.masking.engine import (
    MaskingError,
    PolicyError,
    TablePlan,
    check_policy,
    compile_table,
    mask_event,
)
from cdc_replicator.masking.keys import KeySnapshot
from cdc_replicator.masking.policy import MaskingPolicySpec
from cdc_replicator.schema.model import TableSchema

_LOG = logging.getLogger("cdc_replicator.masking")


class KeyProvider(Protocol):
    def snapshot(self) -> KeySnapshot: ...


def merge_policies(specs: Iterable[MaskingPolicySpec]) -> MaskingPolicySpec:
    """Several policies applied in order are one policy with their rules concatenated."""
    rules = [rule for spec in specs for rule in spec.rules]
    try:
        return MaskingPolicySpec(rules=rules)
    except ValueError as exc:
        raise PolicyError([str(exc)]) from None


class Masker:
    def __init__(
        self,
        spec: MaskingPolicySpec,
        keys: KeyProvider,
        metrics: MaskingMetrics,
        logger: logging.Logger = AUDIT_LOGGER,
    ) -> None:
        self.spec = spec
        self.keys = keys
        self.metrics = metrics
        self.logger = logger
        self._plans: dict[uuid.UUID, tuple[int, int, TablePlan]] = {}

    def check(self, tables: Iterable[TableSchema]) -> None:
        """The load-time gate: every rule fits every table it matches, every key it names exists."""
        check_policy(self.spec, tables, self.keys.snapshot().keys)

    def plan(self, table: TableSchema, snapshot: KeySnapshot | None = None) -> TablePlan:
        """The current plan for ``table`` (compiled on first use, after ALTER TABLE or a key rotation)."""
        snapshot = snapshot or self.keys.snapshot()
        cached = self._plans.get(table.id)
        if cached is not None and cached[0] == table.generation and cached[1] == snapshot.generation:
            return cached[2]
        plan = compile_table(self.spec, table, snapshot.keys)
        if cached is None or cached[0] != table.generation:  # once per table schema, not per key rotation
            self._warn_dropped(plan)
        self._plans[table.id] = (table.generation, snapshot.generation, plan)
        return plan

    def _warn_dropped(self, plan: TablePlan) -> None:
        for name in plan.dropped_columns:
            slot = plan.columns[name].drop_slot
            rule = plan.audit[slot].rule if slot is not None else "?"
            _LOG.warning(
                "masking rule %r nulls %s.%s.%s, a set or map: its elements are values, so the column "
                "is left out of events, and a row that exists only through it will not appear at "
                "destinations (to keep such rows, mask its [element] or [key] with hash or hmac instead)",
                rule,
                plan.keyspace,
                plan.table,
                name,
            )

    def mask_batch(
        self, events: Sequence[ChangeEvent], table_of: Callable[[ChangeEvent], TableSchema | None]
    ) -> list[ChangeEvent]:
        """Mask a batch and audit it. Raises ``MaskingError``/``PolicyError`` rather than let a value out unmasked.

        ``table_of`` must give the schema the events were decoded with or a newer one (the
        registry's current one is): plans cover exactly the columns that schema knows.
        """
        snapshot = self.keys.snapshot()  # one key version for the whole batch
        tallies: dict[uuid.UUID, tuple[TablePlan, list[int]]] = {}
        out: list[ChangeEvent] = []
        for event in events:
            entry = tallies.get(event.table_id)
            if entry is None:
                table = table_of(event)
                if table is None:
                    raise MaskingError(f"no schema for {event.keyspace}.{event.table}: cannot tell what to mask")
                plan = self.plan(table, snapshot)
                entry = tallies[event.table_id] = (plan, plan.new_counts())
            out.append(mask_event(entry[0], event, entry[1]))
        record_batch(self.metrics, tallies.values(), len(events), self.logger)
        return out
