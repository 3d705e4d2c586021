"""The producer's view of its DLQs: exact counts (read by ``dlq_counts.DlqCounts``), trimming to
``dlq_max_size``, and alerts before retention drops records.

Counts are read from watermarks by the maintenance thread; ``get_stats()`` reads what was
last read and never waits on the cluster (``None`` before the first read).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from kafka_reliable.config import TopicNaming
from kafka_reliable.dlq import DeadLetterQueue
from kafka_reliable.dlq_counts import DlqCounts
from kafka_reliable.topics import CompanionTopics

log = logging.getLogger(__name__)

#: Seconds between checks for DLQ records about to expire by retention.
DLQ_EXPIRY_CHECK_INTERVAL_S = 60.0


class DlqWatch:
    """DLQ record counts per source topic, kept within ``max_size``."""

    def __init__(
        self,
        *,
        dlq: DeadLetterQueue,
        companions: CompanionTopics,
        naming: TopicNaming,
        topics: Callable[[], Iterable[str]],
        max_size: int,
        check_interval_s: float = 5.0,
    ) -> None:
        self._dlq = dlq
        self._companions = companions
        self._naming = naming
        self._topics = topics
        self.max_size = max_size
        self._interval_s = check_interval_s
        self._lock = threading.Lock()
        #: The one counting rule (``dlq_counts``); trimming and alerts stay here.
        self._reader = DlqCounts(
            companions=lambda: companions, naming=naming, topics=topics, ttl_s=check_interval_s
        )
        self._counts: dict[str, int] | None = None
        self._checked_at = 0.0
        self._expiry_checked_at = 0.0
        self.trimmed = 0
        self.last_error: str | None = None

    @property
    def counts(self) -> dict[str, int] | None:
        """``{source topic: records in its DLQ}`` as last read; None before the first read."""
        with self._lock:
            return None if self._counts is None else dict(self._counts)

    @property
    def total(self) -> int:
        return sum((self.counts or {}).values())

    def forget(self, topic: str) -> None:
        with self._lock:
            if self._counts is not None:
                self._counts.pop(topic, None)

    def due(self) -> bool:
        return time.monotonic() - self._checked_at >= self._interval_s

    def refresh_now(self, timeout_s: float) -> dict[str, int] | None:
        """Read every DLQ's count (each read bounded by ``timeout_s``); None when it failed."""
        read = self._reader.read(timeout_s)
        self.last_error = self._reader.last_error
        if read is None:  # reported in stats; the next tick tries again
            return None
        counts = {t: n for t, n in read.items() if n}
        with self._lock:
            self._counts = counts
        return counts

    def refresh(self, timeout_s: float = 10.0) -> None:
        """Read every DLQ's count; trim the ones over the limit; check expiry once a minute."""
        self._checked_at = time.monotonic()
        counts = self.refresh_now(timeout_s)
        if counts is None:
            return
        self._trim(counts)
        if time.monotonic() - self._expiry_checked_at >= DLQ_EXPIRY_CHECK_INTERVAL_S:
            self._expiry_checked_at = time.monotonic()
            for t, n in counts.items():
                if n:
                    self._dlq.check_alerts(t)

    def _trim(self, counts: dict[str, int]) -> None:
        if not self.max_size:
            return
        for t, n in counts.items():
            if n > self.max_size:
                trimmed = self._dlq.enforce_max_size(t, self.max_size)
                self.trimmed += trimmed
                with self._lock:
                    if self._counts is not None:
                        self._counts[t] = n - trimmed
                log.warning(
                    "DLQ of %s over its max size %d: trimmed the %d oldest records",
                    t,
                    self.max_size,
                    trimmed,
                )

    def stats(self, routed_by_topic: dict[str, int]) -> dict[str, Any]:
        counts = self.counts
        out: dict[str, Any] = {
            "total_messages": None if counts is None else sum(counts.values()),
            "topic_breakdown": {} if counts is None else counts,
            "routed_by_this_producer": routed_by_topic,
            "trimmed": self.trimmed,
        }
        if counts is None:
            out["unknown"] = "DLQ sizes not read yet" + (
                f" ({self.last_error})" if self.last_error else ""
            )
        return out
