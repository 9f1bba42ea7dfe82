"""A PII/PHI schema, a masking policy over it, a seeded random workload, and an independent
implementation of the policy's rules, for the whole-process masking tests.

The independent implementation (``Expected``) is written from DESIGN.md and the policy docs
(``MaskingRule`` / ``Action`` descriptions, the canonical bytes in ``masking.actions``'s
docstring), with hashlib and hmac directly; it does not import ``cdc_replicator.masking``:

- ``hmac``:    ``"v<version>:" + HMAC-SHA256(key, canonical bytes).hexdigest()``
- ``hash``:    ``SHA-256(salt || canonical bytes).hexdigest()``
- ``partial``: the last ``keepLast`` characters kept, every other one ``*``; a value no longer
  than ``keepLast`` is masked entirely
- ``redact``:  ``[REDACTED]``
- ``null``:    null
- canonical bytes: text as UTF-8, integers as decimal digits
- nulls stay null under every action
"""

from __future__ import annotations

import hashlib
import hmac
import random
from collections.abc import Iterator
from typing import Any

from cdc_replicator.cql.types import CqlType
from cdc_replicator.cql.values import CqlMap, UdtValue

TOKENS_KEY = b"pii-test-hmac-key-0123456789abcdef!"
SALT = b"pii-test-salt-0123456789abcdef"
TOKENS_VERSION = 1  # the first KV version of the secret the test writes

BASE_MS = 1_700_000_000_000
PATIENTS = [f"PAT-{n:05d}" for n in range(7)]
VISITS = [BASE_MS + k * 60_000 for k in range(6)]


def schema(ks: str) -> list[str]:
    return [
        f"CREATE TYPE {ks}.contact (email text, phone text, label text)",
        f"""CREATE TABLE {ks}.visits (
            patient_id text, visit_at timestamp,
            email text, phone text, ssn text, notes text, diagnosis text, age int, score int,
            tags set<text>, attrs map<text, text>, contact contact, phones list<text>,
            PRIMARY KEY ((patient_id), visit_at)) WITH cdc = true""",
        f"""CREATE TABLE {ks}.ledger (
            account int, day timestamp, ssn text, amount int, memo text,
            PRIMARY KEY ((account), day, ssn)) WITH cdc = true""",
    ]


def rule(name: str, column: str, action: str, classification: str = "PII", **extra: Any) -> dict[str, Any]:
    match: dict[str, Any] = {"column": column}
    if "path" in extra:
        match["path"] = extra.pop("path")
    return {"name": name, "classification": classification, "match": match, "action": action, **extra}


def policy(keyspace: str) -> dict[str, Any]:
    """About half the columns masked, with every action, a partition-key column (hmac), a clustering
    column (hash), set elements, one map value by key, UDT fields and list elements by path."""
    rules = [
        rule("patient-id", "patient_id", "hmac", "PHI", keyRef="tokens"),
        rule("email", "email", "hmac", keyRef="tokens"),
        rule("phone", "phone", "partial", keepLast=4),
        rule("ssn", "ssn", "hash", saltRef="salt"),  # also ledger's clustering column
        rule("notes", "notes", "redact", "PHI"),
        rule("diagnosis", "diagnosis", "null", "PHI"),
        rule("age", "age", "hash", saltRef="salt"),  # an int becomes text
        rule("tags", "tags", "hmac", path=["element"], keyRef="tokens"),
        rule("attrs-ssn", "attrs", "redact", path=["value[ssn]"]),
        rule("contact-email", "contact", "hmac", path=["email"], keyRef="tokens"),
        rule("contact-phone", "contact", "partial", path=["phone"], keepLast=2),
        rule("phones", "phones", "partial", path=["element"], keepLast=4),
        rule("memo", "memo", "redact"),
    ]
    for r in rules:
        r["match"]["keyspace"] = keyspace
    return {"name": "pii", "rules": rules}


def key_sources(tokens_path: str, salt_path: str) -> list[dict[str, Any]]:
    return [{"name": "tokens", "path": tokens_path}, {"name": "salt", "path": salt_path}]


# -- the workload --------------------------------------------------------------------------------


class Values:
    """Random but recognisable PII values (every one is distinct, so a leak can be searched for)."""

    def __init__(self, r: random.Random) -> None:
        self.r = r
        self.n = 0

    def _next(self) -> int:
        self.n += 1
        return self.n

    def email(self) -> str:
        return f"person{self._next()}.{self.r.choice(['ada', 'bob', 'cy'])}@example.org"

    def phone(self) -> str:
        return f"+1-555-{self.r.randint(100, 999)}-{self._next():04d}"

    def ssn(self) -> str:
        return f"{self.r.randint(100, 899)}-{self.r.randint(10, 99)}-{self._next():04d}"

    def text(self, what: str) -> str:
        return f"{what} {self._next()} {self.r.choice(['alpha', 'beta', 'gamma'])}"


def workload(ks: str, seed: int, steps: int) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """CQL statements with parameters: inserts, partial updates, nulls, collection edits, UDT field
    updates, row / partition / range deletions, over few keys so rows are rewritten often."""
    r = random.Random(seed)
    v = Values(r)
    ts = BASE_MS * 1000  # explicit, increasing write times: no ties

    def at() -> str:
        nonlocal ts
        ts += r.randint(1, 50)
        return f"USING TIMESTAMP {ts}"

    # Rows that exist only through one masked part: a set element, a UDT field, a column masked
    # by null (its destination keeps the cell's liveness, and shows NULL).
    where = "WHERE patient_id = %s AND visit_at = %s"
    yield f"UPDATE {ks}.visits {at()} SET tags = tags + %s {where}", ({v.text("tag")}, "EDGE-2", VISITS[0])
    yield f"UPDATE {ks}.visits {at()} SET contact.email = %s {where}", (v.email(), "EDGE-3", VISITS[0])
    yield f"UPDATE {ks}.visits {at()} SET diagnosis = %s {where}", (v.text("ICD"), "EDGE-4", VISITS[0])
    for _ in range(steps):
        pid, visit = r.choice(PATIENTS), r.choice(VISITS)
        key = (pid, visit)
        where = "WHERE patient_id = %s AND visit_at = %s"
        choice = r.random()
        if choice < 0.22:
            contact = "{email: %s, phone: %s, label: %s}"
            yield (
                f"INSERT INTO {ks}.visits (patient_id, visit_at, email, phone, ssn, notes, diagnosis, age, score, "
                f"tags, attrs, contact, phones) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, {contact}, %s) "
                + at(),
                (
                    *key, v.email(), v.phone(), v.ssn(), v.text("note"), v.text("ICD"), r.randint(0, 99),
                    r.randint(-5, 5), {v.text("tag") for _ in range(r.randint(0, 3))},
                    {"ssn": v.ssn(), "mrn": v.text("mrn")} if r.random() < 0.7 else {"mrn": v.text("mrn")},
                    v.email(), v.phone(), v.text("label"), [v.phone() for _ in range(r.randint(0, 2))],
                ),
            )  # fmt: skip
        elif choice < 0.36:
            column, value = r.choice(
                [("email", v.email()), ("phone", v.phone()), ("ssn", v.ssn()), ("notes", v.text("note")),
                 ("age", r.randint(0, 99)), ("score", r.randint(-5, 5))]
            )  # fmt: skip
            yield f"UPDATE {ks}.visits {at()} SET {column} = %s {where}", (value, *key)
        elif choice < 0.42:
            column = r.choice(["email", "phone", "ssn", "age", "notes"])
            yield f"UPDATE {ks}.visits {at()} SET {column} = null {where}", key
        elif choice < 0.50:
            op = r.choice(["+", "-"])
            yield f"UPDATE {ks}.visits {at()} SET tags = tags {op} %s {where}", ({v.text("tag")}, *key)
        elif choice < 0.58:
            name = r.choice(["ssn", "mrn", "remark"])
            if r.random() < 0.3:
                yield f"DELETE attrs[%s] FROM {ks}.visits {at()} {where}", (name, *key)
            else:
                value = v.ssn() if name == "ssn" else v.text(name)
                yield f"UPDATE {ks}.visits {at()} SET attrs[%s] = %s {where}", (name, value, *key)
        elif choice < 0.64:
            field, value = r.choice([("email", v.email()), ("phone", v.phone()), ("label", v.text("label"))])
            yield f"UPDATE {ks}.visits {at()} SET contact.{field} = %s {where}", (value, *key)
        elif choice < 0.70:
            if r.random() < 0.5:
                yield f"UPDATE {ks}.visits {at()} SET phones = phones + %s {where}", ([v.phone()], *key)
            else:
                yield f"UPDATE {ks}.visits {at()} SET phones = %s {where}", ([v.phone(), v.phone()], *key)
        elif choice < 0.75:
            yield f"DELETE FROM {ks}.visits {at()} {where}", key
        elif choice < 0.77:
            yield f"DELETE FROM {ks}.visits {at()} WHERE patient_id = %s", (pid,)
        elif choice < 0.80:
            low, high = sorted(r.sample(VISITS, 2))
            yield (
                f"DELETE FROM {ks}.visits {at()} WHERE patient_id = %s AND visit_at >= %s AND visit_at < %s",
                (pid, low, high),
            )
        elif choice < 0.95:
            account, day = r.randint(1, 4), r.choice(VISITS[:3])
            yield (
                f"INSERT INTO {ks}.ledger (account, day, ssn, amount, memo) VALUES (%s, %s, %s, %s, %s) {at()}",
                (account, day, r.choice([v.ssn(), "123-45-6789"]), r.randint(1, 999), v.text("memo")),
            )
        else:
            yield f"DELETE FROM {ks}.ledger {at()} WHERE account = %s AND day = %s AND ssn = %s", (
                r.randint(1, 4), r.choice(VISITS[:3]), "123-45-6789",
            )  # fmt: skip


# -- the independent implementation of the policy --------------------------------------------------


def token(value: Any) -> Any:
    if value is None:
        return None
    return f"v{TOKENS_VERSION}:" + hmac.new(TOKENS_KEY, str(value).encode(), hashlib.sha256).hexdigest()


def salted(value: Any) -> Any:
    return None if value is None else hashlib.sha256(SALT + str(value).encode()).hexdigest()


def partial(keep: int) -> Any:
    def mask(value: Any) -> Any:
        if value is None:
            return None
        hidden = len(value) - keep
        return "*" * len(value) if hidden <= 0 else "*" * hidden + value[hidden:]

    return mask


def redact(value: Any) -> Any:
    return None if value is None else "[REDACTED]"


def _elements(mask: Any) -> Any:
    return lambda value: None if value is None else tuple(mask(e) for e in value)


def _attrs(value: Any) -> Any:
    if value is None:
        return None
    return CqlMap((k, redact(v) if k == "ssn" else v) for k, v in value)


def _contact(value: Any) -> Any:
    if value is None:
        return None
    masks = {"email": token, "phone": partial(2)}
    return UdtValue((name, masks.get(name, lambda x: x)(item)) for name, item in value)


MASKS: dict[str, dict[str, Any]] = {
    "visits": {
        "patient_id": token,
        "email": token,
        "phone": partial(4),
        "ssn": salted,
        "notes": redact,
        "diagnosis": lambda _v: None,
        "age": salted,
        "tags": _elements(token),
        "attrs": _attrs,
        "contact": _contact,
        "phones": _elements(partial(4)),
    },
    "ledger": {"ssn": salted, "memo": redact},
}
TEXT = CqlType("text")
RETYPED = {("visits", "age"): TEXT}
"""Columns whose destination type the masking changes (a hashed int is text)."""
SETS = {("visits", "tags")}
"""Set columns: masked elements sort differently, so both sides are compared sorted."""


def mask_row(table: str, key_names: list[str], key: tuple[Any, ...], row: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    masks = MASKS.get(table, {})
    masked_key = tuple(masks.get(name, lambda x: x)(value) for name, value in zip(key_names, key, strict=True))
    return masked_key, {name: masks.get(name, lambda x: x)(value) for name, value in row.items()}
