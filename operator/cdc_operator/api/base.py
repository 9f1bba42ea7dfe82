"""What every API model shares, and the conversion of pydantic's JSON Schema to a structural CRD schema.

The pydantic models are the single source of the CRDs: ``crds/*.yaml`` is generated from them
(``python -m cdc_operator.api.crds``), and the operator parses each object's spec with the same
models, so the schema the API server enforces and the one the code assumes cannot drift apart.

Kubernetes wants a *structural* schema (every node typed, no ``$ref``, no ``anyOf`` carrying
types, no ``const``/``title``), so :func:`structural` rewrites pydantic's output:
``$ref`` inlined, ``X | None`` collapsed to ``X`` (absence means None), ``int | str`` turned into
``x-kubernetes-int-or-string``. CEL rules and list semantics ride along as ``json_schema_extra``.
"""

from __future__ import annotations

import copy
from typing import Any

from cdc_replicator.contract.base import ContractModel

GROUP = "cdc.cassandra-cdc.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

Schema = dict[str, Any]


ApiModel = ContractModel
"""The API models' base is the contract's one base model (camelCase on the wire, snake_case in
Python, unknown fields an error: the API server prunes what the schema does not declare, so an
unknown field here means model and CRD drifted)."""


def cel(rule: str, message: str, field_path: str | None = None, reason: str | None = None) -> dict[str, str]:
    """One ``x-kubernetes-validations`` entry."""
    out = {"rule": rule, "message": message}
    if field_path:
        out["fieldPath"] = field_path
    if reason:
        out["reason"] = reason
    return out


def validations(*rules: dict[str, str]) -> dict[str, Any]:
    return {"x-kubernetes-validations": list(rules)}


_DROP = {"title", "discriminator", "$defs"}


def _merge_validations(into: Schema, rules: list[dict[str, str]]) -> None:
    if rules:
        into["x-kubernetes-validations"] = rules + into.get("x-kubernetes-validations", [])


def _collapse_any_of(node: Schema, walk: Any) -> None:
    """``X | None`` becomes X (absence is None); ``int | str`` becomes int-or-string."""
    options = [o for o in node.pop("anyOf") if o.get("type") != "null"]
    types = sorted(o.get("type", "") for o in options)
    if types == ["integer", "string"]:
        node["x-kubernetes-int-or-string"] = True
    elif len(options) == 1:
        inner = walk(options[0])
        _merge_validations(node, inner.pop("x-kubernetes-validations", []))
        for key, value in inner.items():
            node.setdefault(key, value)  # the field's own description beats the model's docstring
    else:
        raise ValueError(f"cannot make a structural schema of anyOf {options}")
    if node.get("default", 0) is None:
        del node["default"]


def _openapi_v3_0(node: Schema) -> None:
    """JSON Schema 2020-12 keywords (pydantic) that OpenAPI v3.0 (Kubernetes) spells differently."""
    for bound, flag in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(node.get(bound), int | float) and not isinstance(node[bound], bool):
            node[flag] = node.pop(bound)
            node[bound] = True
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if node.get("additionalProperties") is False:
        del node["additionalProperties"]  # extra="forbid": the API server prunes instead
    for key in _DROP:
        node.pop(key, None)


def structural(schema: Schema) -> Schema:
    """A structural OpenAPI v3 schema from pydantic's ``model_json_schema()`` output."""
    defs: dict[str, Schema] = schema.get("$defs", {})

    def walk(node: Schema) -> Schema:
        node = copy.deepcopy(node)
        if "$ref" in node:
            target = walk(defs[node.pop("$ref").split("/")[-1]])
            rules = node.pop("x-kubernetes-validations", [])
            target.update(node)  # the field's own description beats the model's docstring
            _merge_validations(target, rules)
            node = target
        if "anyOf" in node:
            _collapse_any_of(node, walk)
        _openapi_v3_0(node)
        if "properties" in node:
            node["properties"] = {k: walk(v) for k, v in node["properties"].items()}
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                node[key] = walk(node[key])
        return node

    return walk(schema)


def undocumented(schema: Schema, path: str = "") -> list[str]:
    """Paths of properties without a description (every field must teach ``kubectl explain``)."""
    missing: list[str] = []
    for name, prop in schema.get("properties", {}).items():
        here = f"{path}.{name}"
        if here == ".metadata":
            continue  # the API server forbids describing metadata; kubectl explain knows ObjectMeta
        if not prop.get("description"):
            missing.append(here)
        missing += undocumented(prop, here)
        if isinstance(prop.get("items"), dict):
            missing += undocumented(prop["items"], here + "[]")
    return missing
