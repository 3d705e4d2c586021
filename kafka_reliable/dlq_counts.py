"""DLQ record counts per source topic, read from watermarks and kept for a while.

The one counting rule for every part: ``{source topic: records in its DLQ}`` (high - low
summed over partitions), read through a ``CompanionTopics``, never raising into stats (the
last error is kept instead). The ReliableConsumer reads on demand with a TTL; the producer's
``DlqWatch`` reads from its maintenance thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from kafka_reliable.config import TopicNaming
from kafka_reliable.topics import CompanionTopics


class DlqCounts:
    """Counts of the DLQs of ``topics()``; ``get()`` reads them again after ``ttl_s``."""

    def __init__(
        self,
        *,
        companions: Callable[[], CompanionTopics],
        naming: TopicNaming,
        topics: Callable[[], Iterable[str]],
        ttl_s: float = 5.0,
    ) -> None:
        self._make = companions
        self._client: CompanionTopics | None = None
        self._naming, self._topics, self._ttl_s = naming, topics, ttl_s
        self._lock = threading.Lock()
        self._counts: dict[str, int] | None = None
        self._read_at = float("-inf")
        self.last_error: str | None = None

    def read(self, timeout_s: float = 5.0) -> dict[str, int] | None:
        """Read every DLQ's count now; None (and ``last_error``) when the cluster did not answer."""
        with self._lock:
            self._read_at = time.monotonic()
            if self._client is None:
                self._client = self._make()
            try:
                counts = {
                    t: self._client.count(self._naming.dlq_topic(t), timeout_s)
                    for t in list(self._topics())
                }
            except Exception as exc:  # noqa: BLE001 - stats must answer when the cluster does not
                self.last_error = str(exc) or type(exc).__name__
                return None
            self.last_error = None
            self._counts = counts
            return dict(counts)

    def get(self) -> dict[str, int]:
        """The counts, read again when older than ``ttl_s`` (empty before a first good read)."""
        if time.monotonic() - self._read_at >= self._ttl_s:
            self.read()
        with self._lock:
            return dict(self._counts or {})

    def close(self) -> None:
        """Drop the admin client (a later ``get`` makes a new one)."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
