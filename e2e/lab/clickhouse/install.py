"""ClickHouse's server code, from npm: ``libchdb.so`` of ``@chdb/lib-linux-x64-gnu``, pinned.

No registry this machine reaches ships ``clickhouse-server`` (Debian's is years old and PyPI's
chdb-core cannot listen); chDB's npm build of libchdb does: its ``chdb_query_cmdline`` runs
ClickHouse's own ``clickhouse local``, which serves HTTP and the native protocol once told to
(``launch``). npm fetches the tarball (``npm pack``: npm's configured registry, npm's own check
against the registry's integrity), and the file is then checked against the integrity pinned
here before the library is unpacked from it, once per version, under ``~/.cache/cdc-lab``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import tarfile
from pathlib import Path

from e2e.lab import procs
from e2e.lab.errors import LabError
from e2e.lab.layout import Layout

SERVICE = "clickhouse"
PACKAGE = "@chdb/lib-linux-x64-gnu"
VERSION = "26.7.3-stable.1"
"""Exactly this one: npm's ``latest`` of the package lacks SYSTEM START LISTEN in clickhouse-local."""
INTEGRITY = "sha512-XP97mMqnc5tZpKQywR8N7cLTsHNiTmHr30pC5mzo3jWmukjKn2IBa60c2B/gWUNcuFjOMjWoorQICCqBVj5wpw=="
"""The registry's ``dist.integrity`` of that version (``npm view @chdb/lib-linux-x64-gnu@26.7.3-stable.1 dist``)."""
MEMBER = "package/libchdb.so"


def home(layout: Layout) -> Path:
    return layout.cache / f"clickhouse-{VERSION}"


def library(layout: Layout) -> Path:
    return home(layout) / "libchdb.so"


def integrity_of(path: Path) -> str:
    """The file's integrity in npm's (Subresource Integrity) form: ``sha512-<base64>``."""
    digest = hashlib.sha512()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return "sha512-" + base64.b64encode(digest.digest()).decode()


def install(layout: Layout) -> Path:
    """``libchdb.so`` of the pinned package, fetched and unpacked the first time only."""
    lib = library(layout)
    if lib.exists():
        return lib
    target = home(layout)
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    print(f"lab: fetching {PACKAGE}@{VERSION} from npm (first time only, 170 MB)", flush=True)
    out = procs.run(
        [
            "npm",
            "pack",
            f"{PACKAGE}@{VERSION}",
            "--json",
            "--pack-destination",
            staging,
            "--cache",
            layout.cache / "npm",
        ],
        SERVICE,
        cwd=staging,
        timeout=1200,
    )
    packed = json.loads(out)[0]
    tarball = staging / packed["filename"]
    found = integrity_of(tarball)
    if found != INTEGRITY or packed.get("integrity") != INTEGRITY:
        raise LabError(SERVICE, f"{tarball.name}: integrity {found} differs from the pinned {INTEGRITY}")
    with tarfile.open(tarball) as archive:
        member = archive.getmember(MEMBER)
        source = archive.extractfile(member)
        if source is None:
            raise LabError(SERVICE, f"{tarball.name}: {MEMBER} is not a file")
        with source, (staging / "libchdb.so").open("wb") as sink:
            shutil.copyfileobj(source, sink, 1 << 20)
    tarball.unlink()
    shutil.rmtree(staging / "npm-cache")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return lib
