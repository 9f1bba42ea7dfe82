"""Every CQL type, with edge values, decodes to what cassandra-driver's SELECT returns.

Not here: ``vector<frozen<udt>>``. cassandra-driver 3.30 cannot read it back
(``'int' object has no attribute 'cassname'``), and on Cassandra 5.0.6 an ``ALTER TYPE``
of a UDT used inside a vector wedges every later schema change in the cluster
("Column mismatch (found v; expected v)") until the table is dropped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cdc_replicator.cql.jsonmap import event_to_json
from cdc_replicator.schema.registry import SchemaRegistry

from tests.integration.commitlog import fixtures
from tests.integration.commitlog.helpers import only, run, start_position, wait_for_events
from tests.integration.commitlog.model import TableModel, select_all, top

pytestmark = pytest.mark.integration
cdc_raw, keyspace, registry = fixtures.cdc_raw, fixtures.keyspace, fixtures.registry

COLUMNS = {
    "a_ascii": ("ascii", ["''", "'plain ascii ''quoted'''"]),
    "a_text": ("text", ["'ünïcødé 🙂'", "''"]),
    "a_blob": ("blob", ["0x", "0x00ff10"]),
    "a_bool": ("boolean", ["false", "true"]),
    "a_tinyint": ("tinyint", ["-128", "127"]),
    "a_smallint": ("smallint", ["32767", "-32768"]),
    "a_int": ("int", ["-2147483648", "blobAsInt(0x)"]),
    "a_bigint": ("bigint", ["9223372036854775807", "-9223372036854775808"]),
    "a_varint": ("varint", ["-123456789012345678901234567890", "0"]),
    "a_decimal": ("decimal", ["-0.000001", "1E+20"]),
    "a_float": ("float", ["Infinity", "-0.0"]),
    "a_double": ("double", ["-Infinity", "1.7976931348623157E308"]),
    "a_date": ("date", ["'1970-01-01'", "'9999-12-31'"]),
    "a_time": ("time", ["'23:59:59.999999999'", "'00:00:00'"]),
    "a_timestamp": ("timestamp", ["'1900-01-01 00:00:00.001+0000'", "253402300799999"]),
    "a_duration": ("duration", ["-1mo2d3ns", "P1Y2M3DT4H5M6S"]),
    "a_uuid": ("uuid", ["00000000-0000-0000-0000-000000000000", "ffffffff-ffff-4fff-bfff-ffffffffffff"]),
    "a_timeuuid": ("timeuuid", ["now()", "d2177dd0-eaa2-11de-a572-001b779c76e3"]),
    "a_inet": ("inet", ["'::1'", "'255.255.255.255'"]),
    "f_tuple": ("frozen<tuple<int, text, frozen<list<int>>>>", ["(null, 'x', [1])", "(1, null, null)"]),
    "f_udt": ("frozen<pt>", ["{x: 1}", "{x: null, y: 'why'}"]),
    "u_udt": ("pt", ["{y: 'y'}", "{x: 5, y: 'z'}"]),
    "l_nested": ("list<frozen<map<int, frozen<set<text>>>>>", ["[{1: {'a', 'b'}}, {}]", "[{2: {}}]"]),
    "s_uuid": ("set<uuid>", ["{00000000-0000-0000-0000-000000000001}", "{ffffffff-ffff-4fff-bfff-ffffffffffff}"]),
    "m_udt": ("map<text, frozen<pt>>", ["{'k': {x: 2, y: 'v'}}", "{'': {y: ''}}"]),
    "l_udt": ("list<frozen<pt>>", ["[{x: 1}, {x: 2}]", "[{y: 'only y'}]"]),
    "v_float": ("vector<float, 3>", ["[1.5, -2.25, 0]", "[0, 0, 0]"]),
    "v_text": ("vector<text, 2>", ["['a', '']", "['ü', 'long text']"]),
}
CLUSTERING = "c_text text, c_bigint bigint, c_uuid timeuuid, c_tuple frozen<tuple<int, text>>"


def test_every_type_matches_select(cql_session: Any, keyspace: str, cdc_raw: Path, registry: SchemaRegistry) -> None:
    run(cql_session, f"CREATE TYPE {keyspace}.pt (x int, y text)")
    columns = ", ".join(f"{name} {cql}" for name, (cql, _) in COLUMNS.items())
    run(
        cql_session,
        f"CREATE TABLE {keyspace}.types (pk int, {CLUSTERING}, {columns}, "
        "PRIMARY KEY (pk, c_text, c_bigint, c_uuid, c_tuple)) WITH cdc = true AND "
        "CLUSTERING ORDER BY (c_text DESC, c_bigint DESC, c_uuid ASC, c_tuple DESC)",
    )
    after = start_position(cdc_raw)
    names = ", ".join(COLUMNS)
    for i in range(2):
        values = ", ".join(literals[i] for _, literals in COLUMNS.values())
        run(
            cql_session,
            f"INSERT INTO {keyspace}.types (pk, c_text, c_bigint, c_uuid, c_tuple, {names}) "
            f"VALUES (1, 'k{i}', {-i}, now(), ({i}, 'é'), {values})",
        )
    # A UDT field added later: values written before it hold fewer fields.
    run(cql_session, f"ALTER TYPE {keyspace}.pt ADD z bigint")
    run(
        cql_session,
        f"INSERT INTO {keyspace}.types (pk, c_text, c_bigint, c_uuid, c_tuple, f_udt, u_udt) "
        "VALUES (2, '', 0, now(), (0, ''), {x: 1, z: 3}, {z: 4})",
    )
    registry.refresh(force=True)
    events = only(
        wait_for_events(cdc_raw, registry, keyspace, after, lambda evs: len(only(evs, "types")) >= 3), "types"
    )
    table = registry.find(keyspace, "types")
    assert table is not None
    model = TableModel(table)
    for event in events:
        model.apply(event)
        json.dumps(event_to_json(event), allow_nan=False)  # the JSON mapping covers every value
    expected = select_all(cql_session, table)
    actual = model.rows()
    assert sorted(actual, key=repr) == sorted(expected, key=repr)
    for key, row in expected.items():
        assert {c: top(v) for c, v in actual[key].items()} == {c: top(v) for c, v in row.items()}, key
