"""The write steps every merging sink shares: grouping a batch by table, folding with dead
letters, counting, and the dead-letter record.

Postgres and ClickHouse used to carry a copy each, and the copies drifted (ClickHouse refolded
every table whenever any event of the batch had been dead-lettered). One copy, used by both.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from cdc_replicator.cql.jsonmap import event_to_json
from cdc_replicator.events import ChangeEvent
from cdc_replicator.sinks.base import DeadLetter, TableCache, TableOf, WriteResult
from cdc_replicator.sinks.layout import TableLayout
from cdc_replicator.sinks.merge import Folder, TableBatch


class FoldingTable(Protocol):
    layout: TableLayout
    folder: Folder


T = TypeVar("T", bound=FoldingTable)

UNKNOWN_TABLE = "table unknown to the schema registry"


@dataclass(slots=True)
class TableEvents(Generic[T]):
    table: T
    events: list[ChangeEvent]


def group_by_table(
    events: Sequence[ChangeEvent], tables: TableCache[T], table_of: TableOf, result: WriteResult
) -> list[TableEvents[T]]:
    """The events of each table (in batch order), by target name; an event of a table the schema
    registry does not know is dead-lettered into ``result``."""
    by_table: dict[int, TableEvents[T]] = {}
    for event in events:
        table = tables.get(event, table_of)
        if table is None:
            result.dead.append(DeadLetter(event, UNKNOWN_TABLE, event.keyspace, event.table))
            continue
        entry = by_table.get(id(table))
        if entry is None:
            by_table[id(table)] = TableEvents(table, [event])
        else:
            entry.events.append(event)
    # Target order: replicators of several nodes lock shared tables in the same order.
    return sorted(by_table.values(), key=lambda entry: entry.table.layout.target)


def fold(table: FoldingTable, events: Sequence[ChangeEvent], result: WriteResult) -> TableBatch:
    """Fold ``events`` of one table; an event whose values the destination cannot represent is
    dead-lettered and the table's other events folded again without it (a failed fold may have
    left part of that event in the batch). Only this table is refolded."""
    batch = TableBatch(table.layout)
    refused: set[int] = set()
    for i, event in enumerate(events):
        try:
            table.folder.fold(batch, event)
        except (ValueError, TypeError, OverflowError) as exc:
            refused.add(i)
            result.dead.append(DeadLetter(event, f"value not representable: {exc}", event.keyspace, event.table))
    if refused:
        batch = TableBatch(table.layout)
        for i, event in enumerate(events):
            if i not in refused:
                table.folder.fold(batch, event)
    return batch


def count(result: WriteResult, batch: TableBatch) -> None:
    """Add a merged batch to the result: events applied, per table, newest write time."""
    layout = batch.layout
    result.applied += batch.events
    name = f"{layout.keyspace}.{layout.table}"
    result.per_table[name] = result.per_table.get(name, 0) + batch.events
    result.max_write_time = max(result.max_write_time, batch.max_timestamp)


@dataclass(frozen=True, slots=True)
class DeadLetterRecord:
    keyspace: str
    table: str
    position: str | None
    """``segment:offset#index`` of the event, None without one."""
    event: str | None
    """The event as JSON (``cql.jsonmap``), None without one."""
    error: str


def dead_letter_record(letter: DeadLetter, ensure_ascii: bool = False) -> DeadLetterRecord:
    event = letter.event
    payload: Any = None if event is None else json.dumps(event_to_json(event), ensure_ascii=ensure_ascii)
    position = None if event is None else f"{event.position}#{event.index}"
    return DeadLetterRecord(letter.keyspace, letter.table, position, payload, letter.error)
