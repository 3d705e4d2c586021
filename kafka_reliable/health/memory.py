"""Memory usage probes: fractions 0..1 of the memory this process (or container) may use."""

from __future__ import annotations

from pathlib import Path

import psutil

#: cgroup v2 and v1 files holding the memory limit and the current usage.
_CGROUP_V2 = (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory.current"))
_CGROUP_V1 = (
    Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
    Path("/sys/fs/cgroup/memory/memory.usage_in_bytes"),
)


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def cgroup_memory() -> tuple[int, int] | None:
    """``(limit_bytes, used_bytes)`` of this cgroup when a real limit is set, else None."""
    total = psutil.virtual_memory().total
    for limit_path, used_path in (_CGROUP_V2, _CGROUP_V1):
        limit = _read_int(limit_path)
        if limit is not None and 0 < limit < total:
            used = _read_int(used_path)
            return limit, used if used is not None else 0
    return None


def process_memory_usage() -> float:
    """This process's RSS over the machine's RAM, or over the cgroup limit when one is set."""
    rss = psutil.Process().memory_info().rss
    cg = cgroup_memory()
    limit = cg[0] if cg is not None else psutil.virtual_memory().total
    return rss / limit


def container_memory_usage() -> float:
    """The whole cgroup's usage over its limit when limited, else the machine's used fraction.

    For a health check run beside the application (same container), this is the figure that
    matters; a short-lived CLI's own RSS would say nothing.
    """
    cg = cgroup_memory()
    if cg is not None:
        limit, used = cg
        return used / limit
    return psutil.virtual_memory().percent / 100.0
