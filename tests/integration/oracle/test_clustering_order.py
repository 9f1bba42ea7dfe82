"""Cassandra's clustering order is the byte order of ``cql.comparable``'s forms, for every type.

For each type that can be a clustering column, ASC and DESC: random values (edge values weighted
in: min/max uuids, minTimeuuid/maxTimeuuid at equal times, 1.0 vs 1.00, huge varints, -0.0, NaN,
empty blobs and strings, non-ASCII text, nested frozen collections, tuples, UDTs, vectors) are
inserted into the real Cassandra, decoded back from its commitlog by the project's decoder, and
their ``ClusteringKey`` forms must sort exactly as ``SELECT`` returns the rows, with equal forms
exactly where Cassandra merged two writes into one row.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from cdc_replicator.cql.comparable import ClusteringKey
from cdc_replicator.sinks.layout import layout_for
from hypothesis import given
from hypothesis import strategies as st

from tests.integration.commitlog.helpers import run, unique_keyspace
from tests.integration.oracle.conftest import Lab
from tests.integration.oracle.values import CLUSTERABLE, UDT_DDL, Raw, literal, strategy

pytestmark = pytest.mark.integration
ORDERS = ("asc", "desc")


@pytest.fixture(scope="module")
def keyspace(oracle_lab: Lab) -> Iterator[str]:
    ks = unique_keyspace("oracle_order")
    session = oracle_lab.session
    run(session, f"CREATE KEYSPACE {ks} WITH replication = {oracle_lab.replication}")
    run(session, UDT_DDL.format(ks=ks))
    for cql, name in CLUSTERABLE.items():
        for order in ORDERS:
            run(
                session,
                f"CREATE TABLE {ks}.{name}_{order} (pk int, ck {cql}, id int, PRIMARY KEY (pk, ck)) "
                f"WITH cdc = true AND CLUSTERING ORDER BY (ck {order.upper()})",
            )
    oracle_lab.registry.refresh(force=True)
    yield ks
    run(session, f"DROP KEYSPACE IF EXISTS {ks}")


def check_order(lab: Lab, keyspace: str, cql: str, order: str, values: list[Any]) -> None:
    table = f"{CLUSTERABLE[cql]}_{order}"
    pk = lab.partition()
    events = lab.write(
        keyspace,
        [
            f"INSERT INTO {keyspace}.{table} (pk, ck, id) VALUES ({pk}, {literal(cql, v)}, {i})"
            for i, v in enumerate(values)
        ],
    )
    decoded = {
        e.cells["id"].value: e.clustering["ck"] for e in events if e.table == table and e.partition_key["pk"] == pk
    }
    assert sorted(decoded) == list(range(len(values))), "every insert must be read back from the commitlog"
    schema = lab.registry.find(keyspace, table)
    assert schema is not None
    layout = layout_for(schema)
    key = ClusteringKey([c.type for c in layout.clustering], [c.descending for c in layout.clustering])
    selected = [row.id for row in lab.session.execute(f"SELECT id FROM {keyspace}.{table} WHERE pk = {pk}")]
    forms = [key.row([decoded[i]]) for i in selected]
    for (a, form_a), (b, form_b) in itertools.pairwise(zip(selected, forms, strict=True)):
        assert form_a < form_b, (
            f"{cql} {order}: Cassandra orders {decoded[a]!r} before {decoded[b]!r}, "
            f"our forms {form_a.hex()} / {form_b.hex()} do not"
        )
    # Writes Cassandra merged into one row (1.0 and 1.00, say) must have one form, and only those.
    assert {key.row([v]) for v in decoded.values()} == set(forms), f"{cql} {order}: equal forms differ from Cassandra"


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("cql", list(CLUSTERABLE))
@given(data=st.data())
def test_clustering_order_is_byte_order(oracle_lab: Lab, keyspace: str, cql: str, order: str, data: Any) -> None:
    values = data.draw(st.lists(strategy(cql), min_size=2, max_size=10), label="values")
    check_order(oracle_lab, keyspace, cql, order, values)


EMPTY_VALUES = {
    "int": ([Raw("blobAsInt(0x)"), -1, 0, 5], "blobAsInt"),
    "bigint": ([Raw("blobAsBigint(0x)"), -(2**63), 7], "blobAsBigint"),
    "timestamp": ([Raw("blobAsTimestamp(0x)"), -1, 10], "blobAsTimestamp"),
    "uuid": ([Raw("blobAsUuid(0x)"), Raw("uuid()")], "blobAsUuid"),
    "varint": ([Raw("blobAsVarint(0x)"), -(2**70), 3], "blobAsVarint"),
    "decimal": ([Raw("blobAsDecimal(0x)"), Raw("-1.5"), Raw("0.0")], "blobAsDecimal"),
    "double": ([Raw("blobAsDouble(0x)"), Raw("-Infinity"), Raw("NaN")], "blobAsDouble"),
    "boolean": ([Raw("blobAsBoolean(0x)"), Raw("false"), Raw("true")], "blobAsBoolean"),
    "inet": ([Raw("blobAsInet(0x)"), "0.0.0.0", "::"], "blobAsInet"),
}


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("cql", list(EMPTY_VALUES))
def test_empty_values_sort_first_or_last_under_desc(oracle_lab: Lab, keyspace: str, cql: str, order: str) -> None:
    """An empty value (``blobAsInt(0x)``) is a legal clustering value: before every other one, or
    after under DESC (``ReversedType``); the decoder shows it as None."""
    values, _ = EMPTY_VALUES[cql]
    check_order(oracle_lab, keyspace, cql, order, values)
