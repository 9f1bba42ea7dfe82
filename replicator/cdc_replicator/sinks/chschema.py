"""SQL for one table in ClickHouse: tables that converge by the engine's own merge, and a view.

For ``ks.t`` (target ``ks_t``), all ``AggregatingMergeTree`` with ``SimpleAggregateFunction(max, …)``
columns, so every insert order, duplicate and replay merges to the same state (column names as in
``layout``: a Cassandra column ``c`` is stored as ``stored(c)``, its helpers are ``_d_c`` etc.):

``ks_t__rows``        sort key = partition key, ``_static`` (1 for the static row) and ``_ck``, the
                      clustering's byte-comparable form (``cql.comparable.ClusteringKey``: String
                      order is Cassandra's clustering order, DESC included); the clustering
                      columns typed (``any``; NULL in the static row). ``_live`` = max of (write
                      time, expiring, expiry); ``_del`` = max row deletion time; per simple column
                      ``c`` the max of ``(write time, rank, expiry, value bytes, value)`` — rank 3
                      tombstone, 2 expiring, 1 live, then Cassandra's serialized value bytes as hex (empty
                      where the typed value compares the same: String, Bool), so tuple order *is*
                      ``Cells.resolveRegular``; per non-frozen collection/UDT ``_d_c``, the column's
                      deletion time.
``ks_t__elements``    (row key, column, element key) -> max ``(write time, rank, expiry, value
                      bytes, JSON value)``; element keys are the hex of the path's comparable form.
``ks_t__counters``    (row key, column, replica id) -> max ``(clock, running total)``; two pseudo
                      replica ids per counter column hold ``(newest write time, 0)`` and
                      ``(tombstone time, 0)``: a row, range or partition deletion hides the
                      counter if at or after its newest write, a counter tombstone always.
``ks_t__partitions``  partition deletion times.
``ks_t__ranges``      range tombstones by ``_s``/``_e``, the bounds' comparable forms (bound
                      kinds included): a row is covered exactly when ``_s < _ck < _e``.
``ks_t``              a view with the current rows (``GROUP BY`` + ``max``, never ``FINAL``),
                      applying deletions, drop times and TTL expiry at query time.

Every base table carries the comment ``layout.LAYOUT_MARK``; the sink refuses a table carrying
another (``clickhouse.ClickHouseSink._ensure``).

A column masked by ``null`` as a whole (*hidden*, ``layout.ValueColumn.hidden``) holds only
its cells' liveness (presence flags, or counter shards with zero counts; see
``cdc_replicator.masking.rules``) and is stored and merged as any column of its kind: the view
reads it to decide whether the row exists, and shows the column as a typed NULL.

Write timestamps are assumed positive (0 means "none" in defaults), as clients' are.
"""

# ruff: noqa: S608 - SQL is built from identifiers quoted by q(); values travel as insert data
from __future__ import annotations

import json

from cdc_replicator.cql.types import CqlType
from cdc_replicator.sinks.chtypes import ch_type
from cdc_replicator.sinks.layout import LAYOUT_MARK, KeyColumn, TableLayout, ValueColumn, helper, stored

NOW = "toInt64(toUnixTimestamp(now()))"
COUNTER_TIME = "_time"
"""Pseudo replica id in ``__counters``: the counter column's newest write time."""
COUNTER_DELETION = "_deleted"
"""Pseudo replica id in ``__counters``: the counter column's tombstone (``DELETE c FROM``)."""
ENGINE = (
    "ENGINE = AggregatingMergeTree ORDER BY ({order}) "
    "SETTINGS non_replicated_deduplication_window = 1000, allow_nullable_key = 0"
)


def q(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def lit(text: str) -> str:
    """A ClickHouse string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _c(name: str) -> str:
    return q(stored(name))


_BYTE_ORDERED = frozenset({"ascii", "text", "blob", "boolean"})
"""Types whose ClickHouse values compare as Cassandra's serialized bytes (String, Bool; not UUID,
whose halves ClickHouse compares as integers)."""


def needs_value_bytes(cql: CqlType) -> bool:
    """Whether a register of this type carries its serialized bytes (else an empty String)."""
    return cql.kind not in _BYTE_ORDERED


def register_type(value_type: str) -> str:
    return f"SimpleAggregateFunction(max, Tuple(Int64, UInt8, Int64, String, Nullable({value_type})))"


def _keys(columns: tuple[KeyColumn, ...]) -> list[tuple[str, str]]:
    return [(stored(c.name), ch_type(c.type)) for c in columns]


def row_key(layout: TableLayout) -> list[tuple[str, str]]:
    return [*_keys(layout.partition_key), ("_static", "UInt8"), ("_ck", "String")]


def rows_columns(layout: TableLayout) -> list[tuple[str, str]]:
    out = [
        *row_key(layout),
        *((stored(c.name), f"SimpleAggregateFunction(any, Nullable({ch_type(c.type)}))") for c in layout.clustering),
        ("_live", "SimpleAggregateFunction(max, Tuple(Int64, UInt8, Int64))"),
        ("_del", "SimpleAggregateFunction(max, Int64)"),
    ]
    for column in layout.columns:
        if column.storage == "simple":
            out.append((stored(column.name), register_type(ch_type(column.type))))
        elif column.storage == "elements":
            out.append((helper("d", column.name), "SimpleAggregateFunction(max, Int64)"))
    return out


def tables(layout: TableLayout) -> dict[str, tuple[list[tuple[str, str]], list[str]]]:
    """Base table -> (columns, sort key)."""
    t = layout.target
    key = row_key(layout)
    key_names = [n for n, _ in key]
    pks = [stored(c.name) for c in layout.partition_key]
    return {
        f"{t}__rows": (rows_columns(layout), key_names),
        f"{t}__elements": (
            [*key, ("_column", "String"), ("_key", "String"), ("_cell", register_type("String"))],
            [*key_names, "_column", "_key"],
        ),
        f"{t}__counters": (
            [
                *key,
                ("_column", "String"),
                ("_id", "String"),
                ("_shard", "SimpleAggregateFunction(max, Tuple(Int64, Int64))"),
            ],
            [*key_names, "_column", "_id"],
        ),
        f"{t}__partitions": (
            [*_keys(layout.partition_key), ("_del", "SimpleAggregateFunction(max, Int64)")],
            pks,
        ),
        f"{t}__ranges": (
            [
                *_keys(layout.partition_key),
                ("_s", "String"),
                ("_e", "String"),
                ("_del", "SimpleAggregateFunction(max, Int64)"),
            ],
            [*pks, "_s", "_e"],
        ),
    }


def create_table(database: str, name: str, columns: list[tuple[str, str]], order: list[str]) -> str:
    cols = ", ".join(f"{q(n)} {t}" for n, t in columns)
    return (
        f"CREATE TABLE IF NOT EXISTS {q(database)}.{q(name)} ({cols}) "
        + ENGINE.format(order=", ".join(q(o) for o in order))
        + f" COMMENT {lit(LAYOUT_MARK)}"
    )


def infrastructure(database: str) -> list[str]:
    return [
        f"CREATE DATABASE IF NOT EXISTS {q(database)}",
        f"CREATE TABLE IF NOT EXISTS {q(database)}.cdc_offsets (pipeline String, node String, destination String, "
        "position SimpleAggregateFunction(max, Tuple(Int64, Int64))) "
        "ENGINE = AggregatingMergeTree ORDER BY (pipeline, node, destination)",
        f"CREATE TABLE IF NOT EXISTS {q(database)}.cdc_dead_letters (pipeline String, node String, "
        "destination String, keyspace String, `table` String, position String, event String, error String, "
        "at DateTime64(3, 'UTC') DEFAULT now64(3)) ENGINE = MergeTree ORDER BY (pipeline, node, at)",
    ]


# -- the view ---------------------------------------------------------------------------------


def range_covers(row: str, bound: str) -> str:
    """SQL: the range tombstone ``bound`` covers the row ``row`` (see ``pgschema.range_covers``)."""
    return f"({bound}._s < {row}._ck AND {row}._ck < {bound}._e)"


def _floor(column: ValueColumn, hidden: str) -> str:
    return hidden if column.dropped_at is None else f"greatest({hidden}, toInt64({column.dropped_at}))"


def _shown(prefix: str, column: ValueColumn) -> str:
    """A view's output column under its Cassandra name: the visible value, or NULL for a hidden
    one (its flag is read only to decide whether the row exists)."""
    name = q(column.name)
    if column.hidden:
        return f"CAST(NULL AS Nullable({ch_type(column.type)})) AS {name}"
    return f"{prefix}.{_c(column.name)} AS {name}"


def view_statements(database: str, layout: TableLayout) -> list[str]:  # noqa: PLR0912, PLR0915 - one SQL part each
    """The current-state view. Inside it every column goes by its stored name; only the output is
    renamed to Cassandra's names, so helper and internal names can never meet a Cassandra column."""
    d = q(database)
    t = layout.target

    def base(kind: str) -> str:
        return f"{d}.{q(f'{t}__{kind}')}"

    pk = [_c(c.name) for c in layout.partition_key]
    ck = [_c(c.name) for c in layout.clustering]
    keys = [*pk, "`_static`", "`_ck`"]
    regular = [c for c in layout.regular if c.current]
    statics = [c for c in layout.statics if c.current]
    row_cols = rows_columns(layout)
    key_names = {n for n, _ in row_key(layout)}
    typed_ck = {stored(c.name) for c in layout.clustering}
    aggregated = ", ".join(
        f"{'any' if n in typed_ck else 'max'}({q(n)}) AS {q(n)}" for n, _ in row_cols if n not in key_names
    )
    agg_names = keys + [q(n) for n, _ in row_cols if n not in key_names]
    parts = [
        f"agg AS (SELECT {', '.join(keys)}, {aggregated} FROM {base('rows')} GROUP BY {', '.join(keys)})",
        f"pd AS (SELECT {', '.join(pk)}, max(_del) AS _pdel FROM {base('partitions')} GROUP BY {', '.join(pk)})",
    ]
    if layout.clustering:
        pk_eq = " AND ".join(f"r.{k} = g.{k}" for k in pk)
        parts.append(
            f"rg AS (SELECT {', '.join(pk)}, _s, _e, max(_del) AS _gdel FROM {base('ranges')} "
            f"GROUP BY {', '.join(pk)}, _s, _e)"
        )
        row_ident = [*pk, "`_ck`"]
        parts.append(
            f"rc AS (SELECT {', '.join(f'r.{k} AS {k}' for k in row_ident)}, max(g._gdel) AS _rdel "
            f"FROM (SELECT DISTINCT {', '.join(row_ident)} FROM {base('rows')} WHERE _static = 0) r "
            f"INNER JOIN rg g ON {pk_eq} WHERE {range_covers('r', 'g')} "
            f"GROUP BY {', '.join(f'r.{k}' for k in row_ident)})"
        )
        rc_join = "LEFT JOIN rc ON " + " AND ".join(f"a.{k} = rc.{k}" for k in row_ident) + " AND a._static = 0"
        rdel = "rc._rdel"
    else:
        rc_join, rdel = "", "0"
    parts.append(
        f"h AS (SELECT {', '.join(f'a.{k} AS {k}' for k in agg_names)}, "
        f"greatest(a._del, pd._pdel, {rdel}) AS _h FROM agg a "
        f"LEFT JOIN pd ON {' AND '.join(f'a.{k} = pd.{k}' for k in pk)} {rc_join})"
    )
    multi = [c for c in layout.columns if c.storage == "elements"]
    if multi:
        floors = []
        for c in multi:
            deletion = f"h.{q(helper('d', c.name))}"
            floors.append(f"e._column = {lit(c.name)}, {_floor(c, f'greatest(h._h, {deletion})')}")
        floor = f"multiIf({', '.join(floors)}, h._h)"
        parts.append(
            f"el AS (SELECT {', '.join(keys)}, _column, _key, max(_cell) AS _cell FROM {base('elements')} "
            f"GROUP BY {', '.join(keys)}, _column, _key)"
        )
        parts.append(
            f"c AS (SELECT {', '.join(f'e.{k} AS {k}' for k in keys)}, e._column AS _column, "
            "arraySort(x -> x.1, groupArray((e._key, assumeNotNull(e._cell.5)))) AS _pairs "
            f"FROM el e INNER JOIN h ON {' AND '.join(f'h.{k} = e.{k}' for k in keys)} "
            f"WHERE e._cell.1 > {floor} AND e._cell.2 IN (1, 2) AND (e._cell.2 = 1 OR e._cell.3 > {NOW}) "
            f"GROUP BY {', '.join(f'e.{k}' for k in keys)}, e._column)"
        )
    counters = [c for c in layout.columns if c.storage == "counter"]
    if counters:
        pseudo = f"({lit(COUNTER_TIME)}, {lit(COUNTER_DELETION)})"
        parts.append(
            f"ct AS (SELECT {', '.join(keys)}, _column, sumIf(_shard.2, _id NOT IN {pseudo}) AS _total, "
            f"maxIf(_shard.1, _id = {lit(COUNTER_TIME)}) AS _time, "
            f"maxIf(_shard.1, _id = {lit(COUNTER_DELETION)}) AS _cdel "
            f"FROM (SELECT {', '.join(keys)}, _column, _id, max(_shard) AS _shard FROM {base('counters')} "
            f"GROUP BY {', '.join(keys)}, _column, _id) GROUP BY {', '.join(keys)}, _column)"
        )

    joins: list[str] = []
    selects: dict[str, str] = {}
    flags: dict[str, str] = {}
    """Simple columns: whether the cell is live (its value may show as NULL: an empty value, such
    as an empty frozen collection, is live and keeps its row alive, as in Cassandra)."""
    for n, column in enumerate(layout.columns):
        if not column.current:
            continue
        name = _c(column.name)
        if column.storage == "simple":
            live = (
                f"(h.{name}.1 > {_floor(column, 'h._h')} AND h.{name}.2 IN (1, 2) AND "
                f"(h.{name}.2 = 1 OR h.{name}.3 > {NOW}))"
            )
            selects[column.name] = f"if({live}, h.{name}.5, NULL)"
            flags[column.name] = f"{live} AS {q(f'_a{n}')}"
        elif column.storage == "elements":
            alias = f"j{n}"
            joins.append(
                f"LEFT JOIN (SELECT * FROM c WHERE _column = {lit(column.name)}) {alias} ON "
                + " AND ".join(f"{alias}.{k} = h.{k}" for k in keys)
            )
            pairs = f"{alias}._pairs"
            if column.type.kind == "udt":
                fields = []
                for field_name in column.type.fields:
                    label = json.dumps(field_name, ensure_ascii=False)
                    lookup = f"arrayFirst(p -> p.1 = {lit(field_name)}, {pairs}).2"
                    fields.append(
                        f"{lit(label + ':')}, if(has(arrayMap(p -> p.1, {pairs}), {lit(field_name)}), {lookup}, 'null')"
                    )
                body = ", ',', ".join(fields)
                rendered = f"concat('{{', {body}, '}}')"
            else:
                rendered = f"concat('[', arrayStringConcat(arrayMap(p -> p.2, {pairs}), ','), ']')"
            selects[column.name] = f"if(notEmpty({pairs}), {rendered}, NULL)"
        else:
            alias = f"j{n}"
            joins.append(
                f"LEFT JOIN (SELECT * FROM ct WHERE _column = {lit(column.name)}) {alias} ON "
                + " AND ".join(f"{alias}.{k} = h.{k}" for k in keys)
            )
            gone = f"{alias}._column = '' OR {alias}._cdel != 0 OR {alias}._time <= {_floor(column, 'h._h')}"
            selects[column.name] = f"if({gone}, NULL, toNullable({alias}._total))"
    alive = f"(h._live.1 > h._h AND (h._live.2 = 0 OR h._live.3 > {NOW}))"
    vis_cols = [f"h.{k} AS {k}" for k in [*keys, *ck]] + [f"{expr} AS {_c(name)}" for name, expr in selects.items()]
    vis_cols += flags.values()
    parts.append(f"vis AS (SELECT {', '.join(vis_cols)}, {alive} AS _alive FROM h {' '.join(joins)})")
    slot = {c.name: n for n, c in enumerate(layout.columns)}
    row_alive = " OR ".join(
        [
            "r._alive",
            *(f"r.{q(f'_a{slot[c.name]}')}" if c.name in flags else f"r.{_c(c.name)} IS NOT NULL" for c in regular),
        ]
    )
    out_regular = [_shown("r", c) for c in regular]
    out_keys = [f"r.{_c(c.name)} AS {q(c.name)}" for c in layout.key_columns]
    if statics:
        s_eq = " AND ".join(f"s.{k} = r.{k}" for k in pk)
        static_cols = [_shown("s", c) for c in statics]
        rows_part = (
            f"SELECT {', '.join([*out_keys, *out_regular, *static_cols])} FROM (SELECT * FROM vis WHERE _static = 0) r "
            f"LEFT JOIN (SELECT * FROM vis WHERE _static = 1) s ON {s_eq} WHERE {row_alive}"
        )
        any_static = " OR ".join(f"s.{_c(c.name)} IS NOT NULL" for c in statics)
        null_ck = [f"CAST(NULL AS Nullable({ch_type(c.type)})) AS {q(c.name)}" for c in layout.clustering]
        null_regular = [f"NULL AS {q(c.name)}" for c in regular]
        alive_pks = f"(SELECT {', '.join(f'r.{k}' for k in pk)} FROM vis r WHERE r._static = 0 AND ({row_alive}))"
        pk_tuple = f"({', '.join(f's.{k}' for k in pk)})" if len(pk) > 1 else f"s.{pk[0]}"
        static_keys = [f"s.{_c(c.name)} AS {q(c.name)}" for c in layout.partition_key]
        static_part = (
            f"SELECT {', '.join([*static_keys, *null_ck, *null_regular, *static_cols])} "
            f"FROM vis s WHERE s._static = 1 AND ({any_static}) AND {pk_tuple} NOT IN {alive_pks}"
        )
        body = f"{rows_part} UNION ALL {static_part}"
    else:
        body = f"SELECT {', '.join([*out_keys, *out_regular])} FROM vis r WHERE r._static = 0 AND ({row_alive})"
    view = f"{d}.{q(t)}"
    # One atomic statement: replicators of several nodes may recreate the view at the same time.
    return [f"CREATE OR REPLACE VIEW {view} AS WITH {', '.join(parts)} {body} SETTINGS join_use_nulls = 0"]
