"""The masking rules, plans and masks: each action on each kind of column, load-time rejection, destination types.

Expected outputs are computed here independently (hashlib/hmac over the documented canonical
bytes), not by calling the engine's own helpers.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import fields, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from cdc_replicator.cql.types import parse_type
from cdc_replicator.cql.values import CounterShard, CounterValue, CqlMap, UdtValue
from cdc_replicator.events import Bound, Cell, Deletion, Operation
from cdc_replicator.masking.actions import KeyMaterial
from cdc_replicator.masking.apply import mask_event, range_survives_masking
from cdc_replicator.masking.audit import MaskingMetrics
from cdc_replicator.masking.keys import StaticKeys
from cdc_replicator.masking.masker import Masker
from cdc_replicator.masking.plans import compile_table, destination_type
from cdc_replicator.masking.rules import PRESENCE, PolicyError, check_policy, unmatched_rules
from prometheus_client import CollectorRegistry

from tests.unit.masking.support import make_event, make_table, policy

pytestmark = pytest.mark.unit

KEY = b"k" * 32
SALT = b"salt-of-the-earth"


def token(data: bytes, version: int = 1, key: bytes = KEY) -> str:
    return f"v{version}:" + hmac.new(key, data, hashlib.sha256).hexdigest()


def salted(data: bytes) -> str:
    return hashlib.sha256(SALT + data).hexdigest()


def hmac_rule(name: str, column: str, **match: Any) -> dict[str, Any]:
    return {
        "name": name,
        "classification": "PII",
        "match": {"column": column, **match},
        "action": "hmac",
        "keyRef": "tokens",
    }


def rule(name: str, column: str, action: str, path: list[str] | None = None, **params: Any) -> dict[str, Any]:
    return {
        "name": name,
        "classification": "PHI",
        "match": {"column": column, "path": path or []},
        "action": action,
        **params,
    }


CUSTOMERS = make_table(
    "shop",
    "customers",
    [("customer_id", "int")],
    [("email", "text")],
    [("name", "text"), ("ssn", "text"), ("phone", "text"), ("age", "int"), ("notes", "text"), ("seen", "timestamp")],
)


def test_every_action_on_text_columns(keys: dict[str, KeyMaterial]) -> None:
    spec = policy(
        rule("name", "name", "redact"),
        rule("ssn", "ssn", "hash", saltRef="pepper"),
        rule("phone", "phone", "partial", keepLast=4),
        rule("notes", "notes", "null"),
        hmac_rule("email", "email"),
    )
    plan = compile_table(spec, CUSTOMERS, keys)
    counts = plan.new_counts()
    event = make_event(
        CUSTOMERS,
        {"customer_id": 7},
        {"email": "ada@example.com"},
        {"name": "Ada", "ssn": "123-45-6789", "phone": "+1 555 0100", "notes": "allergic", "age": 36},
    )
    masked = mask_event(plan, event, counts)
    assert masked.partition_key == {"customer_id": 7}
    assert masked.clustering == {"email": token(b"ada@example.com")}
    values = {name: cell.value for name, cell in masked.cells.items()}
    assert values == {
        "name": "[REDACTED]",
        "ssn": salted(b"123-45-6789"),
        "phone": "*******0100",
        "notes": True,  # null hides the value but keeps the cell's liveness (a presence flag)
        "age": 36,
    }
    # Write times survive masking: destinations merge on them.
    assert all(cell.timestamp == 1000 for cell in masked.cells.values())
    assert dict(zip((k.rule for k in plan.audit), counts, strict=True)) == {
        "name": 1,
        "ssn": 1,
        "phone": 1,
        "notes": 1,
        "email": 1,
    }


def test_partial_masks_short_values_entirely_and_honours_mask_char(keys: dict[str, KeyMaterial]) -> None:
    plan = compile_table(policy(rule("phone", "phone", "partial", keepLast=4, maskChar="#")), CUSTOMERS, keys)
    for raw, expected in [("12", "##"), ("1234", "####"), ("12345", "#2345"), ("", "")]:
        masked = mask_event(plan, make_event(CUSTOMERS, {"customer_id": 1}, cells={"phone": raw}), plan.new_counts())
        assert masked.cells["phone"].value == expected


def test_masked_primary_keys_are_deterministic_and_distinct(keys: dict[str, KeyMaterial]) -> None:
    spec = policy(hmac_rule("id", "customer_id"), hmac_rule("email", "email"))
    plan = compile_table(spec, CUSTOMERS, keys)
    again = compile_table(spec, CUSTOMERS, keys)  # a restart compiles again: same tokens

    def key_of(plan_: Any, customer: int, email: str) -> tuple[Any, Any]:
        event = mask_event(plan_, make_event(CUSTOMERS, {"customer_id": customer}, {"email": email}), [0, 0])
        return dict(event.partition_key), dict(event.clustering)

    assert key_of(plan, 42, "a@x") == key_of(again, 42, "a@x")
    assert key_of(plan, 42, "a@x")[0] == {"customer_id": token(b"42")}
    assert key_of(plan, 42, "a@x") != key_of(plan, 43, "a@x")
    assert key_of(plan, 42, "a@x") != key_of(plan, 42, "b@x")


def test_tokens_join_across_tables_and_types(keys: dict[str, KeyMaterial]) -> None:
    orders = make_table("shop", "orders", [("order_id", "uuid")], [], [("customer_id", "text")])
    spec = policy(hmac_rule("customer", "customer_id", keyspace="shop"))
    by_int = mask_event(
        compile_table(spec, CUSTOMERS, keys), make_event(CUSTOMERS, {"customer_id": 42}, {"email": "e"}), [0]
    )
    by_text = mask_event(
        compile_table(spec, orders, keys),
        make_event(orders, {"order_id": uuid.uuid4()}, cells={"customer_id": "42"}),
        [0],
    )
    assert by_int.partition_key["customer_id"] == by_text.cells["customer_id"].value


@pytest.mark.parametrize(
    ("cql_type", "value", "canonical"),
    [
        ("int", -5, b"-5"),
        ("bigint", 2**40, b"1099511627776"),
        ("boolean", True, b"true"),
        ("double", 1.5, b"1.5"),
        ("decimal", Decimal("3.14"), b"3.14"),
        ("uuid", uuid.UUID(int=1), b"00000000-0000-0000-0000-000000000001"),
        ("timestamp", datetime(2024, 1, 2, 3, 4, 5, 678000), b"1704164645678"),
        ("timestamp", -(2**62), str(-(2**62)).encode()),
        ("blob", b"\x00\xff", b"\x00\xff"),
        ("frozen<list<int>>", (1, 2), b"[1,2]"),
        ("frozen<map<text, int>>", CqlMap([("a", 1)]), b'[["a",1]]'),
        ("frozen<contact>", UdtValue([("email", "é@x"), ("phone", None)]), '{"email":"é@x","phone":null}'.encode()),
    ],
)
def test_hmac_digests_the_documented_canonical_bytes(
    keys: dict[str, KeyMaterial], cql_type: str, value: Any, canonical: bytes
) -> None:
    table = make_table("ks", "t", [("id", "int")], [], [("c", cql_type)])
    plan = compile_table(policy(hmac_rule("c", "c")), table, keys)
    masked = mask_event(plan, make_event(table, {"id": 1}, cells={"c": value}), [0])
    assert masked.cells["c"].value == token(canonical)
    assert destination_type(plan, "c") == parse_type("text")


def test_key_version_is_carried_so_rotation_shows(keys: dict[str, KeyMaterial]) -> None:
    spec = policy(hmac_rule("email", "email"))
    rotated = keys | {"tokens": KeyMaterial(2, b"n" * 32)}
    event = make_event(CUSTOMERS, {"customer_id": 1}, {"email": "a@x"})
    before = mask_event(compile_table(spec, CUSTOMERS, keys), event, [0]).clustering["email"]
    after = mask_event(compile_table(spec, CUSTOMERS, rotated), event, [0]).clustering["email"]
    assert before == token(b"a@x", 1)
    assert after == token(b"a@x", 2, b"n" * 32)


def test_nulls_and_tombstones_stay_as_they_are(keys: dict[str, KeyMaterial]) -> None:
    plan = compile_table(policy(rule("ssn", "ssn", "hash", saltRef="pepper")), CUSTOMERS, keys)
    event = make_event(CUSTOMERS, {"customer_id": 1}, cells={"ssn": None})
    assert mask_event(plan, event, [0]) is event


def test_tables_without_matching_rules_are_returned_untouched(keys: dict[str, KeyMaterial]) -> None:
    plan = compile_table(policy(hmac_rule("email", "email", table="other")), CUSTOMERS, keys)
    event = make_event(CUSTOMERS, {"customer_id": 1}, {"email": "a@x"}, {"name": "Ada"})
    assert not plan.masks_anything
    assert mask_event(plan, event, []) is event


def test_globs_and_regexes_select_columns(keys: dict[str, KeyMaterial]) -> None:
    spec = policy(
        {**hmac_rule("contact", "x"), "match": {"keyspace": "sh?p", "table": "cust*", "columnRegex": "(email|phone)"}},
        {**rule("n", "n*", "redact"), "match": {"column": "n*"}},
    )
    plan = compile_table(spec, CUSTOMERS, keys)
    assert sorted(plan.columns) == ["email", "name", "notes", "phone"]


def test_first_rule_wins_and_whole_column_beats_paths(keys: dict[str, KeyMaterial]) -> None:
    table = make_table("ks", "t", [("id", "int")], [], [("m", "frozen<map<text, text>>"), ("s", "text")])
    spec = policy(
        rule("values", "m", "redact", ["value"]),
        rule("whole", "m", "null"),
        rule("first", "s", "redact"),
        rule("second", "s", "null"),
    )
    plan = compile_table(spec, table, keys)
    assert [k.rule for k in plan.audit] == ["whole", "first"]


def test_rejects_actions_that_do_not_fit_the_type_naming_rule_and_column() -> None:
    table = make_table(
        "shop",
        "customers",
        [("customer_id", "int")],
        [("email", "text")],
        [
            ("age", "int"),
            ("tags", "set<text>"),
            ("attrs", "map<text, text>"),
            ("scores", "list<int>"),
            ("home", "frozen<contact>"),
            ("ranks", "frozen<list<int>>"),
        ],
    )
    spec = policy(
        rule("age-partial", "age", "partial", keepLast=2),
        rule("pk-redact", "customer_id", "redact"),
        rule("ck-null", "email", "null"),
        rule("tag-partial", "tags", "partial", ["element"], keepLast=1),
        rule("attr-keys", "attrs", "redact", ["key"]),
        rule("whole-list", "scores", "hmac", keyRef="tokens"),
        rule("bad-path", "home", "redact", ["street"]),
        rule("ranks-into-int", "ranks", "redact", ["element", "x"]),
        rule("no-salt", "home", "hash", ["email"], saltRef="missing"),
    )
    with pytest.raises(PolicyError) as rejected:
        check_policy(spec, [table], ["tokens"])
    problems = rejected.value.problems
    expected = [
        "rule 'age-partial' (partial) cannot mask shop.customers.age of type int: partial keeps characters of text",
        "rule 'pk-redact' (redact) cannot mask shop.customers.customer_id of type int: partition key columns identify",
        "rule 'ck-null' (null) cannot mask shop.customers.email of type text: clustering columns identify rows",
        "rule 'tag-partial' (partial) cannot mask shop.customers.tags at path element of type set<text>: "
        "map keys and set elements identify elements",
        "rule 'attr-keys' (redact) cannot mask shop.customers.attrs at path key of type map<text, text>: map keys",
        "rule 'whole-list' (hmac) cannot mask shop.customers.scores of type list<int>: list<int> is stored cell by "
        "cell, so it is masked by its parts: give the rule a path, e.g. [element]",
        "rule 'bad-path' (redact) cannot mask shop.customers.home at path street of type frozen<contact>: "
        "path step 'street' does not apply to frozen<contact> (expected one of its fields email, phone)",
        "rule 'ranks-into-int' (redact) cannot mask shop.customers.ranks at path element.x of type frozen<list<int>>: "
        "path step 'x' goes into int, which has no parts",
        "rule 'no-salt' references salt 'missing', which is not among the configured masking keys",
    ]
    assert len(problems) == len(expected), problems
    for start in expected:
        assert any(problem.startswith(start) for problem in problems), start
    assert "rule 'age-partial'" in str(rejected.value)


def test_destination_types_follow_the_masking(keys: dict[str, KeyMaterial]) -> None:
    table = make_table(
        "ks",
        "t",
        [("id", "int")],
        [("at", "timestamp")],
        [
            ("m", "map<text, int>"),
            ("f", "frozen<map<int, frozen<contact>>>"),
            ("n", "int"),
            ("p", "ascii"),
            ("plain", "bigint"),
        ],
    )
    spec = policy(
        hmac_rule("id", "id"),
        rule("m", "m", "redact", ["value"]),
        rule("f", "f", "hash", ["key"], saltRef="pepper"),
        rule("f-phone", "f", "null", ["value", "phone"]),
        rule("n", "n", "null"),
        rule("p", "p", "partial", keepLast=1),
    )
    plan = compile_table(spec, table, keys)
    types = {name: str(t) for name, t in plan.destination_types.items()}
    assert types == {
        "id": "text",
        "at": "timestamp",
        "m": "map<text, text>",
        "f": "frozen<map<text, frozen<contact>>>",
        "n": "boolean",
        "p": "ascii",
        "plain": "bigint",
    }


def test_frozen_values_are_masked_by_path(keys: dict[str, KeyMaterial]) -> None:
    table = make_table(
        "ks",
        "t",
        [("id", "int")],
        [],
        [
            ("contacts", "frozen<map<text, frozen<contact>>>"),
            ("pair", "frozen<tuple<text, int>>"),
            ("l", "frozen<list<text>>"),
        ],
    )
    spec = policy(
        rule("email", "contacts", "hmac", ["value", "email"], keyRef="tokens"),
        rule("pair", "pair", "redact", ["0"]),
        rule("list", "l", "partial", ["element"], keepLast=1),
    )
    plan = compile_table(spec, table, keys)
    contacts = CqlMap([("home", UdtValue([("email", "a@x"), ("phone", "555")])), ("work", None)])
    event = make_event(table, {"id": 1}, cells={"contacts": contacts, "pair": ("secret", 7), "l": ("abc", None)})
    masked = mask_event(plan, event, plan.new_counts())
    assert masked.cells["contacts"].value == CqlMap(
        [("home", UdtValue([("email", token(b"a@x")), ("phone", "555")])), ("work", None)]
    )
    assert isinstance(masked.cells["contacts"].value, CqlMap)
    assert masked.cells["pair"].value == ("[REDACTED]", 7)
    assert masked.cells["l"].value == ("**c", None)


def test_multi_cell_collections_and_udts_are_masked_cell_by_cell(keys: dict[str, KeyMaterial]) -> None:
    table = make_table(
        "ks",
        "t",
        [("id", "int")],
        [],
        [
            ("emails", "set<text>"),
            ("attrs", "map<text, text>"),
            ("phones", "list<text>"),
            ("home", "contact"),
            ("gone", "list<text>"),
            ("tags", "set<text>"),
        ],
    )
    spec = policy(
        rule("emails", "emails", "hmac", ["element"], keyRef="tokens"),
        rule("attr-keys", "attrs", "hmac", ["key"], keyRef="tokens"),
        rule("attr-values", "attrs", "redact", ["value"]),
        rule("phones", "phones", "partial", ["element"], keepLast=2),
        rule("home-email", "home", "hash", ["email"], saltRef="pepper"),
        rule("gone", "gone", "null"),
        rule("tags", "tags", "null"),
    )
    plan = compile_table(spec, table, keys)
    timeuuid = uuid.uuid1()
    event = make_event(
        table,
        {"id": 1},
        complex_cells={
            "emails": [Cell(None, 5, path="a@x")],
            "attrs": [Cell("123-45-6789", 5, path="ssn"), Cell(None, 6, deleted=True, path="old-secret")],
            "phones": [Cell("5550100", 5, path=timeuuid)],
            "home": [Cell("h@x", 5, path="email"), Cell("555", 5, path="phone")],
            "gone": [Cell("x", 5, path=timeuuid), Cell(None, 6, deleted=True, path=uuid.UUID(int=1))],
            "tags": [Cell(None, 5, path="secret-tag")],
        },
    )
    counts = plan.new_counts()
    masked = mask_event(plan, event, counts)
    complex_columns = masked.complex
    assert [(c.path, c.value) for c in complex_columns["emails"].cells] == [(token(b"a@x"), None)]
    assert [(c.path, c.value, c.deleted) for c in complex_columns["attrs"].cells] == [
        (token(b"ssn"), "[REDACTED]", False),
        (token(b"old-secret"), None, True),  # a deleted map key is a value too
    ]
    assert [(c.path, c.value) for c in complex_columns["phones"].cells] == [(timeuuid, "*****00")]
    assert [(c.path, c.value) for c in complex_columns["home"].cells] == [("email", salted(b"h@x")), ("phone", "555")]
    # A nulled list keeps its elements' keys (timeuuids) and liveness, never their values.
    assert [(c.path, c.value, c.deleted) for c in complex_columns["gone"].cells] == [
        (timeuuid, True, False),
        (uuid.UUID(int=1), None, True),
    ]
    # A nulled set's element keys are its values: it is left out of events altogether.
    assert "tags" not in complex_columns
    assert plan.dropped_columns == ("tags",)
    assert dict(zip((k.field for k in plan.audit), counts, strict=True)) == {
        "emails.element": 1,
        "attrs.key": 2,
        "attrs.value": 1,
        "phones.element": 1,
        "home.email": 1,
        "gone": 1,
        "tags": 1,
    }


def test_range_bounds_are_masked_and_inexact_ranges_are_flagged(keys: dict[str, KeyMaterial]) -> None:
    table = make_table("ks", "t", [("id", "int")], [("day", "text"), ("seq", "int")], [("v", "text")])
    plan = compile_table(policy(hmac_rule("day", "day")), table, keys)

    def deletion(start: tuple[Any, ...], end: tuple[Any, ...]) -> Any:
        return make_event(
            table,
            {"id": 1},
            operation=Operation.DELETE_RANGE,
            deletion=Deletion(10, 1),
            range_start=Bound(start, True),
            range_end=Bound(end, True),
        )

    same_day = deletion(("mon",), ("mon",))
    masked = mask_event(plan, same_day, [0])
    assert masked.range_start == Bound((token(b"mon"),), True)
    assert masked.range_end == Bound((token(b"mon"),), True)
    assert range_survives_masking(plan, same_day)
    assert range_survives_masking(plan, deletion(("mon", 1), ("mon", 5)))  # order only on unmasked seq
    assert not range_survives_masking(plan, deletion(("mon",), ("tue",)))  # order on a hashed day
    assert not range_survives_masking(plan, deletion((), ("tue",)))
    assert range_survives_masking(plan, deletion((), ()))  # the whole partition

    by_seq = compile_table(policy(hmac_rule("seq", "seq")), table, keys)
    assert range_survives_masking(by_seq, deletion(("mon",), ("tue",)))  # order on day only
    assert not range_survives_masking(by_seq, deletion(("mon", 1), ("tue",)))


def test_unmatched_rules_are_reported() -> None:
    spec = policy(hmac_rule("email", "email"), hmac_rule("typo", "emial"))
    assert unmatched_rules(spec, [CUSTOMERS]) == ["typo"]


def test_counters_can_only_be_nulled(keys: dict[str, KeyMaterial]) -> None:
    table = make_table("ks", "visits", [("id", "int")], [], [("n", "counter")])
    with pytest.raises(PolicyError, match="only null can mask a counter"):
        compile_table(policy(hmac_rule("n", "n")), table, keys)
    assert str(compile_table(policy(rule("n", "n", "null")), table, keys).destination_types["n"]) == "counter"


def test_null_over_a_whole_column_keeps_only_liveness(keys: dict[str, KeyMaterial]) -> None:
    # A row written by UPDATE lives through its cells (a counter table's rows always do): a nulled
    # column must stay live (presence flags, zeroed counter shards) so the row does not vanish at
    # the destination; views show it as NULL.
    table = make_table(
        "ks",
        "t",
        [("id", "int")],
        [],
        [
            ("d", "text"),
            ("f", "frozen<map<text, text>>"),
            ("s", "set<text>"),
            ("m", "map<text, text>"),
            ("l", "list<text>"),
            ("u", "contact"),
            ("n", "counter"),
        ],
    )
    spec = policy(*(rule(n, n, "null") for n in ("d", "f", "s", "m", "l", "u", "n")))
    plan = compile_table(spec, table, keys)
    assert plan.hidden == {"d", "f", "l", "u", "n"}  # not sets and maps: their element keys are values
    assert plan.dropped_columns == ("s", "m")
    assert {n: str(plan.destination_types[n]) for n in ("d", "f", "s", "m", "l", "u", "n")} == {
        "d": "boolean",
        "f": "boolean",
        "s": "set<text>",
        "m": "map<text, text>",
        "l": "list<boolean>",
        "u": str(replace(table.columns[b"u"].type, params=(PRESENCE, PRESENCE))),
        "n": "counter",
    }
    replica = uuid.UUID(int=7)
    shards = CounterValue([CounterShard(replica, 12, 345)])
    live = mask_event(
        plan,
        make_event(table, {"id": 1}, cells={"d": "ICD-2", "f": CqlMap([("a", "b")]), "n": shards}),
        plan.new_counts(),
    )
    assert {n: c.value for n, c in live.cells.items()} == {
        "d": True,
        "f": True,
        "n": CounterValue([CounterShard(replica, 0, 0)]),  # the replica stays, the count and clock go
    }
    tombstone = make_event(table, {"id": 1}, cells={"d": None})
    assert mask_event(plan, tombstone, plan.new_counts()) is tombstone


def test_values_under_one_map_key_are_masked_by_key(keys: dict[str, KeyMaterial]) -> None:
    table = make_table(
        "ks",
        "t",
        [("id", "int")],
        [],
        [("attrs", "map<text, text>"), ("frozen_attrs", "frozen<map<text, text>>"), ("codes", "map<int, text>")],
    )
    spec = policy(
        rule("ssn", "attrs", "hmac", ["value[ssn]"], keyRef="tokens"),
        rule("email", "attrs", "redact", ["value[email]"]),
        rule("frozen-ssn", "frozen_attrs", "partial", ["value[ssn]"], keepLast=2),
        rule("code", "codes", "null", ["value[42]"]),
    )
    plan = compile_table(spec, table, keys)
    event = make_event(
        table,
        {"id": 1},
        cells={"frozen_attrs": CqlMap([("colour", "blue"), ("ssn", "078-05-1120")])},
        complex_cells={
            "attrs": [Cell("078-05-1120", 5, path="ssn"), Cell("a@x", 5, path="email"), Cell("blue", 5, path="colour")],
            "codes": [Cell("secret", 5, path=42), Cell("public", 5, path=7)],
        },
    )
    masked = mask_event(plan, event, plan.new_counts())
    assert [(c.path, c.value) for c in masked.complex["attrs"].cells] == [
        ("ssn", token(b"078-05-1120")),
        ("email", "[REDACTED]"),
        ("colour", "blue"),
    ]
    assert masked.cells["frozen_attrs"].value == CqlMap([("colour", "blue"), ("ssn", "*********20")])
    assert [(c.path, c.value) for c in masked.complex["codes"].cells] == [(42, None), (7, "public")]
    assert str(destination_type(plan, "attrs")) == "map<text, text>"


def test_a_whole_value_rule_covers_keyed_value_rules_and_mixed_types_are_refused(
    keys: dict[str, KeyMaterial],
) -> None:
    table = make_table("ks", "t", [("id", "int")], [], [("attrs", "map<text, text>"), ("scores", "map<text, int>")])
    spec = policy(rule("ssn", "attrs", "null", ["value[ssn]"]), rule("all", "attrs", "redact", ["value"]))
    assert [k.rule for k in compile_table(spec, table, keys).audit] == ["all"]
    with pytest.raises(PolicyError, match=r"would mix int and text values in one map: mask every value"):
        compile_table(policy(rule("score", "scores", "hmac", ["value[math]"], keyRef="tokens")), table, keys)


def test_a_nulled_set_is_named_in_a_warning_once_per_schema(
    keys: dict[str, KeyMaterial], caplog: pytest.LogCaptureFixture
) -> None:
    table = make_table("ks", "t", [("id", "int")], [], [("tags", "set<text>"), ("l", "list<text>")])
    masker = Masker(
        policy(rule("no-tags", "tags", "null"), rule("no-l", "l", "null")),
        StaticKeys(keys),
        MaskingMetrics(CollectorRegistry()),
    )
    with caplog.at_level("WARNING", logger="cdc_replicator.masking"):
        masker.plan(table)
        masker.plan(table)
    warnings = [r.getMessage() for r in caplog.records if r.name == "cdc_replicator.masking"]
    assert len(warnings) == 1
    assert "'no-tags'" in warnings[0]
    assert "ks.t.tags" in warnings[0]
    assert "ks.t.l" not in warnings[0]


def test_a_masked_event_keeps_every_other_field(keys: dict[str, KeyMaterial]) -> None:
    # mask_event copies ChangeEvent slot by slot (see _compile_rebuild): nothing may be left behind.
    table = make_table("ks", "t", [("id", "int")], [("day", "text")], [("email", "text")])
    plan = compile_table(policy(hmac_rule("email", "email")), table, keys)
    event = make_event(
        table,
        {"id": 1},
        {"day": "mon"},
        cells={"email": "a@x"},
        index=3,
        static=False,
        deletion=Deletion(4, 5),
        durable=False,
    )
    masked = mask_event(plan, event, plan.new_counts())
    assert masked.cells["email"].value == token(b"a@x")
    for f in fields(event):
        if f.name != "cells":
            assert getattr(masked, f.name) is getattr(event, f.name), f.name
    assert masked == replace(event, cells=masked.cells)
