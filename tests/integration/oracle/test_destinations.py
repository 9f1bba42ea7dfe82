"""Range deletions and equal-timestamp ties, for every type, through the sinks: each destination's
view equals Cassandra's ``SELECT *``.

One keyspace holds, per clusterable type, a table ``(pk, c1 <type>, c2 int)`` in both clustering
orders (c2 in the other one), where random rows are cut by random range deletions of every bound
kind (``>``, ``>=``, ``<``, ``<=``, one-sided, on ``c1`` alone and on the prefix ``c1 = ? AND
c2 …``), with rows written again inside deleted ranges later; a ``ties`` table where two writes
of every type share a ``USING TIMESTAMP`` (simple, static, map element and UDT field cells; live
against expiring against tombstone); retention-style deletions on a DESC timeuuid
(``ts >= minTimeuuid(?) AND ts < maxTimeuuid(?)``) and on a uuid (``ck > ? AND ck <= ?``); and a
time-series table kept by TimescaleDB as current state. Hypothesis draws the values and the
deletions (derandomized; the profile in tests/conftest.py bounds the examples).
"""

from __future__ import annotations

import asyncio
import datetime
import itertools
import json
import math
import random
import struct
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest
from cassandra import InvalidRequest
from cdc_replicator.events import ChangeEvent
from cdc_replicator.schema.model import TableSchema
from cdc_replicator.sinks.clickhouse import ClickHouseSink
from cdc_replicator.sinks.layout import default_target
from cdc_replicator.sinks.pgtypes import pg_type
from cdc_replicator.sinks.postgres import PostgresSink
from cdc_replicator.sinks.timescale import TimescaleSink
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from tests.integration.commitlog.helpers import read_events, run, start_position, unique_keyspace
from tests.integration.commitlog.model import normalize
from tests.integration.oracle.conftest import Lab
from tests.integration.oracle.values import CLUSTERABLE, UDT_DDL, literal, strategy
from tests.integration.replicator.helpers import ch_read, ch_value, pg_value

pytestmark = pytest.mark.integration

TIE_TYPES = {**CLUSTERABLE, "duration": "duration"}
"""Every non-counter type as a simple column of ``ties`` (duration cannot be a key, but ties)."""
ORDERS = (("ASC", "DESC"), ("DESC", "ASC"))
_stamps = itertools.count(1_700_000_000_000_000)


def stamp() -> int:
    return next(_stamps)


@dataclass
class Destinations:
    keyspace: str
    sinks: list[Any]
    """Postgres, TimescaleDB, ClickHouse: kept across examples (their DDL is done once)."""
    pg_schema: str
    ch_database: str
    tables: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def world(oracle_lab: Lab, postgres_dsn: str, timescaledb_dsn: str, clickhouse_client: Any) -> Iterator[Destinations]:
    ks = unique_keyspace("oracle_dest")
    session = oracle_lab.session
    run(session, f"CREATE KEYSPACE {ks} WITH replication = {oracle_lab.replication}")
    run(session, UDT_DDL.format(ks=ks))
    tables = []
    for n, (cql, name) in enumerate(CLUSTERABLE.items()):
        first, second = ORDERS[n % 2]  # both orders of every type: test_clustering_order
        table = f"g_{name}"
        tables.append(table)
        run(
            session,
            f"CREATE TABLE {ks}.{table} (pk int, c1 {cql}, c2 int, v int, PRIMARY KEY (pk, c1, c2)) "
            f"WITH cdc = true AND CLUSTERING ORDER BY (c1 {first}, c2 {second})",
        )
    simple = ", ".join(f"a_{name} {cql}" for cql, name in TIE_TYPES.items())
    run(
        session,
        f"CREATE TABLE {ks}.ties (pk int, ck int, st_int int static, st_double double static, {simple}, "
        "m map<int, bigint>, u pt, PRIMARY KEY (pk, ck)) WITH cdc = true",
    )
    run(
        session,
        f"CREATE TABLE {ks}.retention (pk int, ts timeuuid, v text, PRIMARY KEY (pk, ts)) "
        "WITH cdc = true AND CLUSTERING ORDER BY (ts DESC)",
    )
    run(session, f"CREATE TABLE {ks}.uu (pk int, ck uuid, v int, PRIMARY KEY (pk, ck)) WITH cdc = true")
    run(
        session,
        f"CREATE TABLE {ks}.series (pk int, at timestamp, v double, PRIMARY KEY (pk, at)) "
        "WITH cdc = true AND CLUSTERING ORDER BY (at DESC)",
    )
    # Cassandra columns named like the layout's helpers (and like its old ``c__t`` helpers).
    run(
        session,
        f'CREATE TABLE {ks}.names (pk int, "_ck" int, a int, "a__t" int, "_t_a" text, "_live" int, '
        '"_del" set<int>, "_v_a" double, "_a0" int, "_s" int static, "__x" frozen<list<int>>, '
        'PRIMARY KEY (pk, "_ck")) WITH cdc = true',
    )
    tables += ["ties", "retention", "uu", "series", "names"]
    oracle_lab.registry.refresh(force=True)
    suffix = uuid.uuid4().hex[:10]
    schema = f"o_{suffix}"
    sinks = [
        PostgresSink("pg", postgres_dsn, pipeline="test/oracle", node="node1", schema=schema),
        TimescaleSink(
            "ts",
            timescaledb_dsn,
            pipeline="test/oracle",
            node="node1",
            schema=schema,
            time_columns={f"{ks}.series": ("at", "1 day")},
        ),
        ClickHouseSink("ch", clickhouse_client, database=schema, pipeline="test/oracle", node="node1"),
    ]
    yield Destinations(ks, sinks, schema, schema, tables)
    run(session, f"DROP KEYSPACE IF EXISTS {ks}")

    async def drop() -> None:
        for dsn in (postgres_dsn, timescaledb_dsn):
            conn = await asyncpg.connect(dsn)
            try:
                await conn.execute(f'DROP SCHEMA IF EXISTS "o_{suffix}" CASCADE')
            finally:
                await conn.close()

    asyncio.run(drop())
    clickhouse_client.command(f"DROP DATABASE IF EXISTS `o_{suffix}`")


# -- the workload ------------------------------------------------------------------------------------


def _range_deletions(draw: Any, cql: str, values: list[str], table: str, pk: int) -> list[str]:
    """Deletions of every bound kind over ``c1`` and over the prefix ``c1 = ? AND c2 …``."""
    out = []
    for _ in range(draw(st.integers(1, 4))):
        a, b = draw(st.sampled_from(values)), draw(st.sampled_from(values))
        low, high = draw(st.sampled_from([">", ">="])), draw(st.sampled_from(["<", "<="]))
        x, y = draw(st.integers(0, 2)), draw(st.integers(0, 3))
        shape = draw(st.sampled_from(["slice", "from", "to", "prefix", "prefix_slice", "prefix_from"]))
        where = {
            "slice": f"c1 {low} {a} AND c1 {high} {b}",
            "from": f"c1 {low} {a}",
            "to": f"c1 {high} {b}",
            "prefix": f"c1 = {a}",
            "prefix_slice": f"c1 = {a} AND c2 {low} {x} AND c2 {high} {y}",
            "prefix_from": f"c1 = {a} AND c2 {low} {x}",
        }[shape]
        out.append(f"DELETE FROM {table} USING TIMESTAMP {stamp()} WHERE pk = {pk} AND {where}")
    return out


def _rows(draw: Any, values: list[str], table: str, pk: int) -> list[str]:
    return [
        f"INSERT INTO {table} (pk, c1, c2, v) VALUES ({pk}, {v}, {c2}, {draw(st.integers(-9, 9))}) "
        f"USING TIMESTAMP {stamp()}"
        for v in values
        for c2 in range(3)
        if draw(st.booleans())
    ]


def _tie(cql: str, column: str, draw: Any, where: str, table: str) -> list[str]:
    """Two (or three) writes of one cell at one timestamp: values, TTL and deletion mixed."""
    ts = stamp()
    first, second = draw(strategy(cql, nul=False)), draw(strategy(cql, nul=False))
    out = [
        f"UPDATE {table} USING TIMESTAMP {ts} SET {column} = {literal(cql, first)} WHERE {where}",
        f"UPDATE {table} USING TIMESTAMP {ts}{draw(st.sampled_from(['', ' AND TTL 86400']))} "
        f"SET {column} = {literal(cql, second)} WHERE {where}",
    ]
    if draw(st.integers(0, 9)) == 0:
        out.append(f"DELETE {column} FROM {table} USING TIMESTAMP {ts} WHERE {where}")
    return out


def _statements(draw: Any, ks: str, pk: int) -> list[str]:
    out: list[str] = []
    for cql, name in CLUSTERABLE.items():
        table = f"{ks}.g_{name}"
        values = [literal(cql, v) for v in draw(st.lists(strategy(cql, nul=False), min_size=2, max_size=4), label=name)]
        out += _rows(draw, values, table, pk)
        out += _range_deletions(draw, cql, values, table, pk)
        out += _rows(draw, values, table, pk)  # written again, partly inside deleted ranges
        out += _range_deletions(draw, cql, values, table, pk)[:1]
    ties = f"{ks}.ties"
    for ck in range(1):
        where = f"pk = {pk} AND ck = {ck}"
        for cql, name in TIE_TYPES.items():
            out += _tie(cql, f"a_{name}", draw, where, ties)
        out += _tie("bigint", f"m[{draw(st.integers(-2, 2))}]", draw, where, ties)
        out += _tie("int", "u.a", draw, where, ties)
        out += _tie("text", "u.b", draw, where, ties)
    out += _tie("int", "st_int", draw, f"pk = {pk}", ties)
    out += _tie("double", "st_double", draw, f"pk = {pk}", ties)
    # Retention on a DESC timeuuid: three years of rows, then windows cut by min/maxTimeuuid.
    day_ms = 86_400_000
    start = datetime.datetime(2023, 1, 1, tzinfo=datetime.UTC)
    for day in sorted(draw(st.sets(st.integers(0, 3 * 365), min_size=5, max_size=25))):
        at = start + datetime.timedelta(days=day, milliseconds=draw(st.integers(0, day_ms - 1)))
        out.append(
            f"INSERT INTO {ks}.retention (pk, ts, v) VALUES ({pk}, "
            f"{_timeuuid_at(at, draw(st.integers(0, 2**64 - 1)))}, 'd{day}') USING TIMESTAMP {stamp()}"
        )
    for _ in range(draw(st.integers(1, 3))):
        lo = start + datetime.timedelta(days=draw(st.integers(0, 3 * 365)))
        hi = lo + datetime.timedelta(days=draw(st.integers(0, 400)))
        low, high = (
            draw(st.sampled_from([(">=", "minTimeuuid"), (">", "maxTimeuuid")])),
            draw(st.sampled_from([("<", "maxTimeuuid"), ("<=", "maxTimeuuid"), ("<", "minTimeuuid")])),
        )
        out.append(
            f"DELETE FROM {ks}.retention USING TIMESTAMP {stamp()} WHERE pk = {pk} "
            f"AND ts {low[0]} {low[1]}('{lo.isoformat()}') AND ts {high[0]} {high[1]}('{hi.isoformat()}')"
        )
    uuids = [literal("uuid", u) for u in draw(st.lists(strategy("uuid", nul=False), min_size=3, max_size=12))]
    for u in uuids:
        out.append(f"INSERT INTO {ks}.uu (pk, ck, v) VALUES ({pk}, {u}, 1) USING TIMESTAMP {stamp()}")
    for _ in range(2):
        a, b = draw(st.sampled_from(uuids)), draw(st.sampled_from(uuids))
        out.append(f"DELETE FROM {ks}.uu USING TIMESTAMP {stamp()} WHERE pk = {pk} AND ck > {a} AND ck <= {b}")
    for ck in range(3):
        ts = stamp()
        out.append(
            f'INSERT INTO {ks}.names (pk, "_ck", a, "a__t", "_t_a", "_live", "_del", "_v_a", "_a0", "_s", "__x") '
            f"VALUES ({pk}, {ck}, {draw(st.integers(-5, 5))}, {draw(st.integers(-5, 5))}, 'x{ck}', {ck}, "
            f"{{{ck}, 7}}, -{ck}.5, {ck}, {ck}, [{ck}]) USING TIMESTAMP {ts}"
        )
        out.append(f'UPDATE {ks}.names USING TIMESTAMP {ts} SET a = -7 WHERE pk = {pk} AND "_ck" = {ck}')
    out.append(f'DELETE "a__t", "_del" FROM {ks}.names USING TIMESTAMP {stamp()} WHERE pk = {pk} AND "_ck" = 1')
    out.append(f'DELETE FROM {ks}.names USING TIMESTAMP {stamp()} WHERE pk = {pk} AND "_ck" > 1')
    for minute in draw(st.sets(st.integers(0, 600), min_size=3, max_size=20)):
        out.append(
            f"INSERT INTO {ks}.series (pk, at, v) VALUES ({pk}, {1_700_000_000_000 + minute * 60_000}, "
            f"{literal('double', draw(strategy('double', nul=False)))}) USING TIMESTAMP {stamp()}"
        )
    for _ in range(2):
        lo = 1_700_000_000_000 + draw(st.integers(0, 600)) * 60_000
        out.append(
            f"DELETE FROM {ks}.series USING TIMESTAMP {stamp()} WHERE pk = {pk} "
            f"AND at >= {lo} AND at < {lo + draw(st.integers(1, 200)) * 60_000}"
        )
    return out


def _timeuuid_at(at: datetime.datetime, lsb: int) -> str:
    ticks = int(at.timestamp() * 1000) * 10_000 + 0x01B21DD213814000
    msb = ((ticks & 0xFFFFFFFF) << 32) | (((ticks >> 32) & 0xFFFF) << 16) | 0x1000 | ((ticks >> 48) & 0x0FFF)
    return str(uuid.UUID(int=(msb << 64) | lsb))


# -- comparing -----------------------------------------------------------------------------------------


def canon(value: Any, nested: bool = False) -> Any:
    """Floats by their bits (Cassandra keeps -0.0 and 0.0 apart, NaN equals itself), recursively.

    Inside composites (JSON in the destinations), whole floats compare as ints and -0.0 as 0.0:
    jsonb numbers have no negative zero and no float/int distinction (a display limit of
    collections and vectors, not an order: the rows stay apart by their comparable keys)."""
    if isinstance(value, float):
        if nested and math.isfinite(value) and value == int(value) and abs(value) < 2**53:
            return int(value)
        return struct.pack(">d", value)
    if nested and isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**53:
        return struct.pack(">d", float(value))  # jsonb prints whole floats as integers
    if isinstance(value, (tuple, list)):
        return tuple(canon(v, True) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), canon(v, True)) for k, v in value.items()))
    return value


Rows = dict[Any, Any]


def cassandra_rows(session: Any, table: TableSchema, convert: Any) -> Rows:
    keys = list(table.partition_key + table.clustering)
    columns = {name.decode(): c for name, c in table.columns.items() if c.current}
    out: Rows = {}
    result = session.execute(f'SELECT * FROM "{table.keyspace}"."{table.name}"')
    names = result.column_names  # by position: the driver renames columns like "_ck" in its rows
    for record in result:
        row = dict(zip(names, tuple(record), strict=True))
        key = canon(
            tuple(None if row[k.name] is None else convert(normalize(row[k.name], k.type), k.type) for k in keys)
        )
        out[key] = canon({n: convert(normalize(row[n], c.type), c.type) for n, c in columns.items()})
    return out


async def postgres_rows(dsn: str, schema: str, table: TableSchema) -> Rows:
    keys = [c.name for c in table.partition_key + table.clustering]
    columns = {name.decode(): c for name, c in table.columns.items() if c.current}
    conn = await asyncpg.connect(dsn)
    try:
        view = f'"{schema}"."{default_target(table.keyspace, table.name)}"'
        if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", view):
            return {}  # no event of this table reached the destination yet
        records = await conn.fetch(f"SELECT * FROM {view}")
    finally:
        await conn.close()
    key_types = {c.name: c.type for c in table.partition_key + table.clustering}
    out: Rows = {}
    for record in records:
        key = canon(
            tuple(
                json.loads(record[k]) if isinstance(record[k], str) and pg_type(key_types[k]) == "jsonb" else record[k]
                for k in keys
            )
        )
        assert key not in out, f"{table.name}: two rows for {key}"
        values = {}
        for name, column in columns.items():
            value = record[name]
            if isinstance(value, str) and pg_type(column.type) == "jsonb":
                value = json.loads(value)
            values[name] = value
        out[key] = canon(values)
    return out


def clickhouse_rows(client: Any, database: str, table: TableSchema) -> Rows:
    keys = list(table.partition_key + table.clustering)
    columns = {name.decode(): c for name, c in table.columns.items() if c.current}
    target = default_target(table.keyspace, table.name)
    if not client.command(f"EXISTS TABLE `{database}`.`{target}`"):
        return {}  # no event of this table reached the destination yet
    result = client.query(f"SELECT * FROM `{database}`.`{target}`", query_formats={"String": "bytes"})
    out: Rows = {}
    for record in result.named_results():
        key = canon(tuple(ch_read(record[k.name], k.type) for k in keys))
        assert key not in out, f"{table.name}: two rows for {key}"
        out[key] = canon({n: ch_read(record[n], c.type) for n, c in columns.items()})
    return out


def differences(name: str, expected: Rows, actual: Rows) -> list[str]:
    problems = [f"{name}: missing row {k}" for k in expected.keys() - actual.keys()]
    problems += [f"{name}: extra row {k}" for k in actual.keys() - expected.keys()]
    for k in expected.keys() & actual.keys():
        want, got = dict(expected[k]), dict(actual[k])
        problems += [f"{name} {k}.{c}: expected {want[c]!r}, got {got.get(c)!r}" for c in want if want[c] != got.get(c)]
    return problems


def _pg_expected(value: Any, cql: Any) -> Any:
    return None if value is None else pg_value(value, cql)


def _ch_expected(value: Any, cql: Any) -> Any:
    return ch_value(value, cql)


async def _deliver(sink: Any, events: list[ChangeEvent], table_of: Any, r: random.Random) -> None:
    await sink.start()
    try:
        i = 0
        while i < len(events):
            size = r.randint(1, 150)
            batch = events[i : i + size]
            i += size
            result = await sink.write(batch, table_of, max(e.position for e in batch))
            assert not result.dead, [d.error for d in result.dead][:3]
    finally:
        await sink.close()


# No shrinking, and fewer examples than the profile's: each example is a whole workload through
# three destinations (about a minute on two busy cores).
@settings(phases=(Phase.explicit, Phase.generate), max_examples=max(1, settings.default.max_examples // 2))
@given(data=st.data())
def test_every_destination_equals_select_star(
    oracle_lab: Lab,
    world: Destinations,
    postgres_dsn: str,
    timescaledb_dsn: str,
    clickhouse_client: Any,
    data: Any,
) -> None:
    begin_all = time.monotonic()
    pk = oracle_lab.partition()
    statements = _statements(data.draw, world.keyspace, pk)
    after = start_position(oracle_lab.cdc_raw)
    refusals: list[str] = []
    for statement in statements:
        # A slice Cassandra refuses (its start after its end) makes no mutation: nothing to compare.
        try:
            run(oracle_lab.session, statement)
        except InvalidRequest as exc:
            refusals.append(f"{statement}: {exc}")
    refused = len(refusals)
    unexpected = [r for r in refusals if not (r.startswith("DELETE") and "start" in r.lower())]
    assert not unexpected, unexpected[:3]
    registry = oracle_lab.registry
    events = read_events(oracle_lab.cdc_raw, registry, world.keyspace, after, include=lambda t: t.cdc)
    assert events

    def table_of(event: ChangeEvent) -> TableSchema | None:
        return registry.find(event.keyspace, event.table)

    r = random.Random(pk)
    shuffled = list(events)
    r.shuffle(shuffled)  # any order converges: write time, not arrival, decides

    async def deliver() -> None:
        for n, sink in enumerate(world.sinks):
            begin = time.monotonic()
            await _deliver(sink, shuffled if n % 2 else events, table_of, r)
            timings[sink.name] = time.monotonic() - begin

    timings: dict[str, float] = {"cassandra": time.monotonic() - begin_all}
    asyncio.run(deliver())
    begin = time.monotonic()
    problems: list[str] = []
    for name in world.tables:
        table = registry.find(world.keyspace, name)
        assert table is not None
        pg = asyncio.run(postgres_rows(postgres_dsn, world.pg_schema, table))
        problems += differences(f"postgres {name}", cassandra_rows(oracle_lab.session, table, _pg_expected), pg)
        problems += differences(
            f"clickhouse {name}",
            cassandra_rows(oracle_lab.session, table, _ch_expected),
            clickhouse_rows(clickhouse_client, world.ch_database, table),
        )
    series_table = registry.find(world.keyspace, "series")
    assert series_table is not None
    ts = asyncio.run(postgres_rows(timescaledb_dsn, world.pg_schema, series_table))
    problems += differences("timescaledb series", cassandra_rows(oracle_lab.session, series_table, _pg_expected), ts)
    timings["compare"] = time.monotonic() - begin
    print(f"{len(statements)} statements ({refused} refused), {len(events)} events; seconds: {timings}")
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:60])
