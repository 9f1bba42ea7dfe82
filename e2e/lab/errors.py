"""The one error the lab raises: which service failed, why, and where its log is."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class LabError(Exception):
    def __init__(self, service: str, reason: str, log: Path | Sequence[Path] | None = None) -> None:
        super().__init__(f"{service}: {reason}")
        self.service = service
        self.reason = reason
        self.logs = [log] if isinstance(log, Path) else list(log or [])

    def describe(self, tail_lines: int = 40) -> str:
        text = f"lab: {self.service} failed: {self.reason}"
        for log in self.logs:
            if log.exists():
                text += f"\n--- last {tail_lines} lines of {log} ---\n{tail(log, tail_lines)}"
        return text


def tail(path: Path, lines: int) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - 64 * 1024))
            data = fh.read().decode("utf-8", errors="replace")
    except OSError as exc:
        return f"(log unreadable: {exc})"
    return "\n".join(data.splitlines()[-lines:])
