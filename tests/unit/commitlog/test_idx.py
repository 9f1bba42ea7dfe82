"""The ``_cdc.idx`` file: offset, COMPLETED, and the empty file seen mid-rewrite."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from cdc_replicator.commitlog.errors import CorruptSegmentError
from cdc_replicator.commitlog.idx import IdxState, parse_idx, read_idx

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "state"),
    [
        ("72899", IdxState(72899, False)),
        ("33554432\nCOMPLETED", IdxState(33554432, True)),
        ("", None),
        ("12\nCOMPL", None),
        ("abc", None),
    ],
)
def test_parse(text: str, state: IdxState | None) -> None:
    assert parse_idx(text) == state


def test_missing_file_means_no_cdc_data_yet(tmp_path: Path) -> None:
    assert read_idx(tmp_path / "CommitLog-7-1_cdc.idx") is None


def test_empty_file_is_retried_until_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "CommitLog-7-1_cdc.idx"
    path.write_text("")

    def rewrite() -> None:
        time.sleep(0.05)
        path.write_text("100\nCOMPLETED")

    thread = threading.Thread(target=rewrite)
    thread.start()
    try:
        assert read_idx(path, attempts=200, delay_s=0.005) == IdxState(100, True)
    finally:
        thread.join()


def test_file_that_stays_empty_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "CommitLog-7-1_cdc.idx"
    path.write_text("")
    with pytest.raises(CorruptSegmentError, match="unreadable"):
        read_idx(path, attempts=3, delay_s=0.001)
