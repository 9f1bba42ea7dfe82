"""Runs inside a fresh mount namespace (``unshare --mount``): bind-mount the pod's volumes onto
their mountPaths, then exec the container's command. Stdlib only: it runs as a plain script.

Usage: launch.py SPEC.json, where SPEC is {"mounts": [{"source", "target", "readOnly"}],
"workingDir", "root", "runnerPid", "keep", "argv", "env"}. The process keeps its pid through both execs (unshare, then
this, then the command), so the runner signals the container by the pid it started.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import signal
import sys
from pathlib import Path

MS_RDONLY = 1
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
PR_SET_PDEATHSIG = 1


def _mount(libc: ctypes.CDLL, source: str | None, target: str, flags: int) -> None:
    src = source.encode() if source is not None else None
    if libc.mount(src, target.encode(), None, flags, None) != 0:
        err = ctypes.get_errno()
        shown = Path(source).readlink() if source and source.startswith("/proc/self/fd/") else source
        raise OSError(err, f"mount {shown} on {target}: {os.strerror(err)}")


def _ensure_target(source: str, target: Path) -> None:
    # A mountpoint must exist. Missing ones are created on the real filesystem (empty,
    # outside any namespace): that is the one trace a pod leaves on the host.
    if Path(source).is_dir():
        target.mkdir(parents=True, exist_ok=True)  # fails, rightly, on a file in the way
    elif not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch()


def _restore(libc: ctypes.CDLL, path: str, fd: int, before: os.stat_result) -> None:
    """Bind a host directory back where it was if a volume mounted over a parent hid it."""
    try:
        now = Path(path).stat()
        if (now.st_dev, now.st_ino) == (before.st_dev, before.st_ino):
            return
    except FileNotFoundError:
        pass
    Path(path).mkdir(parents=True, exist_ok=True)  # inside the volume now covering its parent
    _mount(libc, f"/proc/self/fd/{fd}", path, MS_BIND | MS_REC)


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    # Die with the runner even when it is killed outright: no replicator outlives a crashed test.
    # (Inherited across exec; our parent is the runner itself, since unshare exec'd us.)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != spec["runnerPid"]:
        sys.exit(137)  # the runner died before the prctl: nothing would ever stop us
    # Parents first, so that a mount nested in another volume lands inside it.
    mounts = sorted(spec["mounts"], key=lambda m: m["target"].count("/"))
    # Hold every source open before mounting anything: a volume mounted over /tmp would
    # otherwise hide the sources living under /tmp. /proc/self/fd/N reaches them still.
    held = [os.open(m["source"], os.O_PATH) for m in mounts]
    keep = [(path, os.open(path, os.O_PATH | os.O_DIRECTORY), Path(path).stat()) for path in spec.get("keep", [])]
    root = os.open(spec["root"], os.O_PATH | os.O_DIRECTORY)
    for m, fd in zip(mounts, held, strict=True):
        source, target = f"/proc/self/fd/{fd}", Path(m["target"])
        _ensure_target(source, target)
        _mount(libc, source, str(target), MS_BIND | MS_REC)
        if m.get("readOnly"):
            _mount(libc, None, str(target), MS_REMOUNT | MS_BIND | MS_RDONLY)
    for fd in held:
        os.close(fd)
    for path, fd, before in keep:
        _restore(libc, path, fd, before)
        os.close(fd)
    workdir = spec.get("workingDir") or ""
    if workdir and Path(workdir).is_dir():
        os.chdir(workdir)
    else:
        os.fchdir(root)  # by fd: a volume mounted over a parent of the pod root may hide its path
    os.close(root)
    argv, env = spec["argv"], spec["env"]
    try:
        os.execvpe(argv[0], argv, env)  # noqa: S606 - the container command, as given in the pod spec
    except OSError as exc:
        print(f"podrunner: cannot run {argv[0]!r}: {exc}", file=sys.stderr, flush=True)
        sys.exit(127)


if __name__ == "__main__":
    main()
