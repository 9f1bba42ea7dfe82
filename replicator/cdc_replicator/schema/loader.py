"""Reading ``system_schema`` through a cassandra-driver session."""

from __future__ import annotations

from typing import Any

from cdc_replicator.schema.registry import ColumnRow, DroppedRow, SchemaSnapshot, TableRow, UdtRow


def load_snapshot(session: Any) -> SchemaSnapshot:
    """Query every table, view, column, dropped column and UDT of the cluster."""
    tables = [
        TableRow(r.keyspace_name, r.table_name, r.id, bool(r.cdc))
        for r in session.execute("SELECT keyspace_name, table_name, id, cdc FROM system_schema.tables")
    ]
    tables += [
        TableRow(r.keyspace_name, r.view_name, r.id, False, is_view=True)
        for r in session.execute("SELECT keyspace_name, view_name, id FROM system_schema.views")
    ]
    columns = tuple(
        ColumnRow(r.keyspace_name, r.table_name, r.column_name, r.kind, r.position, r.type, r.clustering_order)
        for r in session.execute(
            "SELECT keyspace_name, table_name, column_name, kind, position, type, clustering_order "
            "FROM system_schema.columns"
        )
    )
    # dropped_time is Cassandra's drop time in µs truncated to ms (SchemaKeyspace), and can be
    # far outside datetime's range (system.local.thrift_version: Long.MAX_VALUE µs), which the
    # driver fails to decode: read the raw milliseconds instead.
    dropped = tuple(
        DroppedRow(r.keyspace_name, r.table_name, r.column_name, r.kind, r.type, r.dropped_ms * 1000)
        for r in session.execute(
            "SELECT keyspace_name, table_name, column_name, kind, type, "
            "blobAsBigint(timestampAsBlob(dropped_time)) AS dropped_ms FROM system_schema.dropped_columns"
        )
    )
    types = tuple(
        UdtRow(r.keyspace_name, r.type_name, tuple(r.field_names or ()), tuple(r.field_types or ()))
        for r in session.execute("SELECT keyspace_name, type_name, field_names, field_types FROM system_schema.types")
    )
    return SchemaSnapshot(tuple(tables), columns, dropped, types)


def schema_version(session: Any) -> object:
    """The coordinator's schema version (changes with every schema change it has applied)."""
    return session.execute("SELECT schema_version FROM system.local").one().schema_version
