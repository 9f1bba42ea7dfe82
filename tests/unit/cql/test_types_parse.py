"""Parsing system_schema type strings into the wire-level facts the decoder needs."""

from __future__ import annotations

import pytest
from cdc_replicator.cql.types import CqlType, TypeParseError, parse_type

pytestmark = pytest.mark.unit

UDTS = {"addr": (("street", "zip"), ("text", "int")), "outer": (("a", "tags"), ("frozen<addr>", "frozen<set<text>>"))}


def parse(text: str) -> CqlType:
    return parse_type(text, "ks", UDTS.get)


@pytest.mark.parametrize(
    ("text", "width"),
    [
        ("int", 4),
        ("bigint", 8),
        ("timestamp", 8),
        ("boolean", 1),
        ("uuid", 16),
        ("timeuuid", 16),
        ("float", 4),
        ("double", 8),
        ("smallint", None),
        ("tinyint", None),
        ("date", None),
        ("time", None),
        ("text", None),
        ("vector<float, 3>", 12),
        ("vector<text, 3>", None),
        ("'org.apache.cassandra.db.marshal.Int32Type'", 4),
    ],
)
def test_fixed_widths_on_the_wire(text: str, width: int | None) -> None:
    assert parse(text).fixed_width == width


@pytest.mark.parametrize(
    ("text", "multi_cell"),
    [
        ("list<int>", True),
        ("frozen<list<int>>", False),
        ("map<text, frozen<list<int>>>", True),
        ("addr", True),
        ("frozen<addr>", False),
        ("tuple<int, text>", False),
        ("vector<float, 2>", False),
    ],
)
def test_multi_cell(text: str, multi_cell: bool) -> None:
    assert parse(text).multi_cell is multi_cell


def test_nested_udts_resolve_and_freeze() -> None:
    outer = parse("list<frozen<outer>>")
    element = outer.params[0]
    assert element.kind == "udt"
    assert element.frozen
    assert element.fields == ("a", "tags")
    assert element.params[0].fields == ("street", "zip")
    assert element.params[0].frozen
    assert str(outer) == "list<frozen<outer>>"


def test_unknown_type_is_an_error() -> None:
    with pytest.raises(TypeParseError, match="unknown type"):
        parse("frozen<nope>")
