"""Prometheus collectors of the retry worker: the registry the caller passes, else the global one
(``registry.per_registry``: workers on one registry share their collectors)."""

from __future__ import annotations

import logging
from collections import Counter as Tally
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from kafka_reliable.errors import KafkaReliableError
from kafka_reliable.histogram import LATENESS_BUCKETS_S, BucketHistogram
from kafka_reliable.registry import per_registry, registry_or_default

log = logging.getLogger(__name__)


class _Collectors:
    """The worker's collectors on one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.republished = Counter(
            "kafka_reliable_retry_republished_total",
            "Records republished to their original topic (acknowledged).",
            ["topic"],
            registry=registry,
        )
        self.failed = Counter(
            "kafka_reliable_retry_failed_total",
            "Republish attempts that failed again.",
            ["topic", "error_class"],
            registry=registry,
        )
        self.dead_lettered = Counter(
            "kafka_reliable_retry_dead_lettered_total",
            "Records the worker sent to a .dlq topic.",
            ["topic", "reason"],
            registry=registry,
        )
        self.pending = Gauge(
            "kafka_reliable_retry_pending",
            "Records read ahead and waiting for their due time or their acknowledgement.",
            registry=registry,
        )
        self.lateness = BucketHistogram(
            "kafka_reliable_retry_lateness_seconds",
            "Republish time minus due time (next.attempt.at).",
            buckets=LATENESS_BUCKETS_S,
            registry=registry,
        )


class WorkerMetrics:
    """``kafka_reliable_retry_*``: republished / failed / dead-lettered, pending, lateness."""

    def __init__(self, *, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry_or_default(registry)
        c = per_registry(self.registry, "worker", _Collectors)
        self.republished, self.failed, self.dead_lettered = c.republished, c.failed, c.dead_lettered
        self.pending, self.lateness = c.pending, c.lateness

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
