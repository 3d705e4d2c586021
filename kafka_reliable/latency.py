"""The last N latencies (ms) in a ring, percentiles on demand: one for every part.

One writer adds (the producer's poller, the consumer's engine); ``snapshot`` may run on any
thread (a concurrent snapshot may miss the newest value). The snapshot has the feature
document's keys: ``avg_ms``, ``p50_ms``, ``p95_ms``, ``p99_ms``, ``max_ms``, ``samples``.
"""

from __future__ import annotations

import threading
from typing import TypedDict

#: Default number of samples kept.
DEFAULT_SIZE = 10_000


class LatencyStats(TypedDict):
    """``latency_stats`` of ``get_stats()`` (producer and consumer)."""

    avg_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    samples: int


class LatencyRing:
    """The last ``size`` values (ms)."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self._buf = [0.0] * size
        self._size = size
        self._n = 0
        self._lock = threading.Lock()

    def add(self, ms: float) -> None:
        self._buf[self._n % self._size] = ms
        self._n += 1

    def add_many(self, values_ms: list[float]) -> None:
        """Several values at once (a batch folded by the caller)."""
        buf, size, n = self._buf, self._size, self._n
        for v in values_ms:
            buf[n % size] = v
            n += 1
        self._n = n

    def snapshot(self) -> LatencyStats:
        with self._lock:
            filled = min(self._n, self._size)
            data = sorted(self._buf[:filled])
        if not filled:
            return LatencyStats(
                avg_ms=0.0, p50_ms=0.0, p95_ms=0.0, p99_ms=0.0, max_ms=0.0, samples=0
            )

        def pct(p: float) -> float:
            return data[min(filled - 1, int(p * filled))]

        return LatencyStats(
            avg_ms=sum(data) / filled,
            p50_ms=pct(0.5),
            p95_ms=pct(0.95),
            p99_ms=pct(0.99),
            max_ms=data[-1],
            samples=filled,
        )
