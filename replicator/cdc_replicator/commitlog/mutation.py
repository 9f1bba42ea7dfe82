"""``Mutation.MutationSerializer``: one commitlog entry, decoded into change events.

    mutation := uvint32 count, PartitionUpdate * count

The decoder works on ``bytes`` with an explicit offset threaded through plain functions, one
module per serializer as Cassandra has them: ``partitions`` (``PartitionUpdate``, its header
and ``Columns``), ``rows`` (``UnfilteredSerializer``: rows, range tombstone markers, clustering
prefixes), ``cells`` (``Cell.Serializer``) and ``header`` (``SerializationHeader``: timestamps,
TTLs and deletion times as deltas from the update's ``EncodingStats``). No per-byte loops, no
intermediate objects other than the events themselves.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable

from cdc_replicator.commitlog.errors import MutationDecodeError, UnknownTableError
from cdc_replicator.commitlog.partitions import read_partition
from cdc_replicator.commitlog.segment import Entry
from cdc_replicator.cql.vint import read_uvint
from cdc_replicator.events import ChangeEvent, Position
from cdc_replicator.schema.model import TableSchema
from cdc_replicator.schema.registry import SchemaRegistry

TableFilter = Callable[[TableSchema], bool]


class MutationDecoder:
    """Turns entries into change events for the tables ``include`` accepts.

    Partition updates of other tables are skipped: without decoding values, and not parsed
    at all when nothing the filter accepts follows them (a mutation is one keyspace, so the
    first table id decides for the whole mutation when the filter rejects the keyspace).
    """

    def __init__(
        self,
        schema: SchemaRegistry,
        include: TableFilter | None = None,
        include_keyspace: Callable[[str], bool] | None = None,
    ) -> None:
        self.schema = schema
        self.include = include or (lambda _t: True)
        self.include_keyspace = include_keyspace or (lambda _k: True)
        self.skipped_updates = 0
        self.skipped_mutations = 0

    def decode(self, entry: Entry, messaging_version: int) -> list[ChangeEvent]:
        """Events of one entry. Raises ``UnknownTableError`` or ``MutationDecodeError``."""
        buf = entry.data
        position = Position(entry.segment_id, entry.position)
        try:
            return self._decode(buf, position, messaging_version, entry.durable)
        except (UnknownTableError, MutationDecodeError):
            raise
        except (IndexError, ValueError, KeyError, struct.error, UnicodeDecodeError) as exc:
            raise MutationDecodeError(
                f"segment {entry.segment_id}", entry.start, f"mutation does not decode: {exc!r}"
            ) from exc

    def peek_table(self, entry: Entry) -> TableSchema | None:
        """The table of the first partition update (all updates share its keyspace)."""
        _, pos = read_uvint(entry.data, 0)
        return self.schema.table(entry.data[pos : pos + 16])

    def _decode(self, buf: bytes, position: Position, version: int, durable: bool) -> list[ChangeEvent]:
        count, pos = read_uvint(buf, 0)
        events: list[ChangeEvent] = []
        for index in range(count):
            table_id = buf[pos : pos + 16]
            table = self.schema.table(table_id)
            if table is None:
                raise UnknownTableError(uuid.UUID(bytes=bytes(table_id)))
            if index == 0 and not self.include_keyspace(table.keyspace):
                self.skipped_mutations += 1
                return events
            wanted = self.include(table)
            if not wanted:
                self.skipped_updates += 1
                if index == count - 1:
                    break
            pos = read_partition(buf, pos + 16, table, self.schema, version, wanted, position, durable, events)
        return events


__all__ = ["MutationDecoder"]
