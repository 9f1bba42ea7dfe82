"""A small model of CQL types, parsed from the strings ``system_schema`` stores.

``system_schema.columns.type`` holds CQL syntax (``frozen<map<text, frozen<list<int>>>>``,
``vector<float, 3>``, a UDT's bare name, or a quoted Java class for custom types). The
commitlog needs more than the driver's type classes give: whether a value has a fixed width
on the wire (fixed-width values carry no length) and whether a column is multi-cell
(non-frozen collections and UDTs are stored as one cell per element).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

# Wire widths of fixed-length types (``AbstractType.valueLengthIfFixed``); every other type
# is written as ``uvint32 length + bytes``. Note smallint, tinyint, date and time are *not*
# fixed-width on the wire, although their values always have the same size.
FIXED_WIDTH: dict[str, int] = {
    "boolean": 1,
    "int": 4,
    "bigint": 8,
    "timestamp": 8,
    "float": 4,
    "double": 8,
    "uuid": 16,
    "timeuuid": 16,
    "empty": 0,
}
PRIMITIVES = frozenset(
    {
        "ascii",
        "bigint",
        "blob",
        "boolean",
        "counter",
        "date",
        "decimal",
        "double",
        "duration",
        "empty",
        "float",
        "inet",
        "int",
        "smallint",
        "text",
        "time",
        "timestamp",
        "timeuuid",
        "tinyint",
        "uuid",
        "varchar",
        "varint",
    }
)
_ALIASES = {"varchar": "text"}
# Java class names that may appear quoted in type strings (custom or dropped columns).
_JAVA_CLASSES = {
    "AsciiType": "ascii",
    "LongType": "bigint",
    "BytesType": "blob",
    "BooleanType": "boolean",
    "CounterColumnType": "counter",
    "SimpleDateType": "date",
    "DecimalType": "decimal",
    "DoubleType": "double",
    "DurationType": "duration",
    "EmptyType": "empty",
    "FloatType": "float",
    "InetAddressType": "inet",
    "Int32Type": "int",
    "ShortType": "smallint",
    "UTF8Type": "text",
    "TimeType": "time",
    "TimestampType": "timestamp",
    "TimeUUIDType": "timeuuid",
    "ByteType": "tinyint",
    "UUIDType": "uuid",
    "IntegerType": "varint",
}
COLLECTIONS = frozenset({"list", "set", "map"})


@dataclass(frozen=True, slots=True)
class CqlType:
    """One CQL type. ``kind`` is a primitive name or list/set/map/tuple/udt/vector/custom."""

    kind: str
    params: tuple[CqlType, ...] = ()
    frozen: bool = False
    fields: tuple[str, ...] = ()
    """UDT field names, in declaration order."""
    name: str = ""
    """UDT ``keyspace.name`` or a custom type's Java class."""
    dimension: int = 0
    """Vector dimension."""

    @property
    def multi_cell(self) -> bool:
        """Stored as one cell per element (a non-frozen collection or UDT)."""
        return not self.frozen and (self.kind in COLLECTIONS or self.kind == "udt")

    @property
    def fixed_width(self) -> int | None:
        """Bytes on the wire if the type is fixed-width, else None (value carries a uvint32 length)."""
        if self.kind == "vector":
            inner = self.params[0].fixed_width
            return None if inner is None else inner * self.dimension
        return FIXED_WIDTH.get(self.kind)

    def frozen_copy(self) -> CqlType:
        """The same type as a field or element: frozen all the way down."""
        if self.frozen:
            return self
        return CqlType(self.kind, self.params, True, self.fields, self.name, self.dimension)

    def __str__(self) -> str:
        if self.kind == "udt":
            text = self.name.split(".", 1)[-1]
        elif self.kind == "vector":
            text = f"vector<{self.params[0]}, {self.dimension}>"
        elif self.kind == "custom":
            text = f"'{self.name}'"
        elif self.params:
            text = f"{self.kind}<{', '.join(str(p) for p in self.params)}>"
        else:
            text = self.kind
        nested_frozen = self.kind in COLLECTIONS or self.kind in ("udt", "tuple")
        return f"frozen<{text}>" if self.frozen and nested_frozen else text


UdtResolver = Callable[[str], tuple[tuple[str, ...], tuple[str, ...]] | None]
"""Looks up a UDT by bare name: ``(field_names, field_type_strings)``."""


class TypeParseError(ValueError):
    pass


def parse_type(text: str, keyspace: str = "", udts: UdtResolver | None = None) -> CqlType:
    """Parse a CQL type string. UDT names are resolved in ``keyspace`` through ``udts``."""
    parser = _Parser(text, keyspace, udts)
    result = parser.parse(frozen=False)
    parser.skip_spaces()
    if parser.pos != len(text):
        raise TypeParseError(f"trailing characters in type {text!r} at {parser.pos}")
    return result


class _Parser:
    def __init__(self, text: str, keyspace: str, udts: UdtResolver | None) -> None:
        self.text = text
        self.pos = 0
        self.keyspace = keyspace
        self.udts = udts

    def skip_spaces(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] == " ":
            self.pos += 1

    def expect(self, char: str) -> None:
        self.skip_spaces()
        if self.pos >= len(self.text) or self.text[self.pos] != char:
            raise TypeParseError(f"expected {char!r} at {self.pos} in {self.text!r}")
        self.pos += 1

    def peek(self) -> str:
        self.skip_spaces()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def word(self) -> str:
        self.skip_spaces()
        text = self.text
        if self.pos < len(text) and text[self.pos] in "'\"":
            quote = text[self.pos]
            end = text.index(quote, self.pos + 1)
            while end + 1 < len(text) and text[end + 1] == quote:  # doubled quote escapes
                end = text.index(quote, end + 2)
            word = text[self.pos : end + 1]
            self.pos = end + 1
            return word
        start = self.pos
        while self.pos < len(text) and (text[self.pos].isalnum() or text[self.pos] in "_."):
            self.pos += 1
        if start == self.pos:
            raise TypeParseError(f"expected a type name at {start} in {text!r}")
        return text[start : self.pos]

    def args(self, frozen: bool) -> tuple[CqlType, ...]:
        self.expect("<")
        params = [self.parse(frozen)]
        while self.peek() == ",":
            self.pos += 1
            params.append(self.parse(frozen))
        self.expect(">")
        return tuple(params)

    def parse(self, frozen: bool) -> CqlType:  # noqa: PLR0911 - one return per syntax form
        word = self.word()
        lower = word.lower()
        if lower == "frozen":
            (inner,) = self.args(frozen=True)
            return inner
        if lower in COLLECTIONS:
            # Elements of a collection are always frozen (CQL forbids nested multi-cell types).
            params = self.args(frozen=True)
            if len(params) != (2 if lower == "map" else 1):
                raise TypeParseError(f"{lower} takes {2 if lower == 'map' else 1} parameters in {self.text!r}")
            return CqlType(lower, params, frozen)
        if lower == "tuple":
            return CqlType("tuple", self.args(frozen=True), True)
        if lower == "vector":
            self.expect("<")
            element = self.parse(frozen=True)
            self.expect(",")
            dimension = int(self.word())
            self.expect(">")
            return CqlType("vector", (element,), True, dimension=dimension)
        if word[0] == "'":
            java = word[1:-1]
            short = java.rsplit(".", 1)[-1]
            if short in _JAVA_CLASSES:
                return CqlType(_JAVA_CLASSES[short], frozen=frozen)
            return CqlType("custom", frozen=True, name=java)
        if lower in PRIMITIVES:
            return CqlType(_ALIASES.get(lower, lower), frozen=frozen)
        return self.udt(word, frozen)

    def udt(self, word: str, frozen: bool) -> CqlType:
        name = word[1:-1].replace('""', '"') if word[0] == '"' else word
        keyspace = self.keyspace
        if "." in name and name.split(".", 1)[0] and self.udts is not None and self.udts(name) is None:
            keyspace, name = name.split(".", 1)
        found = self.udts(name) if self.udts is not None else None
        if found is None:
            raise TypeParseError(f"unknown type {name!r} in {self.text!r} (keyspace {keyspace!r})")
        field_names, field_types = found
        params = tuple(parse_type(t, keyspace, self.udts).frozen_copy() for t in field_types)
        return CqlType("udt", params, frozen, fields=field_names, name=f"{keyspace}.{name}")
