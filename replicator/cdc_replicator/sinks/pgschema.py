"""SQL for one table in Postgres (and TimescaleDB): base tables, merge statements, the view.

For a Cassandra table ``ks.t`` (target ``ks_t``) the destination schema holds (column names as in
``layout``: a Cassandra column ``c`` is stored as ``stored(c)``, its helpers are ``_t_c`` etc.):

``ks_t__rows``        one row per Cassandra row, keyed by the partition key and ``_ck``, the
                      clustering's byte-comparable form (``cql.comparable.ClusteringKey``: bytea
                      order is Cassandra's clustering order, DESC included); the clustering
                      columns typed and readable; ``_live``/``_live_x`` (row marker write time and
                      expiry, seconds); ``_del`` (row deletion time); per simple column ``c``
                      (value, NULL = tombstone), ``_t_c`` (write time, µs), ``_x_c`` (expiry, s)
                      and, where the typed value does not compare as Cassandra's serialized
                      bytes do, ``_v_c`` (those bytes: the tie-break at equal write times); per
                      non-frozen collection/UDT ``c`` (jsonb ``{element key: [write time, value,
                      expiry, value bytes hex]}``) and ``_d_c`` (the column's deletion time); per
                      counter ``c`` (jsonb ``{replica id: [clock, total]}``), ``_t_c`` (newest
                      write time) and ``_d_c`` (counter tombstone time).
``ks_t__static``      the same for static columns, one row per partition.
``ks_t__partitions``  partition deletion time per partition key.
``ks_t__ranges``      range tombstones: partition key, ``_s``/``_e`` (the bounds' comparable
                      forms, bound kinds included), deletion time. A row is covered exactly when
                      ``_s < _ck < _e``.
``ks_t``              a view with Cassandra's current state: what ``SELECT *`` returns, applying
                      deletions, drop times and TTL expiry (at query time, so expired cells
                      disappear when they expire, with nothing to rewrite).

Every base table is created with the comment ``layout.LAYOUT_MARK``; the sink refuses a table
carrying another (``postgres.PostgresSink._ensure``).

A column masked by ``null`` as a whole (*hidden*, ``layout.ValueColumn.hidden``) holds only
its cells' liveness (presence flags, or counter shards with zero counts; see
``cdc_replicator.masking.rules``) and is stored and merged as any column of its kind. The view
reads it to decide whether the row exists (a row written by ``UPDATE`` has no row marker and
lives through its cells, a counter table's rows always do) and shows the column as NULL.

Every merge is a per-column maximum or a last-writer-wins register compare, so it is
idempotent and commutative: replays and replica duplicates change nothing.
"""

# ruff: noqa: S608 - SQL is built from identifiers quoted by q(); values always travel as parameters
from __future__ import annotations

import hashlib
import json

from cdc_replicator.cql.types import CqlType
from cdc_replicator.sinks.layout import KeyColumn, TableLayout, ValueColumn, helper, stored
from cdc_replicator.sinks.pgtypes import pg_type

MIN_BIGINT = "(-9223372036854775808)::bigint"
NOW = "(extract(epoch FROM now()))::bigint"


def q(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def tbl(schema: str, name: str) -> str:
    return f"{q(schema)}.{q(name)}"


_BYTE_ORDERED = frozenset({"ascii", "text", "blob", "boolean", "uuid", "timeuuid", "date", "time"})
"""Types whose Postgres values compare as Cassandra's serialized bytes (text under ``COLLATE "C"``,
bytea, booleans, uuid (memcmp), date (days, serialized with the epoch at 2^31), time (non-negative
nanoseconds)): their registers need no ``_v_`` bytes."""


def needs_value_bytes(cql: CqlType) -> bool:
    """Whether a simple column of this type keeps its serialized bytes for ties (``_v_<c>``)."""
    return cql.kind not in _BYTE_ORDERED


def _c(name: str) -> str:
    """The quoted stored column of Cassandra column ``name``."""
    return q(stored(name))


def _h(part: str, name: str) -> str:
    """The quoted helper column ``part`` of Cassandra column ``name``."""
    return q(helper(part, name))


def functions(schema: str) -> list[str]:
    """Helper functions the merges and views use (created once per schema)."""
    s = q(schema)
    return [
        # Cassandra's resolveRegular on [timestamp, value, expiry] registers (null value = tombstone).
        # o: the register's value bytes (hex), null for a tombstone.
        f"""CREATE OR REPLACE FUNCTION {s}.cdc_rank(o jsonb, x jsonb) RETURNS int LANGUAGE sql IMMUTABLE AS
        $$ SELECT CASE WHEN o IS NULL OR o = 'null'::jsonb THEN 3 WHEN x IS NOT NULL AND x <> 'null'::jsonb
           THEN 2 ELSE 1 END $$""",
        f"""CREATE OR REPLACE FUNCTION {s}.cdc_cell_wins(n jsonb, o jsonb) RETURNS boolean LANGUAGE sql IMMUTABLE AS
        $$ SELECT CASE
             WHEN (n->>0)::bigint <> (o->>0)::bigint THEN (n->>0)::bigint > (o->>0)::bigint
             WHEN {s}.cdc_rank(n->3, n->2) <> {s}.cdc_rank(o->3, o->2)
               THEN {s}.cdc_rank(n->3, n->2) > {s}.cdc_rank(o->3, o->2)
             WHEN {s}.cdc_rank(n->3, n->2) = 2 AND (n->>2)::bigint <> (o->>2)::bigint
               THEN (n->>2)::bigint > (o->>2)::bigint
             WHEN {s}.cdc_rank(n->3, n->2) = 3 THEN false
             ELSE (n->>3) COLLATE "C" > (o->>3) COLLATE "C" END $$""",
        f"""CREATE OR REPLACE FUNCTION {s}.cdc_merge_cells(a jsonb, b jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS
        $$ SELECT CASE WHEN a IS NULL THEN b WHEN b IS NULL THEN a ELSE (
             SELECT jsonb_object_agg(k, CASE WHEN y IS NULL THEN x WHEN x IS NULL THEN y
                                             WHEN {s}.cdc_cell_wins(y, x) THEN y ELSE x END)
             FROM (SELECT coalesce(ea.key, eb.key) AS k, ea.value AS x, eb.value AS y
                   FROM jsonb_each(a) ea FULL JOIN jsonb_each(b) eb ON ea.key = eb.key) m) END $$""",
        f"""CREATE OR REPLACE FUNCTION {s}.cdc_merge_shards(a jsonb, b jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS
        $$ SELECT CASE WHEN a IS NULL THEN b WHEN b IS NULL THEN a ELSE (
             SELECT jsonb_object_agg(k, CASE WHEN y IS NULL THEN x WHEN x IS NULL THEN y
               WHEN ((y->>0)::numeric, (y->>1)::numeric) > ((x->>0)::numeric, (x->>1)::numeric) THEN y ELSE x END)
             FROM (SELECT coalesce(ea.key, eb.key) AS k, ea.value AS x, eb.value AS y
                   FROM jsonb_each(a) ea FULL JOIN jsonb_each(b) eb ON ea.key = eb.key) m) END $$""",
        f"""CREATE OR REPLACE FUNCTION {s}.cdc_counter(a jsonb) RETURNS bigint LANGUAGE sql IMMUTABLE AS
        $$ SELECT sum((value->>1)::numeric)::bigint FROM jsonb_each(a) $$""",
        f"""CREATE OR REPLACE FUNCTION {s}.cdc_live(cells jsonb, floor bigint, now_s bigint)
        RETURNS TABLE (k text, v jsonb) LANGUAGE sql STABLE AS
        $$ SELECT key, value->1 FROM jsonb_each(cells)
           WHERE (value->>0)::bigint > coalesce(floor, {MIN_BIGINT}) AND value->1 <> 'null'::jsonb
             AND (value->2 = 'null'::jsonb OR (value->>2)::bigint > now_s) $$""",
        f"""CREATE OR REPLACE FUNCTION {s}.cdc_array(cells jsonb, floor bigint, now_s bigint) RETURNS jsonb
        LANGUAGE sql STABLE AS
        $$ SELECT jsonb_agg(v ORDER BY k COLLATE "C") FROM {s}.cdc_live(cells, floor, now_s) $$""",
        f"""CREATE OR REPLACE FUNCTION {s}.cdc_object(cells jsonb, floor bigint, now_s bigint, empty jsonb)
        RETURNS jsonb LANGUAGE sql STABLE AS
        $$ SELECT empty || jsonb_object_agg(k, v) FROM {s}.cdc_live(cells, floor, now_s) $$""",
    ]


def infrastructure(schema: str) -> list[str]:
    """The offsets and dead-letter tables, and the helper functions."""
    return [
        f"CREATE SCHEMA IF NOT EXISTS {q(schema)}",
        f"""CREATE TABLE IF NOT EXISTS {tbl(schema, "cdc_offsets")} (
            pipeline text NOT NULL, node text NOT NULL, destination text NOT NULL,
            segment_id bigint NOT NULL, position bigint NOT NULL,
            events bigint NOT NULL DEFAULT 0, updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (pipeline, node, destination))""",
        f"""CREATE TABLE IF NOT EXISTS {tbl(schema, "cdc_dead_letters")} (
            id bigserial PRIMARY KEY, pipeline text NOT NULL, node text NOT NULL, destination text NOT NULL,
            keyspace text, "table" text, position text, event jsonb, error text NOT NULL,
            at timestamptz NOT NULL DEFAULT now())""",
        *functions(schema),
    ]


def _value_columns(column: ValueColumn) -> list[tuple[str, str]]:
    name = column.name
    if column.storage == "simple":
        out = [(stored(name), pg_type(column.type)), (helper("t", name), "bigint"), (helper("x", name), "bigint")]
        if needs_value_bytes(column.type):
            out.append((helper("v", name), "bytea"))
        return out
    if column.storage == "elements":
        return [(stored(name), "jsonb"), (helper("d", name), "bigint")]
    return [(stored(name), "jsonb"), (helper("t", name), "bigint"), (helper("d", name), "bigint")]


def _keys(columns: tuple[KeyColumn, ...]) -> list[tuple[str, str]]:
    return [(stored(c.name), pg_type(c.type, key=True)) for c in columns]


def rows_columns(layout: TableLayout) -> list[tuple[str, str]]:
    out = [
        *_keys(layout.partition_key),
        ("_ck", "bytea"),
        *_keys(layout.clustering),
        ("_live", "bigint"),
        ("_live_x", "bigint"),
        ("_del", "bigint"),
    ]
    for column in layout.regular:
        out.extend(_value_columns(column))
    return out


def static_columns(layout: TableLayout) -> list[tuple[str, str]]:
    out = [*_keys(layout.partition_key), ("_live", "bigint"), ("_live_x", "bigint"), ("_del", "bigint")]
    for column in layout.statics:
        out.extend(_value_columns(column))
    return out


def partition_columns(layout: TableLayout) -> list[tuple[str, str]]:
    return [*_keys(layout.partition_key), ("_del", "bigint")]


def range_columns(layout: TableLayout) -> list[tuple[str, str]]:
    return [*_keys(layout.partition_key), ("_s", "bytea"), ("_e", "bytea"), ("_del", "bigint")]


def row_key(layout: TableLayout, extra: tuple[str, ...] = ()) -> list[str]:
    """The rows table's primary key: partition key, ``_ck``, and ``extra`` Cassandra key columns
    (TimescaleDB needs its time column in every unique index)."""
    return [stored(c.name) for c in layout.partition_key] + ["_ck"] + [stored(n) for n in extra]


def base_tables(
    layout: TableLayout, extra_key: tuple[str, ...] = ()
) -> dict[str, tuple[list[tuple[str, str]], list[str]]]:
    """Base table name -> (columns with types, primary key)."""
    t = layout.target
    pks = [stored(c.name) for c in layout.partition_key]
    out = {
        f"{t}__rows": (rows_columns(layout), row_key(layout, extra_key)),
        f"{t}__partitions": (partition_columns(layout), pks),
    }
    if layout.statics:
        out[f"{t}__static"] = (static_columns(layout), pks)
    if layout.clustering:
        out[f"{t}__ranges"] = (range_columns(layout), [*pks, "_s", "_e"])
    return out


def create_table(schema: str, name: str, columns: list[tuple[str, str]], key: list[str]) -> str:
    cols = ", ".join(f"{q(n)} {t}" + (" NOT NULL" if n in key else "") for n, t in columns)
    return f"CREATE TABLE IF NOT EXISTS {tbl(schema, name)} ({cols}, PRIMARY KEY ({', '.join(q(k) for k in key)}))"


def _register_wins(new: str, old: str, column: ValueColumn) -> str:
    """SQL: the staged register ``new`` beats the stored one (``Cells.resolveRegular``): the later
    write time; at equal times tombstone > expiring > live, then the later expiry, then the
    greater serialized value (``_v_c`` bytes, or the typed value where it compares the same)."""
    name = column.name
    nv, nt, nx = f"{new}.{_c(name)}", f"{new}.{_h('t', name)}", f"{new}.{_h('x', name)}"
    ov, ot, ox = f"{old}.{_c(name)}", f"{old}.{_h('t', name)}", f"{old}.{_h('x', name)}"
    if needs_value_bytes(column.type):
        # The value bytes tell a tombstone (NULL) from a live cell whose value shows as NULL.
        nb, ob = f"{new}.{_h('v', name)}", f"{old}.{_h('v', name)}"
        greater, ndead, odead = f"{nb} > {ob}", f"{nb} IS NULL", f"{ob} IS NULL"
    elif pg_type(column.type) == "text":
        greater, ndead, odead = f'{nv} COLLATE "C" > {ov} COLLATE "C"', f"{nv} IS NULL", f"{ov} IS NULL"
    else:
        greater, ndead, odead = f"{nv} > {ov}", f"{nv} IS NULL", f"{ov} IS NULL"
    nr = f"(CASE WHEN {ndead} THEN 3 WHEN {nx} IS NOT NULL THEN 2 ELSE 1 END)"
    orank = f"(CASE WHEN {odead} THEN 3 WHEN {ox} IS NOT NULL THEN 2 ELSE 1 END)"
    return (
        f"({nt} IS NOT NULL AND ({ot} IS NULL OR {nt} > {ot} OR ({nt} = {ot} AND ("
        f"{nr} > {orank} OR ({nr} = {orank} AND ("
        f"({nr} = 2 AND {nx} > {ox}) OR ({nr} <> 3 AND ({nr} = 1 OR {nx} = {ox}) AND {greater})))))))"
    )


def _set_clauses(columns: tuple[ValueColumn, ...], schema: str) -> list[str]:
    s = q(schema)
    out = [
        "_del = GREATEST(d._del, EXCLUDED._del)",
    ]
    live_wins = (
        "(EXCLUDED._live IS NOT NULL AND (d._live IS NULL OR EXCLUDED._live > d._live OR "
        "(EXCLUDED._live = d._live AND EXCLUDED._live_x IS NOT NULL AND "
        "(d._live_x IS NULL OR EXCLUDED._live_x > d._live_x))))"
    )
    out.append(f"_live = CASE WHEN {live_wins} THEN EXCLUDED._live ELSE d._live END")
    out.append(f"_live_x = CASE WHEN {live_wins} THEN EXCLUDED._live_x ELSE d._live_x END")
    for column in columns:
        name = column.name
        if column.storage == "simple":
            wins = _register_wins("EXCLUDED", "d", column)
            parts = [stored(name), helper("t", name), helper("x", name)]
            if needs_value_bytes(column.type):
                parts.append(helper("v", name))
            for part in parts:
                out.append(f"{q(part)} = CASE WHEN {wins} THEN EXCLUDED.{q(part)} ELSE d.{q(part)} END")
        elif column.storage == "elements":
            out.append(f"{_c(name)} = {s}.cdc_merge_cells(d.{_c(name)}, EXCLUDED.{_c(name)})")
            out.append(f"{_h('d', name)} = GREATEST(d.{_h('d', name)}, EXCLUDED.{_h('d', name)})")
        else:
            out.append(f"{_c(name)} = {s}.cdc_merge_shards(d.{_c(name)}, EXCLUDED.{_c(name)})")
            for part in (helper("t", name), helper("d", name)):
                out.append(f"{q(part)} = GREATEST(d.{q(part)}, EXCLUDED.{q(part)})")
    return out


def merge_statement(schema: str, layout: TableLayout, kind: str, stage: str, extra_key: tuple[str, ...] = ()) -> str:
    """``INSERT … SELECT FROM stage ON CONFLICT DO UPDATE`` for one base table."""
    t = layout.target
    pks = [stored(c.name) for c in layout.partition_key]
    if kind == "rows":
        columns, conflict, sets = rows_columns(layout), row_key(layout, extra_key), _set_clauses(layout.regular, schema)
    elif kind == "static":
        columns, conflict, sets = static_columns(layout), pks, _set_clauses(layout.statics, schema)
    elif kind == "partitions":
        columns, conflict, sets = partition_columns(layout), pks, ["_del = GREATEST(d._del, EXCLUDED._del)"]
    else:
        columns, conflict = range_columns(layout), [*pks, "_s", "_e"]
        sets = ["_del = GREATEST(d._del, EXCLUDED._del)"]
    names = ", ".join(q(n) for n, _ in columns)
    keys = ", ".join(q(k) for k in conflict)
    # Rows are locked in key order, so replicators of several nodes merging overlapping
    # batches into the same table wait for each other instead of deadlocking.
    return (
        f"INSERT INTO {tbl(schema, f'{t}__{kind}')} AS d ({names}) SELECT {names} FROM {q(stage)} "
        f"ORDER BY {keys} ON CONFLICT ({keys}) DO UPDATE SET {', '.join(sets)}"
    )


def stage_name(schema: str, base: str, columns: list[tuple[str, str]]) -> str:
    """A temp table per base table layout: a schema change gets a fresh stage."""
    digest = hashlib.md5(repr((schema, base, columns)).encode(), usedforsecurity=False).hexdigest()[:20]
    return f"cdc_stage_{digest}"


# -- the view ---------------------------------------------------------------------------------


def range_covers(row: str, bound: str) -> str:
    """SQL: the range tombstone ``bound`` covers the row ``row`` (one comparison per end: the
    comparable forms hold prefixes and bound kinds, see ``cql.comparable.ClusteringKey``)."""
    return f"({bound}._s < {row}._ck AND {row}._ck < {bound}._e)"


def _visible(column: ValueColumn, prefix: str, hidden: str, schema: str) -> str:
    s = q(schema)
    name = column.name
    floor = hidden if column.dropped_at is None else f"GREATEST({hidden}, {column.dropped_at}::bigint)"
    v = f"{prefix}.{_c(name)}"
    if column.storage == "simple":
        return (
            f"CASE WHEN {prefix}.{_h('t', name)} > coalesce({floor}, {MIN_BIGINT}) AND "
            f"({prefix}.{_h('x', name)} IS NULL OR {prefix}.{_h('x', name)} > {NOW}) THEN {v} END"
        )
    if column.storage == "counter":
        return (
            f"CASE WHEN {prefix}.{_h('d', name)} IS NULL AND {prefix}.{_h('t', name)} > "
            f"coalesce({floor}, {MIN_BIGINT}) THEN {s}.cdc_counter({v}) END"
        )
    element_floor = f"GREATEST({floor}, {prefix}.{_h('d', name)})"
    if column.type.kind == "udt":
        empty = json.dumps(dict.fromkeys(column.type.fields), ensure_ascii=False).replace("'", "''")
        return f"{s}.cdc_object({v}, {element_floor}, {NOW}, '{empty}'::jsonb)"
    return f"{s}.cdc_array({v}, {element_floor}, {NOW})"


def _live_cell(column: ValueColumn, prefix: str, hidden: str) -> str | None:
    """SQL: the simple column's cell is live although its value may show as NULL (an empty
    value, such as an empty frozen collection, keeps a row alive in Cassandra). None where the
    value alone tells (types without value bytes)."""
    if column.storage != "simple" or not needs_value_bytes(column.type):
        return None
    name = column.name
    floor = hidden if column.dropped_at is None else f"GREATEST({hidden}, {column.dropped_at}::bigint)"
    return (
        f"({prefix}.{_h('v', name)} IS NOT NULL AND {prefix}.{_h('t', name)} > coalesce({floor}, {MIN_BIGINT}) AND "
        f"({prefix}.{_h('x', name)} IS NULL OR {prefix}.{_h('x', name)} > {NOW}))"
    )


def _shown(prefix: str, column: ValueColumn) -> str:
    """A view's output column under its Cassandra name: the visible value, or NULL for a hidden
    one (its flag is read only to decide whether the row exists)."""
    if column.hidden:
        return f"NULL::{pg_type(column.type)} AS {q(column.name)}"
    return f"{prefix}.{_c(column.name)} AS {q(column.name)}"


def view_statements(schema: str, layout: TableLayout) -> list[str]:
    """DROP and CREATE of the current-state view (``CREATE OR REPLACE`` cannot drop columns).

    Inside the view every column goes by its stored name; only the output is renamed to
    Cassandra's names, so helper and internal names can never meet a Cassandra column."""
    t = layout.target
    pk_eq = " AND ".join(f"p.{_c(c.name)} = r.{_c(c.name)}" for c in layout.partition_key)
    hidden_parts = ["r._del", "p._del"]
    if layout.clustering:
        g_eq = " AND ".join(f"g.{_c(c.name)} = r.{_c(c.name)}" for c in layout.partition_key)
        hidden_parts.append(
            f"(SELECT max(g._del) FROM {tbl(schema, t + '__ranges')} g WHERE {g_eq} AND {range_covers('r', 'g')})"
        )
    hidden = f"GREATEST({', '.join(hidden_parts)})"
    regular = [c for c in layout.regular if c.current]
    statics = [c for c in layout.statics if c.current]
    keys = [_c(c.name) for c in layout.key_columns]
    pks = [_c(c.name) for c in layout.partition_key]
    out_keys = [f"rv.{_c(c.name)} AS {q(c.name)}" for c in layout.key_columns]

    rv_cols = [f"r.{k}" for k in keys] + [f"{_visible(c, 'r', 'r._h', schema)} AS {_c(c.name)}" for c in regular]
    cell_alive = [f"rv.{_c(c.name)} IS NOT NULL" for c in regular]
    for n, column in enumerate(regular):
        live = _live_cell(column, "r", "r._h")
        if live is not None:
            rv_cols.append(f"{live} AS {q(f'_a{n}')}")
            cell_alive[n] = f"rv.{q(f'_a{n}')}"
    alive = f"(r._live > coalesce(r._h, {MIN_BIGINT}) AND (r._live_x IS NULL OR r._live_x > {NOW}))"
    rv_cols.append(f"{alive} AS _alive")
    parts = [
        f"r AS (SELECT r.*, {hidden} AS _h FROM {tbl(schema, t + '__rows')} r "
        f"LEFT JOIN {tbl(schema, t + '__partitions')} p ON {pk_eq})",
        f"rv AS (SELECT {', '.join(rv_cols)} FROM r)",
    ]
    row_alive = " OR ".join(["rv._alive", *cell_alive])
    out_cols = out_keys + [_shown("rv", c) for c in regular]
    if statics:
        s_hidden = "GREATEST(r._del, p._del)"
        sv_cols = [f"r.{k}" for k in pks] + [f"{_visible(c, 'r', s_hidden, schema)} AS {_c(c.name)}" for c in statics]
        parts.append(
            f"sv AS (SELECT {', '.join(sv_cols)} FROM {tbl(schema, t + '__static')} r "
            f"LEFT JOIN {tbl(schema, t + '__partitions')} p ON {pk_eq})"
        )
        sv_eq = " AND ".join(f"sv.{k} = rv.{k}" for k in pks)
        select_rows = (
            f"SELECT {', '.join([*out_cols, *(_shown('sv', c) for c in statics)])} "
            f"FROM rv LEFT JOIN sv ON {sv_eq} WHERE {row_alive}"
        )
        null_cols = [f"NULL::{pg_type(c.type, key=True)} AS {q(c.name)}" for c in layout.clustering] + [
            f"NULL::{pg_type(c.type)} AS {q(c.name)}" for c in regular
        ]
        any_static = " OR ".join(f"sv.{_c(c.name)} IS NOT NULL" for c in statics)
        static_keys = [f"sv.{_c(c.name)} AS {q(c.name)}" for c in layout.partition_key]
        select_static = (
            f"SELECT {', '.join([*static_keys, *null_cols, *(_shown('sv', c) for c in statics)])} "
            f"FROM sv WHERE ({any_static}) AND NOT EXISTS (SELECT 1 FROM rv WHERE {sv_eq} AND ({row_alive}))"
        )
        body = f"{select_rows} UNION ALL {select_static}"
    else:
        body = f"SELECT {', '.join(out_cols)} FROM rv WHERE {row_alive}"
    view = tbl(schema, t)
    return [f"DROP VIEW IF EXISTS {view}", f"CREATE VIEW {view} AS WITH {', '.join(parts)} {body}"]
