"""Prometheus collectors of the retry worker, on a registry the caller passes (never a global)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

#: Lateness buckets (seconds): republish time minus due time.
LATENESS_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


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
        self.lateness = Histogram(
            "kafka_reliable_retry_lateness_seconds",
            "Republish time minus due time (next.attempt.at).",
            buckets=LATENESS_BUCKETS_S, registry=self.registry,
        )
