"""Immutable containers for decoded composite values.

Decoded values must be hashable (a frozen list can be a map key or a set element) and must
keep Cassandra's order, so lists, sets, tuples and vectors decode to ``tuple``; maps and
UDTs decode to tuples of pairs, marked by these subclasses so consumers (and the JSON
encoder) can tell them apart.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any, NamedTuple


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


class CounterShard(NamedTuple):
    """One replica's shard of a counter."""

    counter_id: uuid.UUID
    clock: int
    value: int
    """That replica's running total."""


class CounterValue(tuple[CounterShard, ...]):
    """A counter cell as the commitlog holds it: the shards it carries.

    A counter write reaches the commitlog as the *leader* replica's shard holding that
    replica's new running total (``CounterMutation.updateWithCurrentValue``), not the
    delta. Successive writes may have different leaders, so a counter's value is the sum,
    over counter ids, of the count with the highest clock (``CounterValue.merge_total``).
    """

    __slots__ = ()

    @property
    def total(self) -> int:
        """The sum of the shards in this cell, with Java's wrapping long arithmetic."""
        return _wrap64(sum(shard.value for shard in self))

    @staticmethod
    def merge_total(values: Iterable[CounterValue]) -> int:
        """The counter value implied by a series of cells: latest clock per shard, summed."""
        latest: dict[uuid.UUID, CounterShard] = {}
        for value in values:
            for shard in value:
                seen = latest.get(shard.counter_id)
                if seen is None or shard.clock > seen.clock:
                    latest[shard.counter_id] = shard
        return _wrap64(sum(shard.value for shard in latest.values()))

    def __repr__(self) -> str:
        return f"CounterValue({tuple(self)!r})"


def _wrap64(value: int) -> int:
    return ((value + (1 << 63)) % (1 << 64)) - (1 << 63)
