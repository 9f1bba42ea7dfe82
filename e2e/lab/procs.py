"""Starting, finding and stopping the lab's background processes.

Each process is started in its own session (so ``up`` can exit while it runs on),
its output appended to a log file, and its pid kept in a pidfile. A pid alone could be
reused by an unrelated process after a reboot, so liveness also checks the command line.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from e2e.lab.errors import LabError


def run(
    cmd: Sequence[str | Path],
    service: str,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 1800,
    log: Path | None = None,
) -> str:
    """Runs a command to completion; a failure names the service and shows the output."""
    merged = {**os.environ, **(env or {})}
    try:
        proc = subprocess.run(
            [str(c) for c in cmd], env=merged, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise LabError(service, f"`{' '.join(map(str, cmd))}` timed out after {timeout:.0f}s", log) from exc
    if log is not None:
        with log.open("a") as fh:
            fh.write(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        output = (proc.stdout + proc.stderr).strip().splitlines()[-30:]
        raise LabError(service, f"`{' '.join(map(str, cmd))}` exited {proc.returncode}:\n" + "\n".join(output), log)
    return proc.stdout


def start(
    cmd: Sequence[str | Path],
    pidfile: Path,
    log: Path,
    marker: str,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> int:
    """Starts ``cmd`` detached; returns once its command line shows ``marker`` (or it died)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(  # the lab outlives this call by design
            [str(c) for c in cmd],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None,  # the whole environment, when given
            cwd=cwd,
            start_new_session=True,
        )
    # Until exec completes, /proc shows the forking Python's command line; a liveness check
    # in that window would take the new process for a dead one. The pidfile is written only
    # once the process is really there: one that dies at once (its port taken by a running
    # instance, say) must not overwrite the pid of the instance that runs.
    staged = pidfile.with_suffix(".starting")
    staged.write_text(str(proc.pid))
    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline:
        if running_pid(staged, marker) is not None:
            staged.replace(pidfile)
            break
        time.sleep(0.02)
    staged.unlink(missing_ok=True)
    return proc.pid


def running_pid(pidfile: Path, marker: str) -> int | None:
    """The pid in ``pidfile`` if that process is alive and its command line contains ``marker``."""
    try:
        pid = int(pidfile.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (OSError, ValueError):
        return None
    state = _proc_state(pid)
    if marker not in cmdline or state in {"Z", "X"}:
        return None
    return pid


def is_alive(pidfile: Path, marker: str) -> bool:
    return running_pid(pidfile, marker) is not None


def _proc_state(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "X"
    return stat.rsplit(")", 1)[1].split()[0]


def stop(pidfile: Path, marker: str, timeout: float = 30) -> bool:
    pid = running_pid(pidfile, marker)
    if pid is None:
        pidfile.unlink(missing_ok=True)
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and running_pid(pidfile, marker) is not None:
        time.sleep(0.2)
    if running_pid(pidfile, marker) is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)
    return True


def wait_until(
    check: Callable[[], bool],
    *,
    service: str,
    what: str,
    timeout: float,
    log: Path | Sequence[Path] | None,
    alive: Callable[[], bool] | None = None,
    interval: float = 0.5,
) -> None:
    """Polls ``check`` until it holds; fails early, with the log, if the process died."""
    deadline = time.monotonic() + timeout
    last_error = ""
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise LabError(service, f"the process exited while waiting for {what}", log)
        try:
            if check():
                return
        except Exception as exc:
            last_error = f" (last probe error: {type(exc).__name__}: {exc})"
        time.sleep(interval)
    raise LabError(service, f"not ready after {timeout:.0f}s waiting for {what}{last_error}", log)
