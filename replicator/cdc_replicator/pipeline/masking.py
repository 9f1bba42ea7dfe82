"""The masking stage as the replicator runs it: keys, policies, each chunk masked as it is read.

    stage = MaskingStage.load(config.masking, metrics, table_of)  # None without policies
    stage.start(tables)        # the policies checked against the tables; Vault keys refresh from now
    Feed(..., masking=stage.batch, prepare=stage.prepare)
    build_sink(..., types_of=stage.types_of)
    stage.stop()

``load`` reads the keys (environment and/or Vault) before anything else: a wrong key must stop
the replicator before it reads a byte. A missing or unreadable key, or a policy that does not
fit the tables, is a ``ConfigError`` naming the key, path, rule or column, never a value.
The masking itself is ``cdc_replicator.masking``'s; this module only wires it into the feed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cdc_replicator.contract.config import ConfigError, Masking
from cdc_replicator.cql.types import CqlType
from cdc_replicator.events import ChangeEvent, Operation
from cdc_replicator.masking.apply import range_survives_masking
from cdc_replicator.masking.audit import MaskingMetrics
from cdc_replicator.masking.masker import KeyProvider, Masker, MaskingBatch, merge_policies
from cdc_replicator.masking.rules import PolicyError
from cdc_replicator.observability.metrics import Metrics
from cdc_replicator.schema.model import TableSchema
from cdc_replicator.sinks.base import DeadLetter, TableOf
from cdc_replicator.sinks.layout import DestinationTypes

if TYPE_CHECKING:
    from cdc_replicator.masking.keys import VaultKeyStore

MASKED_RANGE = "range deletion over a masked clustering column cannot be applied exactly"


def load_keys(config: Masking, metrics: MaskingMetrics) -> tuple[KeyProvider, VaultKeyStore | None]:
    """The keys the policies name, read once, and the Vault store that will refresh them (if any)."""
    # Imported here: hvac is slow to import, and only a replicator that masks needs it.
    from cdc_replicator.masking.keys import (  # noqa: PLC0415
        KeyLoadError,
        MergedKeys,
        StaticKeys,
        VaultKeyStore,
        keys_from_environment,
    )

    providers: list[StaticKeys | VaultKeyStore] = []
    store: VaultKeyStore | None = None
    try:
        if config.keys:
            static = keys_from_environment({k.name: k.env for k in config.keys})
            for name, material in static.snapshot().keys.items():
                metrics.key_version.labels(name).set(material.version)
            providers.append(static)
        if config.vault is not None:
            store = VaultKeyStore(config.vault, config.vault.keys, metrics)
            store.load()
            providers.append(store)
    except KeyLoadError as exc:
        raise ConfigError(f"masking keys: {exc}") from None
    keys: KeyProvider = providers[0] if len(providers) == 1 else MergedKeys(*providers)
    return keys, store


class MaskingStage:
    def __init__(self, masker: Masker, key_store: VaultKeyStore | None, metrics: Metrics, table_of: TableOf) -> None:
        self.masker = masker
        self.key_store = key_store
        """Refreshes Vault keys on its own thread from ``start`` to ``stop``; None for keys from the environment."""
        self.metrics = metrics
        self.table_of = table_of

    @classmethod
    def load(cls, config: Masking, metrics: Metrics, table_of: TableOf) -> MaskingStage | None:
        """The stage for the config's policies (None when there are none), with its keys read."""
        if not config.policies:
            return None
        masking_metrics = MaskingMetrics(metrics.registry)
        keys, store = load_keys(config, masking_metrics)
        try:
            masker = Masker(merge_policies(config.policies), keys, masking_metrics)
        except PolicyError as exc:
            raise ConfigError(str(exc)) from None
        return cls(masker, store, metrics, table_of)

    def start(self, tables: list[TableSchema]) -> None:
        """Check the policies against the replicated ``tables``, then keep Vault keys fresh."""
        try:
            self.masker.check(tables)
        except PolicyError as exc:
            raise ConfigError(str(exc)) from None
        if self.key_store is not None:
            self.key_store.start()

    def stop(self) -> None:
        if self.key_store is not None:
            self.key_store.stop()

    def batch(self) -> MaskingBatch:
        """A chunk's masking: the feed masks each event as it reads it (``Feed(masking=...)``)."""
        return self.masker.batch(self.table_of)

    def prepare(self, masked: list[ChangeEvent]) -> tuple[list[ChangeEvent], list[DeadLetter]]:
        """A chunk the feed masked as it read it: a range deletion that masking made inexact
        (hashes keep no order) is refused, for every destination to dead-letter."""
        if not any(event.operation is Operation.DELETE_RANGE for event in masked):
            return masked, []  # the common case: no per-event schema and plan look-ups
        kept: list[ChangeEvent] = []
        rejected: list[DeadLetter] = []
        for event in masked:
            table = self.table_of(event) if event.operation is Operation.DELETE_RANGE else None
            if table is not None and not range_survives_masking(self.masker.plan(table), event):
                rejected.append(DeadLetter(event, MASKED_RANGE, event.keyspace, event.table))
                self.metrics.errors.labels("reader", "masked_range").inc()
                continue
            kept.append(event)
        return kept, rejected

    def types_of(self, table: TableSchema) -> dict[str, CqlType]:
        """The destination types of ``table``'s columns where masking changes them (``TypesOf``)."""
        plan = self.masker.plan(table)
        return DestinationTypes(plan.destination_types, plan.hidden)


def unmasked(events: list[ChangeEvent]) -> tuple[list[ChangeEvent], list[DeadLetter]]:
    """``Feed``'s last step without masking: every event goes on."""
    return events, []
