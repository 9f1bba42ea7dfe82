"""A seeded random CQL workload covering what the commitlog reader must decode.

Statements are plain CQL with literals (no driver-side encoding involved) and explicit,
strictly increasing write timestamps, so the expected state never depends on Cassandra's
tie-breaking rules.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

# Regular columns of the main table: name -> CQL type. Every CQL type, nested.
MAIN_COLUMNS: dict[str, str] = {
    "a_ascii": "ascii",
    "a_text": "text",
    "a_varchar": "varchar",
    "a_blob": "blob",
    "a_bool": "boolean",
    "a_tinyint": "tinyint",
    "a_smallint": "smallint",
    "a_int": "int",
    "a_bigint": "bigint",
    "a_varint": "varint",
    "a_decimal": "decimal",
    "a_float": "float",
    "a_double": "double",
    "a_date": "date",
    "a_time": "time",
    "a_timestamp": "timestamp",
    "a_duration": "duration",
    "a_uuid": "uuid",
    "a_timeuuid": "timeuuid",
    "a_inet": "inet",
    "l_int": "list<int>",
    "s_text": "set<text>",
    "m_text_int": "map<text, int>",
    "f_list": "frozen<list<text>>",
    "f_set": "frozen<set<int>>",
    "f_map": "frozen<map<int, frozen<list<text>>>>",
    "tup": "tuple<int, text, frozen<set<uuid>>>",
    "u": "pt",
    "fu": "frozen<pt>",
    "l_fu": "list<frozen<pt>>",
    "m_set": "map<text, frozen<set<int>>>",
    "vec": "vector<float, 3>",
    "vec_text": "vector<text, 2>",
}
UDT_FIELDS = {"x": "int", "y": "text", "z": "frozen<list<int>>"}
COLLECTION_COLUMNS = ("l_int", "s_text", "m_text_int", "u", "l_fu", "m_set")


def schema_statements(ks: str) -> list[str]:
    columns = ", ".join(f"{name} {cql}" for name, cql in MAIN_COLUMNS.items())
    fields = ", ".join(f"{name} {cql}" for name, cql in UDT_FIELDS.items())
    return [
        f"CREATE TYPE {ks}.pt ({fields})",
        f"CREATE TABLE {ks}.main (pk int, ck1 int, ck2 text, st text static, {columns}, "
        "PRIMARY KEY (pk, ck1, ck2)) WITH cdc = true AND CLUSTERING ORDER BY (ck1 ASC, ck2 DESC)",
        f"CREATE TABLE {ks}.plain (pk int, ck int, v text, m map<int, text>, PRIMARY KEY (pk, ck)) WITH cdc = false",
        f"CREATE TABLE {ks}.cnt (pk int PRIMARY KEY, c counter, d counter) WITH cdc = true",
        f"CREATE TABLE {ks}.rev (pk text, ck1 bigint, ck2 text, v int, PRIMARY KEY (pk, ck1, ck2)) "
        "WITH cdc = true AND CLUSTERING ORDER BY (ck1 DESC, ck2 DESC)",
    ]


def _text(r: random.Random) -> str:
    alphabet = "abcxyzé€'"
    return "".join(r.choice(alphabet) for _ in range(r.randint(0, 6)))


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class Values:
    """Random CQL literals per type."""

    def __init__(self, r: random.Random) -> None:
        self.r = r

    def literal(self, cql: str) -> str:
        r = self.r
        cql = cql.strip()
        if cql.startswith("frozen<"):
            return self.literal(cql[7:-1])
        if cql in ("text", "varchar"):
            return _quote(_text(r))
        if cql == "ascii":
            return _quote("".join(r.choice("abc'XYZ ") for _ in range(r.randint(0, 5))))
        if cql == "blob":
            return "0x" + r.randbytes(r.randint(0, 6)).hex()
        if cql == "boolean":
            return r.choice(["true", "false"])
        if cql == "tinyint":
            return str(r.randint(-128, 127))
        if cql == "smallint":
            return str(r.randint(-32768, 32767))
        if cql == "int":
            return str(r.randint(-(2**31), 2**31 - 1))
        if cql == "bigint":
            return str(r.randint(-(2**63), 2**63 - 1))
        if cql == "varint":
            return str(r.randint(-(10**30), 10**30))
        if cql == "decimal":
            return f"{r.randint(-(10**12), 10**12)}.{r.randint(0, 999):03d}"
        if cql in ("float", "double"):
            return str(r.randint(-4000, 4000) / 8)
        if cql == "date":
            return _quote(f"{r.randint(1900, 2200)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}")
        if cql == "time":
            return _quote(
                f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}.{r.randint(0, 10**9 - 1):09d}"
            )
        if cql == "timestamp":
            return str(r.randint(-(10**12), 10**13))  # ms since the epoch
        if cql == "duration":
            return f"{r.randint(0, 30)}mo{r.randint(0, 40)}d{r.randint(0, 10**6)}ns"
        if cql == "uuid":
            return str(uuid.UUID(int=r.getrandbits(128), version=4))
        if cql == "timeuuid":
            return str(uuid.uuid1(node=r.getrandbits(48), clock_seq=r.getrandbits(14)))
        if cql == "inet":
            if r.random() < 0.5:
                return _quote(".".join(str(r.randint(0, 255)) for _ in range(4)))
            return _quote(":".join(f"{r.randint(0, 0xFFFF):x}" for _ in range(8)))
        if cql == "pt":
            fields = [f"{name}: {self.literal(t)}" for name, t in UDT_FIELDS.items() if r.random() < 0.8]
            return "{" + ", ".join(fields or ["x: 1"]) + "}"
        if cql.startswith(("list<", "set<")):
            inner = cql[cql.index("<") + 1 : -1]
            items = [self.literal(inner) for _ in range(r.randint(0, 3))]
            return (
                ("[" if cql.startswith("list") else "{") + ", ".join(items) + ("]" if cql.startswith("list") else "}")
            )
        if cql.startswith("map<"):
            key, value = _split(cql[4:-1])
            pairs = [f"{self.literal(key)}: {self.literal(value)}" for _ in range(r.randint(0, 3))]
            return "{" + ", ".join(pairs) + "}"
        if cql.startswith("tuple<"):
            return "(" + ", ".join(self.literal(t) for t in _split(cql[6:-1])) + ")"
        if cql.startswith("vector<"):
            inner, dimension = _split(cql[7:-1])
            return "[" + ", ".join(self.literal(inner) for _ in range(int(dimension))) + "]"
        raise AssertionError(cql)


def _split(params: str) -> list[str]:
    out, depth, current = [], 0, ""
    for ch in params:
        if ch == "," and depth == 0:
            out.append(current.strip())
            current = ""
            continue
        depth += ch == "<"
        depth -= ch == ">"
        current += ch
    out.append(current.strip())
    return out


@dataclass
class Workload:
    """Generates statements; ``alter_at`` is the step at which the ALTERs happen."""

    ks: str
    seed: int
    steps: int
    alter_at: int

    def __post_init__(self) -> None:
        self.r = random.Random(self.seed)
        self.values = Values(self.r)
        self.ts = int(time.time() * 1_000_000)
        self.columns = dict(MAIN_COLUMNS)

    def _next_ts(self) -> int:
        self.ts += 10
        return self.ts

    def _key(self) -> tuple[int, int, str]:
        r = self.r
        return r.randint(0, 5), r.randint(0, 4), r.choice("abcdef")

    def _where(self) -> str:
        pk, ck1, ck2 = self._key()
        return f"pk = {pk} AND ck1 = {ck1} AND ck2 = '{ck2}'"

    def _using(self) -> str:
        ttl = f" AND TTL {self.r.randint(3600, 86400)}" if self.r.random() < 0.15 else ""
        return f"USING TIMESTAMP {self._next_ts()}{ttl}"

    def _insert(self) -> str:
        pk, ck1, ck2 = self._key()
        names = [n for n in self.columns if self.r.random() < 0.4]
        values = [self.values.literal(self.columns[n]) if self.r.random() < 0.9 else "null" for n in names]
        cols = ", ".join(["pk", "ck1", "ck2", *names])
        vals = ", ".join([str(pk), str(ck1), f"'{ck2}'", *values])
        return f"INSERT INTO {self.ks}.main ({cols}) VALUES ({vals}) {self._using()}"

    def _update(self) -> str:
        names = self.r.sample(sorted(self.columns), k=self.r.randint(1, 4))
        sets = ", ".join(f"{n} = {self.values.literal(self.columns[n])}" for n in names)
        return f"UPDATE {self.ks}.main {self._using()} SET {sets} WHERE {self._where()}"

    def _collection(self) -> str:
        r = self.r
        column = r.choice([c for c in COLLECTION_COLUMNS if c in self.columns])
        cql = self.columns[column]
        update = f"UPDATE {self.ks}.main {self._using()} SET"
        where = f"WHERE {self._where()}"
        choice = r.random()
        if choice < 0.25:
            return f"{update} {column} = {self.values.literal(cql)} {where}"  # overwrite
        if choice < 0.35:
            return f"{update} {column} = null {where}"
        if cql.startswith("list"):
            item = self.values.literal(cql[5:-1])
            if choice < 0.6:
                return f"{update} {column} = {column} + [{item}] {where}"
            if choice < 0.8:
                return f"{update} {column} = [{item}] + {column} {where}"
            return f"{update} {column} = {column} - [{item}] {where}"
        if cql.startswith("set"):
            item = self.values.literal(cql[4:-1])
            op = "+" if choice < 0.7 else "-"
            return f"{update} {column} = {column} {op} {{{item}}} {where}"
        if cql.startswith("map"):
            key, value = _split(cql[4:-1])
            if choice < 0.7:
                return f"{update} {column}[{self.values.literal(key)}] = {self.values.literal(value)} {where}"
            return f"{update} {column} = {column} - {{{self.values.literal(key)}}} {where}"
        field = r.choice(sorted(UDT_FIELDS))
        return f"{update} {column}.{field} = {self.values.literal(UDT_FIELDS[field])} {where}"

    def _delete(self) -> str:
        r = self.r
        pk, ck1, ck2 = self._key()
        head = f"DELETE FROM {self.ks}.main USING TIMESTAMP {self._next_ts()} WHERE pk = {pk}"
        choice = r.random()
        if choice < 0.35:
            return f"{head} AND ck1 = {ck1} AND ck2 = '{ck2}'"
        if choice < 0.55:
            low, high = sorted(r.sample("abcdef", 2))
            return f"{head} AND ck1 = {ck1} AND ck2 > '{low}' AND ck2 <= '{high}'"
        if choice < 0.7:
            return f"{head} AND ck1 >= {ck1} AND ck1 < {ck1 + r.randint(1, 2)}"
        if choice < 0.8:
            return f"{head} AND ck1 = {ck1}"
        if choice < 0.9:
            column = r.choice(sorted(self.columns))
            return (
                f"DELETE {column} FROM {self.ks}.main USING TIMESTAMP {self._next_ts()} "
                f"WHERE pk = {pk} AND ck1 = {ck1} AND ck2 = '{ck2}'"
            )
        return head

    def _static(self) -> str:
        pk = self.r.randint(0, 5)
        return f"UPDATE {self.ks}.main {self._using()} SET st = {self.values.literal('text')} WHERE pk = {pk}"

    def _plain(self, pk: int) -> str:
        r = self.r
        ck = r.randint(0, 3)
        if r.random() < 0.25:
            return f"DELETE FROM {self.ks}.plain USING TIMESTAMP {self._next_ts()} WHERE pk = {pk}"
        return (
            f"INSERT INTO {self.ks}.plain (pk, ck, v, m) VALUES ({pk}, {ck}, {self.values.literal('text')}, "
            f"{self.values.literal('map<int, text>')}) USING TIMESTAMP {self._next_ts()}"
        )

    def _batch(self) -> str:
        pk, ck1, ck2 = self._key()
        kind = self.r.choice(["", "UNLOGGED "])
        parts = [
            self._plain(pk),
            f"INSERT INTO {self.ks}.main (pk, ck1, ck2, a_int) VALUES ({pk}, {ck1}, '{ck2}', {self.r.randint(0, 99)}) "
            f"USING TIMESTAMP {self._next_ts()}",
            self._plain(pk),
        ]
        return f"BEGIN {kind}BATCH " + "; ".join(parts) + "; APPLY BATCH"

    def _counter(self) -> str:
        column = self.r.choice(["c", "d"])
        delta, pk = self.r.randint(-1000, 1000), self.r.randint(0, 3)
        return f"UPDATE {self.ks}.cnt SET {column} = {column} + {delta} WHERE pk = {pk}"

    def _rev(self) -> str:
        r = self.r
        pk = r.choice(["p", "q"])
        ck1 = r.randint(-3, 3) * 10**15
        if r.random() < 0.7:
            return (
                f"INSERT INTO {self.ks}.rev (pk, ck1, ck2, v) VALUES ('{pk}', {ck1}, '{r.choice('xyz')}', "
                f"{r.randint(0, 9)}) USING TIMESTAMP {self._next_ts()}"
            )
        return f"DELETE FROM {self.ks}.rev USING TIMESTAMP {self._next_ts()} WHERE pk = '{pk}' AND ck1 > {ck1}"

    def alters(self) -> list[str]:
        """Mid-stream schema changes: one column added, one regular and one collection dropped."""
        self.columns.pop("a_double")
        self.columns.pop("m_set")
        self.columns["added"] = "map<int, text>"
        return [
            f"ALTER TABLE {self.ks}.main DROP a_double",
            f"ALTER TABLE {self.ks}.main DROP m_set",
            f"ALTER TABLE {self.ks}.main ADD added map<int, text>",
        ]

    def statements(self) -> Iterator[str]:
        generators: list[tuple[float, Callable[[], str]]] = [
            (0.22, self._insert),
            (0.15, self._update),
            (0.2, self._collection),
            (0.14, self._delete),
            (0.06, self._static),
            (0.08, self._batch),
            (0.07, self._counter),
            (0.08, self._rev),
        ]
        weights = [w for w, _ in generators]
        for step in range(self.steps):
            if step == self.alter_at:
                yield from self.alters()
            (generate,) = self.r.choices([g for _, g in generators], weights)
            yield generate()
