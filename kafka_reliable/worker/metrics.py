"""Prometheus collectors of the retry worker, on a registry the caller passes (never a global)."""

from __future__ import annotations

import bisect
import logging
import math
import threading
from collections import Counter as Tally
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from kafka_reliable.errors import KafkaReliableError

log = logging.getLogger(__name__)

#: Lateness buckets (seconds): republish time minus due time.
LATENESS_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class BatchHistogram(Collector):
    """A histogram exposed like prometheus-client's, that also takes ``observe_many(value, n)``:
    the worker adds a whole dispatch batch (records sharing a due time) in one call."""

    def __init__(self, name: str, documentation: str, buckets: Sequence[float],
                 registry: CollectorRegistry) -> None:
        self._name, self._doc = name, documentation
        self._bounds = [*buckets, math.inf]
        self._counts = [0] * len(self._bounds)
        self._sum = 0.0
        self._lock = threading.Lock()
        registry.register(self)

    def observe(self, value: float) -> None:
        self.observe_many(value, 1)

    def observe_many(self, value: float, n: int) -> None:
        i = bisect.bisect_left(self._bounds, value)
        with self._lock:
            self._counts[i] += n
            self._sum += value * n

    def observe_due(self, dues: Sequence[int], now_s: float) -> None:
        """One observation per due time (epoch ms) of a dispatch batch: ``now_s`` minus it (never
        below 0), under one lock; records sharing a due time share one bucket lookup."""
        by_due = Tally(dues)
        bounds, counts = self._bounds, self._counts
        with self._lock:
            for due_ms, n in by_due.items():
                value = max(0.0, now_s - due_ms / 1000)
                counts[bisect.bisect_left(bounds, value)] += n
                self._sum += value * n

    def collect(self) -> Iterator[HistogramMetricFamily]:
        with self._lock:
            counts, total = list(self._counts), self._sum
        cumulative, buckets = 0, []
        for bound, count in zip(self._bounds, counts, strict=True):
            cumulative += count
            buckets.append((floatToGoString(bound), cumulative))
        yield HistogramMetricFamily(self._name, self._doc, buckets=buckets, sum_value=total)

    def describe(self) -> Iterator[HistogramMetricFamily]:
        yield HistogramMetricFamily(self._name, self._doc)


class WorkerMetrics:
    """``kafka_reliable_retry_*``: republished / failed / dead-lettered counters, pending, lateness."""

    def __init__(self, *, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.republished = Counter(
            "kafka_reliable_retry_republished_total",
            "Records republished to their original topic (acknowledged).",
            ["topic"], registry=self.registry,
        )
        self.failed = Counter(
            "kafka_reliable_retry_failed_total",
            "Republish attempts that failed again.",
            ["topic", "error_class"], registry=self.registry,
        )
        self.dead_lettered = Counter(
            "kafka_reliable_retry_dead_lettered_total",
            "Records the worker sent to a .dlq topic.",
            ["topic", "reason"], registry=self.registry,
        )
        self.pending = Gauge(
            "kafka_reliable_retry_pending",
            "Records read ahead and waiting for their due time or their acknowledgement.",
            registry=self.registry,
        )
        self.lateness = BatchHistogram(
            "kafka_reliable_retry_lateness_seconds",
            "Republish time minus due time (next.attempt.at).",
            LATENESS_BUCKETS_S, self.registry,
        )

    def add(self, counts: dict[str, int], tally: Tally[tuple[str, str, str]]) -> None:
        """Add a batch of outcomes ``{(count name, topic, detail): n}`` to ``counts`` and the
        collectors; ``detail`` is the DLQ reason (dead_lettered) or the error class (failed)."""
        for (name, topic, detail), n in tally.items():
            counts[name] += n
            if name == "republished":
                self.republished.labels(topic).inc(n)
            elif name == "dead_lettered":
                self.dead_lettered.labels(topic, detail).inc(n)
            elif name == "failed":
                self.failed.labels(topic, detail).inc(n)


def serve(registry: CollectorRegistry, port: int) -> Any:
    """Serve ``/metrics`` on ``port``; the server (``shutdown()`` stops it). KafkaReliableError
    when the port cannot be bound."""
    from prometheus_client import start_http_server

    try:
        server, _ = start_http_server(port, registry=registry)
    except OSError as exc:
        raise KafkaReliableError(f"metrics port {port}: {exc}") from exc
    log.info("metrics on :%s/metrics", port)
    return server
