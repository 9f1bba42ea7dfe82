"""The policy model: what it accepts, what it rejects, and the CRD schema it yields."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cdc_replicator.contract.policy import (
    Action,
    Classification,
    KeySource,
    MaskingKeys,
    MaskingPolicySpec,
    MaskingRule,
    crd_schema,
)
from pydantic import ValidationError

pytestmark = pytest.mark.unit


def rule(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "email",
        "classification": "PII",
        "match": {"keyspace": "shop", "table": "customers", "column": "email"},
        "action": "hmac",
        "keyRef": "tokens",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def test_camel_case_aliases_and_snake_case_names_both_load() -> None:
    by_alias = MaskingRule.model_validate(rule(action="partial", keyRef=None, keepLast=4, maskChar="#"))
    by_name = MaskingRule(
        name="email",
        classification=Classification.PII,
        match={"column": "email"},  # type: ignore[arg-type]
        action=Action.PARTIAL,
        keep_last=4,
        mask_char="#",
    )
    assert by_alias.keep_last == by_name.keep_last == 4
    dumped = by_alias.model_dump(by_alias=True, exclude_none=True, mode="json")
    assert dumped["keepLast"] == 4
    assert dumped["maskChar"] == "#"


def test_unknown_fields_are_rejected() -> None:
    with pytest.raises(ValidationError, match="keepLst"):
        MaskingRule.model_validate(rule(action="partial", keyRef=None, keepLst=4))
    with pytest.raises(ValidationError, match="Extra inputs"):
        MaskingRule.model_validate(rule(colour="red"))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"keyRef": None}, "action hmac requires keyRef"),
        ({"action": "hash", "keyRef": None}, "action hash requires saltRef"),
        ({"action": "partial", "keyRef": None}, "action partial requires keepLast"),
        ({"action": "redact"}, "keyRef applies to action hmac, not redact"),
        ({"marker": "x"}, "marker applies to action redact, not hmac"),
        ({"action": "null", "keyRef": None, "keepLast": 2}, "keepLast applies to action partial"),
        ({"match": {"column": "a", "columnRegex": "a"}}, "exactly one of column and columnRegex"),
        ({"match": {"table": "t"}}, "exactly one of column and columnRegex"),
        ({"match": {"columnRegex": "(unclosed"}}, "not a valid regular expression"),
        ({"match": {"column": "c", "path": ["value", ""]}}, "at least 1 character"),
        ({"name": "Not A Name"}, "String should match pattern"),
        ({"classification": "PCI"}, "PII"),
    ],
)
def test_invalid_rules_say_why(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        MaskingRule.model_validate(rule(**overrides))


def test_rule_names_are_unique_within_a_policy() -> None:
    with pytest.raises(ValidationError, match="'email' appears twice"):
        MaskingPolicySpec.model_validate({"rules": [rule(), rule()]})


def test_secret_refs_lists_keys_and_salts() -> None:
    spec = MaskingPolicySpec.model_validate(
        {
            "rules": [
                rule(),
                rule(name="ssn", action="hash", keyRef=None, saltRef="pepper"),
                rule(name="n", action="null", keyRef=None),
            ]
        }
    )
    assert spec.secret_refs() == {"tokens", "pepper"}


def test_key_sources_default_to_secret_mount_and_base64_and_need_unique_names() -> None:
    source = KeySource.model_validate({"name": "tokens", "path": "/cdc/masking/tokens/"})
    assert (source.mount, source.path, source.field, source.encoding.value) == (
        "secret",
        "cdc/masking/tokens",
        "key",
        "base64",
    )
    with pytest.raises(ValidationError, match="key names must be unique: tokens"):
        MaskingKeys.model_validate({"keys": [{"name": "tokens", "path": "a"}, {"name": "tokens", "path": "b"}]})


def _walk(node: Any) -> Any:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_crd_schema_is_structural_and_documented() -> None:
    schema = crd_schema()
    text = json.dumps(schema)
    assert "$ref" not in text
    assert "anyOf" not in text
    assert '"null"' not in text.replace('"enum": ["hash", "hmac", "redact", "partial", "null"]', "")
    rule_schema = schema["properties"]["rules"]["items"]  # type: ignore[index]
    assert set(rule_schema["properties"]) == {
        "name",
        "classification",
        "match",
        "action",
        "keyRef",
        "saltRef",
        "keepLast",
        "maskChar",
        "marker",
    }
    assert rule_schema["required"] == ["name", "classification", "match", "action"]
    assert any("has(self.keyRef)" in v["rule"] for v in rule_schema["x-kubernetes-validations"])
    # Every property has a description, for `kubectl explain`.
    for node in _walk(schema):
        for name, prop in node.get("properties", {}).items():
            assert prop.get("description"), f"property {name} has no description"
