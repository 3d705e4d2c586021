"""The overview: every DLQ and retry topic of the cluster, counted from watermarks.

Nothing here scans a topic. Counts are ``high - low``; the worker group's lag is ``high -
committed``. What needs records (a DLQ's error classes and ages, how many pending retries
are due or late) is read per topic on demand, bounded (:mod:`kafka_reliable.console.samples`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafka_reliable.console.cluster import Cluster, Watermarks
from kafka_reliable.console.settings import ConsoleSettings
from kafka_reliable.dlq.queue import DLQ_NAME, FOREIGN_SUFFIXES

#: Values of :attr:`DlqTopic.kind`.
KIND_OURS = "ours"
KIND_GROUP = "group"
KIND_FOREIGN = "foreign"


@dataclass(frozen=True, kw_only=True)
class DlqTopic:
    """One DLQ found on the cluster; ``source`` and ``group`` as far as its name says."""

    name: str
    kind: str
    source: str | None
    group: str | None
    count: int
    partitions: int
    max_size: int | None

    @property
    def fill(self) -> float | None:
        """``count / dlq_max_size`` when a max size is configured."""
        return None if not self.max_size else self.count / self.max_size


@dataclass(frozen=True, kw_only=True)
class RetryTopic:
    """A retry topic with the backlog of the group that consumes it."""

    name: str
    group: str
    count: int
    pending: int
    committed: bool


def _source_and_group(base: str, topics: set[str]) -> tuple[str | None, str | None]:
    """``orders`` for ``orders.dlq``; ``(orders, billing)`` for ``orders.billing.dlq``."""
    if base in topics:
        return base, None
    head, _, group = base.rpartition(".")
    while head:
        if head in topics:
            return head, group
        head, _, rest = head.rpartition(".")
        group = f"{rest}.{group}"
    return None, None


def classify(name: str, topics: set[str], settings: ConsoleSettings) -> DlqTopic | None:
    """The DLQ a topic is, by its name, or None when its name does not say DLQ."""
    naming = settings.naming
    if name.endswith(naming.retry_suffix):
        return None
    if name.endswith(naming.dlq_suffix) and len(name) > len(naming.dlq_suffix):
        source, group = _source_and_group(name[: -len(naming.dlq_suffix)], topics)
        if source is None:
            source = name[: -len(naming.dlq_suffix)]
        kind = KIND_GROUP if group else KIND_OURS
    elif name.endswith(FOREIGN_SUFFIXES) or DLQ_NAME.search(name):
        stripped = next((name[: -len(s)] for s in FOREIGN_SUFFIXES if name.endswith(s)), None)
        source, group, kind = (stripped if stripped in topics else None), None, KIND_FOREIGN
    else:
        return None
    return DlqTopic(
        name=name,
        kind=kind,
        source=source,
        group=group,
        count=0,
        partitions=0,
        max_size=settings.dlq_max_size,
    )


def _count(wm: Watermarks) -> int:
    return sum(hi - lo for lo, hi in wm.values())


def find_dlqs(cluster: Cluster, settings: ConsoleSettings, contains: str = "") -> list[DlqTopic]:
    """Every DLQ on the cluster (whose name contains ``contains``), with its record count."""
    topics = cluster.topics(fresh=True)
    names = set(topics)
    found = [
        d for t in sorted(names) if contains in t if (d := classify(t, names, settings)) is not None
    ]
    wms = cluster.watermarks(d.name for d in found)
    return [
        DlqTopic(
            name=d.name,
            kind=d.kind,
            source=d.source,
            group=d.group,
            count=_count(wms.get(d.name, {})),
            partitions=topics[d.name],
            max_size=d.max_size,
        )
        for d in found
    ]


def find_retry_topics(
    cluster: Cluster, settings: ConsoleSettings, contains: str = ""
) -> list[RetryTopic]:
    """Retry topics with their backlog: the worker group's for ``<topic>.retry``, a
    ReliableConsumer group's for ``<topic>.<group>.retry``."""
    topics = cluster.topics()
    names = set(topics)
    suffix = settings.naming.retry_suffix
    retry = [
        t for t in sorted(names) if t.endswith(suffix) and len(t) > len(suffix) and contains in t
    ]
    wms = cluster.watermarks(retry)
    commits: dict[str, dict[tuple[str, int], int]] = {}
    out: list[RetryTopic] = []
    for t in retry:
        _source, group = _source_and_group(t[: -len(suffix)], names)
        group = group or settings.worker_group
        if group not in commits:
            commits[group] = cluster.committed(group)
        wm = wms.get(t, {})
        pending, any_commit = 0, False
        for p, (lo, hi) in wm.items():
            c = commits[group].get((t, p))
            any_commit = any_commit or c is not None
            pending += hi - (lo if c is None else max(lo, min(c, hi)))
        out.append(
            RetryTopic(name=t, group=group, count=_count(wm), pending=pending, committed=any_commit)
        )
    return out


def spool_summary(path: Path | None) -> dict[str, Any] | None:
    """The spool's own public summary (counts only), or ``{"error": ...}``; None without a path.

    Only ``Spool(path, create=False).summary()`` is used: the spool's format is its own.
    """
    if path is None:
        return None
    try:
        from kafka_reliable.spool import Spool

        spool = Spool(path, create=False)
        try:
            return dict(spool.summary())
        finally:
            spool.close()
    except Exception as exc:  # noqa: BLE001 - shown on the page, the console keeps running
        return {"path": str(path), "error": f"cannot read the spool: {exc}"}
