"""Immutable containers for decoded composite values.

Decoded values must be hashable (a frozen list can be a map key or a set element) and must
keep Cassandra's order, so lists, sets, tuples and vectors decode to ``tuple``; maps and
UDTs decode to tuples of pairs, marked by these subclasses so consumers (and the JSON
encoder) can tell them apart.
"""

from __future__ import annotations

from typing import Any


class CqlMap(tuple[tuple[Any, Any], ...]):
    """A map value: ``(key, value)`` pairs in Cassandra's key order."""

    __slots__ = ()

    def as_dict(self) -> dict[Any, Any]:
        return dict(self)

    def __repr__(self) -> str:
        return f"CqlMap({tuple(self)!r})"


class UdtValue(tuple[tuple[str, Any], ...]):
    """A user-defined type value: ``(field_name, value)`` pairs in declaration order."""

    __slots__ = ()

    def as_dict(self) -> dict[str, Any]:
        return dict(self)

    def __repr__(self) -> str:
        return f"UdtValue({tuple(self)!r})"
