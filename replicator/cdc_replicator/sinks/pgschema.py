"""SQL for one table in Postgres (and TimescaleDB): base tables, merge statements, the view.

For a Cassandra table ``ks.t`` (target ``ks_t``) the destination schema holds:

``ks_t__rows``        one row per Cassandra row: key columns; ``_live``/``_live_x`` (row marker
                      write time and expiry, seconds); ``_del`` (row deletion time); per simple
                      column ``c`` (value, NULL = tombstone), ``c__t`` (write time, µs) and
                      ``c__x`` (expiry, s); per non-frozen collection/UDT ``c`` (jsonb
                      ``{element key: [write time, value, expiry]}``) and ``c__d`` (the column's
                      deletion time); per counter ``c`` (jsonb ``{replica id: [clock, total]}``),
                      ``c__t`` (newest write time) and ``c__d`` (counter tombstone time).
``ks_t__static``      the same for static columns, one row per partition.
``ks_t__partitions``  partition deletion time per partition key.
``ks_t__ranges``      range tombstones: partition key, bound prefixes (typed ``_s_<ck>`` /
                      ``_e_<ck>`` columns, ``_s_len``, ``_s_incl``...), deletion time.
``ks_t``              a view with Cassandra's current state: what ``SELECT *`` returns, applying
                      deletions, drop times and TTL expiry (at query time, so expired cells
                      disappear when they expire, with nothing to rewrite).

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

from cdc_replicator.sinks.layout import KeyColumn, TableLayout, ValueColumn
from cdc_replicator.sinks.pgtypes import pg_type

MIN_BIGINT = "(-9223372036854775808)::bigint"
NOW = "(extract(epoch FROM now()))::bigint"


def q(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def tbl(schema: str, name: str) -> str:
    return f"{q(schema)}.{q(name)}"


def functions(schema: str) -> list[str]:
    """Helper functions the merges and views use (created once per schema)."""
    s = q(schema)
    return [
        # Cassandra's resolveRegular on [timestamp, value, expiry] registers (null value = tombstone).
        f"""CREATE OR REPLACE FUNCTION {s}.cdc_rank(v jsonb, x jsonb) RETURNS int LANGUAGE sql IMMUTABLE AS
        $$ SELECT CASE WHEN v IS NULL OR v = 'null'::jsonb THEN 3 WHEN x IS NOT NULL AND x <> 'null'::jsonb
           THEN 2 ELSE 1 END $$""",
        f"""CREATE OR REPLACE FUNCTION {s}.cdc_cell_wins(n jsonb, o jsonb) RETURNS boolean LANGUAGE sql IMMUTABLE AS
        $$ SELECT CASE
             WHEN (n->>0)::bigint <> (o->>0)::bigint THEN (n->>0)::bigint > (o->>0)::bigint
             WHEN {s}.cdc_rank(n->1, n->2) <> {s}.cdc_rank(o->1, o->2)
               THEN {s}.cdc_rank(n->1, n->2) > {s}.cdc_rank(o->1, o->2)
             WHEN {s}.cdc_rank(n->1, n->2) = 2 THEN (n->>2)::bigint > (o->>2)::bigint
             WHEN {s}.cdc_rank(n->1, n->2) = 3 THEN false
             ELSE (n->1) > (o->1) END $$""",
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
        return [(name, pg_type(column.type)), (f"{name}__t", "bigint"), (f"{name}__x", "bigint")]
    if column.storage == "elements":
        return [(name, "jsonb"), (f"{name}__d", "bigint")]
    return [(name, "jsonb"), (f"{name}__t", "bigint"), (f"{name}__d", "bigint")]


def _keys(columns: tuple[KeyColumn, ...]) -> list[tuple[str, str]]:
    return [(c.name, pg_type(c.type, key=True)) for c in columns]


def rows_columns(layout: TableLayout) -> list[tuple[str, str]]:
    out = [*_keys(layout.key_columns), ("_live", "bigint"), ("_live_x", "bigint"), ("_del", "bigint")]
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
    out = [*_keys(layout.partition_key), ("_bound", "text")]
    for side in ("s", "e"):
        out.extend((f"_{side}_{c.name}", pg_type(c.type, key=True)) for c in layout.clustering)
        out.extend([(f"_{side}_len", "smallint"), (f"_{side}_incl", "boolean")])
    out.append(("_del", "bigint"))
    return out


def base_tables(layout: TableLayout) -> dict[str, tuple[list[tuple[str, str]], list[str]]]:
    """Base table name -> (columns with types, primary key)."""
    t = layout.target
    keys = [c.name for c in layout.key_columns]
    pks = [c.name for c in layout.partition_key]
    out = {
        f"{t}__rows": (rows_columns(layout), keys),
        f"{t}__partitions": (partition_columns(layout), pks),
    }
    if layout.statics:
        out[f"{t}__static"] = (static_columns(layout), pks)
    if layout.clustering:
        out[f"{t}__ranges"] = (range_columns(layout), [*pks, "_bound"])
    return out


def create_table(schema: str, name: str, columns: list[tuple[str, str]], key: list[str]) -> str:
    cols = ", ".join(f"{q(n)} {t}" + (" NOT NULL" if n in key else "") for n, t in columns)
    return f"CREATE TABLE IF NOT EXISTS {tbl(schema, name)} ({cols}, PRIMARY KEY ({', '.join(q(k) for k in key)}))"


def _register_wins(new: str, old: str, name: str, value_type: str) -> str:
    """SQL: the staged register ``new`` beats the stored one (Cassandra's resolveRegular)."""
    nv, nt, nx = f"{new}.{q(name)}", f"{new}.{q(name + '__t')}", f"{new}.{q(name + '__x')}"
    ov, ot, ox = f"{old}.{q(name)}", f"{old}.{q(name + '__t')}", f"{old}.{q(name + '__x')}"
    nr = f"(CASE WHEN {nv} IS NULL THEN 3 WHEN {nx} IS NOT NULL THEN 2 ELSE 1 END)"
    orank = f"(CASE WHEN {ov} IS NULL THEN 3 WHEN {ox} IS NOT NULL THEN 2 ELSE 1 END)"
    del value_type
    return (
        f"({nt} IS NOT NULL AND ({ot} IS NULL OR {nt} > {ot} OR ({nt} = {ot} AND ("
        f"{nr} > {orank} OR ({nr} = {orank} AND ("
        f"({nr} = 2 AND {nx} > {ox}) OR ({nr} = 1 AND {nv} > {ov})))))))"
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
            wins = _register_wins("EXCLUDED", "d", name, pg_type(column.type))
            for part in (name, f"{name}__t", f"{name}__x"):
                out.append(f"{q(part)} = CASE WHEN {wins} THEN EXCLUDED.{q(part)} ELSE d.{q(part)} END")
        elif column.storage == "elements":
            out.append(f"{q(name)} = {s}.cdc_merge_cells(d.{q(name)}, EXCLUDED.{q(name)})")
            out.append(f"{q(name + '__d')} = GREATEST(d.{q(name + '__d')}, EXCLUDED.{q(name + '__d')})")
        else:
            out.append(f"{q(name)} = {s}.cdc_merge_shards(d.{q(name)}, EXCLUDED.{q(name)})")
            for part in (f"{name}__t", f"{name}__d"):
                out.append(f"{q(part)} = GREATEST(d.{q(part)}, EXCLUDED.{q(part)})")
    return out


def merge_statement(schema: str, layout: TableLayout, kind: str, stage: str) -> str:
    """``INSERT … SELECT FROM stage ON CONFLICT DO UPDATE`` for one base table."""
    t = layout.target
    if kind == "rows":
        columns, key, sets = rows_columns(layout), layout.key_columns, _set_clauses(layout.regular, schema)
    elif kind == "static":
        columns, key, sets = static_columns(layout), layout.partition_key, _set_clauses(layout.statics, schema)
    elif kind == "partitions":
        columns, key, sets = partition_columns(layout), layout.partition_key, ["_del = GREATEST(d._del, EXCLUDED._del)"]
    else:
        columns = range_columns(layout)
        key = layout.partition_key
        sets = ["_del = GREATEST(d._del, EXCLUDED._del)"]
    names = ", ".join(q(n) for n, _ in columns)
    conflict = [q(c.name) for c in key] + (['"_bound"'] if kind == "ranges" else [])
    # Rows are locked in key order, so replicators of several nodes merging overlapping
    # batches into the same table wait for each other instead of deadlocking.
    return (
        f"INSERT INTO {tbl(schema, f'{t}__{kind}')} AS d ({names}) SELECT {names} FROM {q(stage)} "
        f"ORDER BY {', '.join(conflict)} ON CONFLICT ({', '.join(conflict)}) DO UPDATE SET {', '.join(sets)}"
    )


def stage_name(schema: str, base: str, columns: list[tuple[str, str]]) -> str:
    """A temp table per base table layout: a schema change gets a fresh stage."""
    digest = hashlib.md5(repr((schema, base, columns)).encode(), usedforsecurity=False).hexdigest()[:20]
    return f"cdc_stage_{digest}"


# -- the view ---------------------------------------------------------------------------------


def _bound_test(layout: TableLayout, side: str) -> str:
    """SQL: row ``r`` is past the start bound (side ``s``) / before the end bound (``e``) of ``g``."""
    clustering = layout.clustering
    cases = ["WHEN 0 THEN true"]
    for length in range(1, len(clustering) + 1):
        terms = []
        for i in range(length):
            c = clustering[i]
            ascending = not c.descending
            after = ascending if side == "s" else not ascending
            op = ">" if after else "<"
            eqs = [f"r.{q(clustering[j].name)} = g.{q(f'_{side}_{clustering[j].name}')}" for j in range(i)]
            terms.append("(" + " AND ".join([*eqs, f"r.{q(c.name)} {op} g.{q(f'_{side}_{c.name}')}"]) + ")")
        all_eq = [f"r.{q(clustering[j].name)} = g.{q(f'_{side}_{clustering[j].name}')}" for j in range(length)]
        terms.append("(" + " AND ".join([*all_eq, f"g.{q(f'_{side}_incl')}"]) + ")")
        cases.append(f"WHEN {length} THEN ({' OR '.join(terms)})")
    return f"(CASE g.{q(f'_{side}_len')} {' '.join(cases)} END)"


def _visible(column: ValueColumn, prefix: str, hidden: str, schema: str) -> str:
    s = q(schema)
    name = column.name
    floor = hidden if column.dropped_at is None else f"GREATEST({hidden}, {column.dropped_at}::bigint)"
    v = f"{prefix}.{q(name)}"
    if column.storage == "simple":
        return (
            f"CASE WHEN {prefix}.{q(name + '__t')} > coalesce({floor}, {MIN_BIGINT}) AND "
            f"({prefix}.{q(name + '__x')} IS NULL OR {prefix}.{q(name + '__x')} > {NOW}) THEN {v} END"
        )
    if column.storage == "counter":
        return (
            f"CASE WHEN {prefix}.{q(name + '__d')} IS NULL AND {prefix}.{q(name + '__t')} > "
            f"coalesce({floor}, {MIN_BIGINT}) THEN {s}.cdc_counter({v}) END"
        )
    element_floor = f"GREATEST({floor}, {prefix}.{q(name + '__d')})"
    if column.type.kind == "udt":
        empty = "{" + ", ".join(f'"{f}": null' for f in column.type.fields) + "}"
        return f"{s}.cdc_object({v}, {element_floor}, {NOW}, '{empty}'::jsonb)"
    return f"{s}.cdc_array({v}, {element_floor}, {NOW})"


def _shown(prefix: str, column: ValueColumn) -> str:
    """A view's output column: the visible value, or NULL for a hidden one (its flag is read only
    to decide whether the row exists)."""
    name = q(column.name)
    return f"NULL::{pg_type(column.type)} AS {name}" if column.hidden else f"{prefix}.{name}"


def view_statements(schema: str, layout: TableLayout) -> list[str]:
    """DROP and CREATE of the current-state view (``CREATE OR REPLACE`` cannot drop columns)."""
    t = layout.target
    pk_eq = " AND ".join(f"p.{q(c.name)} = r.{q(c.name)}" for c in layout.partition_key)
    hidden_parts = ["r._del", "p._del"]
    if layout.clustering:
        g_eq = " AND ".join(f"g.{q(c.name)} = r.{q(c.name)}" for c in layout.partition_key)
        hidden_parts.append(
            f"(SELECT max(g._del) FROM {tbl(schema, t + '__ranges')} g WHERE {g_eq} "
            f"AND {_bound_test(layout, 's')} AND {_bound_test(layout, 'e')})"
        )
    hidden = f"GREATEST({', '.join(hidden_parts)})"
    regular = [c for c in layout.regular if c.current]
    statics = [c for c in layout.statics if c.current]
    keys = [q(c.name) for c in layout.key_columns]
    pks = [q(c.name) for c in layout.partition_key]

    rv_cols = [f"r.{k}" for k in keys] + [f"{_visible(c, 'r', 'r._h', schema)} AS {q(c.name)}" for c in regular]
    alive = f"(r._live > coalesce(r._h, {MIN_BIGINT}) AND (r._live_x IS NULL OR r._live_x > {NOW}))"
    rv_cols.append(f"{alive} AS _alive")
    parts = [
        f"r AS (SELECT r.*, {hidden} AS _h FROM {tbl(schema, t + '__rows')} r "
        f"LEFT JOIN {tbl(schema, t + '__partitions')} p ON {pk_eq})",
        f"rv AS (SELECT {', '.join(rv_cols)} FROM r)",
    ]
    row_alive = " OR ".join(["rv._alive", *(f"rv.{q(c.name)} IS NOT NULL" for c in regular)])
    out_cols = [f"rv.{k}" for k in keys] + [_shown("rv", c) for c in regular]
    if statics:
        s_hidden = "GREATEST(r._del, p._del)"
        sv_cols = [f"r.{k}" for k in pks] + [f"{_visible(c, 'r', s_hidden, schema)} AS {q(c.name)}" for c in statics]
        parts.append(
            f"sv AS (SELECT {', '.join(sv_cols)} FROM {tbl(schema, t + '__static')} r "
            f"LEFT JOIN {tbl(schema, t + '__partitions')} p ON {pk_eq})"
        )
        sv_eq = " AND ".join(f"sv.{k} = rv.{k}" for k in pks)
        select_rows = (
            f"SELECT {', '.join([*out_cols, *(_shown('sv', c) for c in statics)])} "
            f"FROM rv LEFT JOIN sv ON {sv_eq} WHERE {row_alive}"
        )
        null_cols = [f"NULL::{pg_type(c.type, key=True)}" for c in layout.clustering] + [
            f"NULL::{pg_type(c.type)}" for c in regular
        ]
        any_static = " OR ".join(f"sv.{q(c.name)} IS NOT NULL" for c in statics)
        select_static = (
            f"SELECT {', '.join([*(f'sv.{k}' for k in pks), *null_cols, *(_shown('sv', c) for c in statics)])} "
            f"FROM sv WHERE ({any_static}) AND NOT EXISTS (SELECT 1 FROM rv WHERE {sv_eq} AND ({row_alive}))"
        )
        body = f"{select_rows} UNION ALL {select_static}"
    else:
        body = f"SELECT {', '.join(out_cols)} FROM rv WHERE {row_alive}"
    view = tbl(schema, t)
    return [f"DROP VIEW IF EXISTS {view}", f"CREATE VIEW {view} AS WITH {', '.join(parts)} {body}"]
