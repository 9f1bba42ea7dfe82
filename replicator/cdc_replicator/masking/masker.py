"""The masker the replicator holds: policy + keys + plan cache + audit, around the pure rules, plans and masks.

    masker = Masker(spec, keys, metrics)       # keys: VaultKeyStore (loaded) or StaticKeys
    masker.check(registry.tables())            # at startup: PolicyError -> refuse to start
    masked = masker.mask_batch(events, table_of)   # before any sink sees the batch
    batch = masker.batch(table_of)                 # or event by event, as the feed reads them
    masked = [batch.mask(e) for e in events]; batch.finish(len(masked))

Plans are compiled per (table id, schema generation, key generation): a schema change or a
key rotation recompiles the affected plans on the next batch, and nothing else does.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Protocol

from cdc_replicator.contract.policy import MaskingPolicySpec
from cdc_replicator.events import ChangeEvent
from cdc_replicator.masking.apply import mask_event
from cdc_replicator.masking.audit import AUDIT_LOGGER, MaskingMetrics, record_batch
from cdc_replicator.masking.plans import MaskingError, TablePlan, compile_table
from cdc_replicator.masking.rules import PolicyError, check_policy
from cdc_replicator.schema.model import TableSchema

if TYPE_CHECKING:  # the key stores import hvac: only a replicator with Vault keys pays for it
    from cdc_replicator.masking.keys import KeySnapshot

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
        for name, column in plan.columns.items():
            if column.drop_slot is None:
                continue
            _LOG.warning(
                "masking rule %r nulls %s.%s.%s, a set or map: its elements are values, so the column "
                "is left out of events, and a row that exists only through it will not appear at "
                "destinations (to keep such rows, mask its [element] or [key] with hash or hmac instead)",
                plan.audit[column.drop_slot].rule,
                plan.keyspace,
                plan.table,
                name,
            )

    def batch(self, table_of: Callable[[ChangeEvent], TableSchema | None]) -> MaskingBatch:
        """A batch to mask event by event (see ``MaskingBatch``)."""
        return MaskingBatch(self, table_of)

    def mask_batch(
        self, events: Sequence[ChangeEvent], table_of: Callable[[ChangeEvent], TableSchema | None]
    ) -> list[ChangeEvent]:
        """Mask a batch and audit it. Raises ``MaskingError``/``PolicyError`` rather than let a value out unmasked."""
        batch = self.batch(table_of)
        out = [batch.mask(event) for event in events]
        batch.finish(len(out))
        return out


class MaskingBatch:
    """One batch being masked: one key version throughout, one audit record when finished.

    Events are masked one at a time so the feed can mask each as it is decoded, while its
    objects are still in the CPU's caches: masking a whole chunk after decoding it reads every
    event back from memory, which measured twice the cost of the masking itself.

    ``table_of`` must give the schema the events were decoded with or a newer one (the
    registry's current one is): plans cover exactly the columns that schema knows.
    """

    def __init__(self, masker: Masker, table_of: Callable[[ChangeEvent], TableSchema | None]) -> None:
        self.masker = masker
        self.table_of = table_of
        self.snapshot = masker.keys.snapshot()  # one key version for the whole batch
        self.tallies: dict[uuid.UUID, tuple[TablePlan, list[int]]] = {}

    def mask(self, event: ChangeEvent) -> ChangeEvent:
        """``event`` masked; raises ``MaskingError``/``PolicyError`` rather than let a value out unmasked."""
        entry = self.tallies.get(event.table_id)
        if entry is None:
            table = self.table_of(event)
            if table is None:
                raise MaskingError(f"no schema for {event.keyspace}.{event.table}: cannot tell what to mask")
            plan = self.masker.plan(table, self.snapshot)
            entry = self.tallies[event.table_id] = (plan, plan.new_counts())
        return mask_event(entry[0], event, entry[1])

    def finish(self, events: int) -> None:
        """Count and log what the batch masked (its ``events`` events)."""
        record_batch(self.masker.metrics, self.tallies.values(), events, self.masker.logger)
