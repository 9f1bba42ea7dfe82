"""spec.source.cdcTotalSpace: a quantity in the pipeline, bytes in each node's replicator config."""

from __future__ import annotations

import pytest
from cdc_operator.render.config import replicator_config
from pydantic import ValidationError

from tests.unit.operator.conftest import example, make_inputs

pytestmark = pytest.mark.unit


def spec(**source: object) -> dict[str, object]:
    out = example("pipeline-three-nodes.yaml")["spec"]
    out["source"] = {**out["source"], **source}
    return dict(out)


@pytest.mark.parametrize(("quantity", "expected"), [("4Gi", 4 << 30), ("2048Mi", 2048 << 20), (1000000, 1000000)])
def test_the_quantity_reaches_every_replicator_in_bytes(quantity: object, expected: int) -> None:
    inputs = make_inputs(spec(cdcTotalSpace=quantity))
    assert {replicator_config(inputs, n).source.cdc_total_space_bytes for n in inputs.nodes} == {expected}


def test_unset_lets_the_replicator_ask_cassandra() -> None:
    inputs = make_inputs()
    assert replicator_config(inputs, inputs.nodes[0]).source.cdc_total_space_bytes is None
    assert "cdcTotalSpaceBytes: null" in replicator_config(inputs, inputs.nodes[0]).to_yaml()


@pytest.mark.parametrize("quantity", ["lots", "0", 0, "-1Gi"])
def test_a_bad_quantity_is_refused_naming_the_field(quantity: object) -> None:
    with pytest.raises(ValidationError, match="cdcTotalSpace"):
        make_inputs(spec(cdcTotalSpace=quantity))
