"""Fixtures of the masking unit tests."""

from __future__ import annotations

import pytest
from cdc_replicator.masking.actions import KeyMaterial


@pytest.fixture
def keys() -> dict[str, KeyMaterial]:
    return {"tokens": KeyMaterial(1, b"k" * 32), "pepper": KeyMaterial(3, b"salt-of-the-earth")}
