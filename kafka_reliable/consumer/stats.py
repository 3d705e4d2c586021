"""Counters and latency samples of one ReliableConsumer (read by ``get_stats`` from any thread)."""

from __future__ import annotations

import threading
from typing import Any

#: Samples kept for the handler-latency and lateness percentiles.
WINDOW = 10_000


class Samples:
    """The last ``size`` values (ms); percentiles on demand."""

    def __init__(self, size: int = WINDOW) -> None:
        self._buf = [0.0] * size
        self._size = size
        self._n = 0
        self._lock = threading.Lock()

    def add(self, ms: float) -> None:
        """One writer (the consumer loop); a concurrent snapshot may miss the newest value."""
        self._buf[self._n % self._size] = ms
        self._n += 1

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            filled = min(self._n, self._size)
            data = sorted(self._buf[:filled])
        if not filled:
            return {"avg_ms": 0.0, "p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0, "samples": 0}

        def pct(p: float) -> float:
            return data[min(filled - 1, int(p * filled))]

        return {"avg_ms": sum(data) / filled, "p50_ms": pct(0.5), "p95_ms": pct(0.95), "p99_ms": pct(0.99),
                "max_ms": data[-1], "samples": filled}


class ConsumerStats:
    """What happened to the records this consumer saw."""

    COUNTERS = ("handled", "failed", "retried", "dead_lettered", "parked", "poison", "successful_retries",
                "early", "rebalances")

    def __init__(self) -> None:
        self.counts: dict[str, int] = dict.fromkeys(self.COUNTERS, 0)
        self.dlq_by_topic: dict[str, int] = {}
        self.failed_by_class: dict[str, int] = {}
        self.handler_ms = Samples()
        self.lateness_ms = Samples()

    def snapshot(self) -> dict[str, Any]:
        c = dict(self.counts)
        attempts = c["handled"] + c["failed"]
        return {
            "messages_handled": c["handled"],
            "messages_failed": c["failed"],
            "error_rate": c["failed"] / attempts if attempts else 0.0,
            "messages_retried": c["retried"],
            "messages_dead_lettered": c["dead_lettered"],
            "messages_parked": c["parked"],
            "poison_messages": c["poison"],
            "failed_by_error_class": dict(self.failed_by_class),
            "latency_stats": self.handler_ms.snapshot(),
            "lateness_stats": self.lateness_ms.snapshot(),
            "retry_stats": {"total_retries": c["retried"], "successful_retries": c["successful_retries"]},
            "rebalances": c["rebalances"],
        }
