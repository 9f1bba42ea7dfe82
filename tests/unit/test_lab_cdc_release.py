"""The lab releases old finished CDC segments so a long-kept lab never fills cdc_total_space."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from e2e.lab.cassandra import Node, release_old_segments

pytestmark = pytest.mark.unit


def _segment(cdc_raw: Path, segment_id: int, idx: str, age_s: float) -> Path:
    log = cdc_raw / f"CommitLog-8-{segment_id}.log"
    log.write_bytes(b"")
    index = cdc_raw / f"CommitLog-8-{segment_id}_cdc.idx"
    index.write_text(idx)
    then = time.time() - age_s
    os.utime(index, (then, then))
    return log


def test_only_old_completed_segments_go_log_and_index_together(tmp_path: Path) -> None:
    node = Node(index=0, root=tmp_path, cql_port=1, storage_port=2, jmx_port=3, token=0)
    node.cdc_raw.mkdir()
    old_done = _segment(node.cdc_raw, 1, "1024\nCOMPLETED\n", age_s=7200)
    old_live = _segment(node.cdc_raw, 2, "1024\n", age_s=7200)
    new_done = _segment(node.cdc_raw, 3, "1024\nCOMPLETED\n", age_s=10)

    assert release_old_segments(node, older_than_s=1800) == 1

    assert not old_done.exists()
    assert not old_done.with_name("CommitLog-8-1_cdc.idx").exists()
    assert old_live.exists()
    assert new_done.exists()
