"""``cdc-replicator dump``: print the change events of CDC segments as JSON lines."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from cdc_replicator.commitlog.errors import CommitLogError
from cdc_replicator.commitlog.mutation import MutationDecoder
from cdc_replicator.commitlog.reader import CaughtUp, CommitLogReader, ReadError, sources_from_paths
from cdc_replicator.contract.config import CassandraCluster
from cdc_replicator.cql.jsonmap import event_to_json
from cdc_replicator.events import ChangeEvent, Position
from cdc_replicator.schema.model import TableSchema
from cdc_replicator.schema.registry import SchemaRegistry, SchemaSource
from cdc_replicator.schema.session import connect_cassandra

SYSTEM_KEYSPACES = frozenset(
    {
        "system",
        "system_schema",
        "system_auth",
        "system_distributed",
        "system_traces",
        "system_views",
        "system_virtual_schema",
    }
)

HELP = "print the change events of CDC commitlog segments as JSON lines"
DESCRIPTION = """\
Decode Cassandra commitlog segments (CommitLog-<version>-<id>.log, as hard-linked into
cdc_raw/) into change events and print one JSON object per event on stdout.

The table schemas come from the node's system_schema through --cassandra. Entries past
the _cdc.idx offset (acknowledged but not yet synced) are read too unless --durable-only;
such events carry "durable": false.

Each event has: keyspace, table, op (upsert | delete_row | delete_range |
delete_partition), position (SEGMENT_ID:OFFSET after the entry; pass it to --from to
resume), index (within the entry), partition_key, and as applicable clustering, static,
liveness {timestamp, ttl, expires_at}, deletion {timestamp, local_deletion_time},
range {start, end: {values, inclusive}} (in clustering order), cells {column: {value,
timestamp, ttl, expires_at} or {deleted, local_deletion_time, timestamp}} and
collections {column: {deletion?, elements: [{key, value | deleted, timestamp, ...}]}}
for non-frozen collections and UDTs (a deletion there means the column was overwritten).
Timestamps are microseconds, local deletion / expiry times are seconds since the epoch.

JSON values per CQL type: text types as strings; integer types as numbers; float/double
as numbers or "NaN"/"Infinity"/"-Infinity"; decimal as a string; boolean; blob as
"0x<hex>"; uuid, timeuuid, inet as strings; timestamp as ISO 8601 UTC ("...Z"); date as
"YYYY-MM-DD"; time as "HH:MM:SS.nnnnnnnnn"; duration as {months, days, nanoseconds};
list, set, tuple and vector as arrays; map as an array of [key, value] pairs; UDT as an
object; null as null; counter as {total, shards: [{id, clock, count}]} (a counter write is
logged as the leader replica's new running total for its shard, not as the delta).

Exit status: 0 on success, 2 on bad input (unreadable, truncated or corrupt segment, CRC
mismatch, unsupported version or encryption, not a segment) with a one-line error on
stderr naming the file, the offset and the reason. With --follow, a corrupt section is
reported as {"error", "file", "offset", "errors": count} on stdout and on stderr, and
skipped (the rest of the segment when its header or sync-marker chain is broken).

examples:
  cdc-replicator dump /var/lib/cassandra/cdc_raw --cassandra 127.0.0.1:9042 --keyspace shop
  cdc-replicator dump cdc_raw/CommitLog-7-1795697987443.log --cassandra db1:9042 --table shop.orders
  cdc-replicator dump cdc_raw --cassandra db1:9042 --from 1795697987443:72899 --follow
"""


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "dump", help=HELP, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "paths", nargs="+", type=Path, metavar="CDC_RAW_DIR_OR_SEGMENT", help="cdc_raw directories or segment files"
    )
    parser.add_argument(
        "--cassandra",
        required=True,
        metavar="HOST[:PORT]",
        help="a node to read system_schema from (its CQL port, 9042 when not given)",
    )
    parser.add_argument("--keyspace", action="append", default=[], metavar="K", help="only this keyspace (repeatable)")
    parser.add_argument(
        "--table",
        action="append",
        default=[],
        metavar="T",
        help="only this table, TABLE or KEYSPACE.TABLE (repeatable)",
    )
    parser.add_argument("--cdc-only", action="store_true", help="only tables created WITH cdc = true")
    parser.add_argument("--include-system", action="store_true", help="also decode Cassandra's own system keyspaces")
    parser.add_argument(
        "--from",
        dest="start",
        type=_position,
        metavar="SEGMENT:POSITION",
        help="start strictly after this position (as printed in events)",
    )
    parser.add_argument("--follow", action="store_true", help="keep reading the directory as Cassandra writes")
    parser.add_argument(
        "--durable-only", action="store_true", help="stop at each segment's _cdc.idx offset (no read-ahead)"
    )
    parser.set_defaults(handler=run)


def _position(text: str) -> Position:
    try:
        return Position.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _filters(args: argparse.Namespace) -> tuple[Callable[[str], bool], Callable[[TableSchema], bool]]:
    keyspaces = set(args.keyspace)
    tables = set(args.table)

    def keyspace_ok(keyspace: str) -> bool:
        if keyspaces:
            return keyspace in keyspaces
        return args.include_system or keyspace not in SYSTEM_KEYSPACES

    def table_ok(table: TableSchema) -> bool:
        if args.cdc_only and not table.cdc:
            return False
        return not tables or table.name in tables or table.qualified_name in tables

    return keyspace_ok, table_ok


def _session_source(address: str) -> SchemaSource:
    from cdc_replicator.schema.loader import load_snapshot  # noqa: PLC0415 - keep `--help` fast

    session = connect_cassandra(CassandraCluster(contact_points=[address]), connect_timeout=10)
    return lambda: load_snapshot(session)


def _error_line(exc: CommitLogError) -> str:
    return f"{exc.path}: offset {exc.offset}: {exc.reason}"


def _write(out: TextIO, obj: dict[str, Any]) -> None:
    out.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")))
    out.write("\n")


def run(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Run the dump; returns the exit status. Never lets an exception escape as a traceback."""
    try:
        return _run(args, out, err)
    except CommitLogError as exc:
        err.write(f"cdc-replicator dump: error: {_error_line(exc)}\n")
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the CLI promises one line, never a traceback
        err.write(f"cdc-replicator dump: error: {type(exc).__name__}: {exc}\n")
        return 2


def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    for path in args.paths:
        if not path.exists():
            err.write(f"cdc-replicator dump: error: {path}: no such file or directory\n")
            return 2
        if args.follow and not path.is_dir():
            err.write(f"cdc-replicator dump: error: {path}: --follow needs a cdc_raw directory\n")
            return 2
    keyspace_ok, table_ok = _filters(args)
    registry = SchemaRegistry(_session_source(args.cassandra))
    reader = CommitLogReader(MutationDecoder(registry, table_ok, keyspace_ok), read_ahead=not args.durable_only)
    stream: Iterator[ChangeEvent | ReadError | CaughtUp]
    if args.follow:
        if len(args.paths) != 1:
            err.write("cdc-replicator dump: error: --follow takes exactly one cdc_raw directory\n")
            return 2
        stream = reader.follow(args.paths[0], args.start)
    else:
        stream = iter(reader.events(sources_from_paths(args.paths), args.start))
    for item in stream:
        if isinstance(item, CaughtUp):
            continue  # not asked for (report_idle is off)
        if isinstance(item, ReadError):
            line = _error_line(item.error)
            err.write(f"cdc-replicator dump: error: {line} (skipped)\n")
            _write(
                out,
                {
                    "error": item.error.reason,
                    "file": str(item.error.path),
                    "offset": item.error.offset,
                    "errors": reader.stats.errors,
                },
            )
            out.flush()
            continue
        _write(out, event_to_json(item))
        if args.follow:
            out.flush()
    stats = reader.stats
    if stats.unknown_table_mutations:
        err.write(
            f"cdc-replicator dump: warning: skipped {stats.unknown_table_mutations} mutations of tables "
            f"not in the schema: {', '.join(sorted(stats.unknown_tables))}\n"
        )
    return 0
