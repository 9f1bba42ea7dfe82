"""The node's ``cdc_total_space``: how much ``cdc_raw`` may hold before Cassandra rejects writes to CDC tables.

Exported as ``cdc_total_space_bytes`` beside ``cdc_raw_bytes`` so an alert can warn long before the
limit (``CommitLogSegmentManagerCDC.CDCSizeTracker`` refuses a new CDC segment once the segments
in ``cdc_raw`` plus the one being allocated exceed it). Where it comes from, in order:

1. ``source.cdcTotalSpaceBytes`` in the config (the operator renders it from the pipeline's
   ``spec.source.cdcTotalSpace``): what the user states wins;
2. the node's ``system_views.settings`` virtual table over CQL. Cassandra 4.1 and 5.0 both list
   ``cdc_total_space`` as a ``DataStorageSpec`` string (``4096MiB``) and keep the deprecated
   ``cdc_total_space_in_mb`` (a plain number of MiB, with a client warning) as a replacement
   name; 4.0 knows only the latter. Both show the effective value: when cassandra.yaml leaves it
   at 0, ``DatabaseDescriptor.applySimpleConfig`` writes back min(4096 MiB, 1/8 of the volume).

Virtual tables are node-local and the session's contact points need not be this replicator's own
node, so every host the session holds a pool to is asked and the smallest answer is kept: exact
when the cluster's nodes agree (the usual case), conservative when they do not.
"""

from __future__ import annotations

import logging
import re
from typing import Any

log = logging.getLogger(__name__)

SETTINGS_QUERY = "SELECT value FROM system_views.settings WHERE name = %s"
SETTING_NAMES = ("cdc_total_space", "cdc_total_space_in_mb")
_UNITS = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}
_SPEC = re.compile(r"^\s*(\d+)\s*(B|KiB|MiB|GiB)\s*$")


def parse_setting(name: str, value: str | None) -> int | None:
    """Bytes from a ``system_views.settings`` value: ``cdc_total_space`` is a ``DataStorageSpec``
    (``<n>B|KiB|MiB|GiB``), ``cdc_total_space_in_mb`` a number of MiB. None when absent or unreadable."""
    if value is None:
        return None
    if name == "cdc_total_space_in_mb":
        return int(value) << 20 if value.strip().isdigit() else None
    match = _SPEC.match(value)
    return int(match.group(1)) * _UNITS[match.group(2)] if match else None


def _host_value(session: Any, host: Any) -> int | None:
    for name in SETTING_NAMES:
        rows = list(session.execute(SETTINGS_QUERY, (name,), timeout=10, host=host))
        if rows:
            return parse_setting(name, rows[0].value)
    return None


def from_cassandra(session: Any) -> int | None:
    """The smallest ``cdc_total_space`` among the hosts the session is connected to; None if none answers."""
    values: list[int] = []
    for host in list(session.get_pool_state()):
        try:
            value = _host_value(session, host)
        except Exception as exc:  # the driver raises several kinds; a host that cannot answer is skipped
            log.debug("cdc_total_space: %s did not answer: %s", host, exc)
            continue
        if value is not None:
            values.append(value)
    if values and len(set(values)) > 1:
        log.warning("cdc_total_space differs between nodes (%s bytes); using the smallest", sorted(set(values)))
    return min(values) if values else None
