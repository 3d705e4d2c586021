"""Prometheus metrics of the producer, and the HTTP endpoint that exposes them.

Names (prefix ``kafka_reliable`` by default)::

    kafka_reliable_messages_sent_total{topic}
    kafka_reliable_messages_failed_total{topic,error_class}
    kafka_reliable_messages_retried_total{topic}
    kafka_reliable_messages_dead_lettered_total{topic,reason}
    kafka_reliable_duplicates_total{topic}
    kafka_reliable_messages_spooled_total{topic}
    kafka_reliable_delivery_latency_seconds{topic}        histogram
    kafka_reliable_dlq_size{topic}                         gauge
    kafka_reliable_health_status                           gauge: 0 healthy, 1 degraded, 2 unhealthy
    kafka_reliable_circuit_state                           gauge: 0 closed, 1 half_open, 2 open

Labels are only topic, error class and DLQ reason, never ids or keys; each label keeps at
most a bounded number of distinct values (past that, values are reported as ``_other``).
Collectors live on the registry the caller passes (default: prometheus_client's global
registry, so ``start_metrics_server(port)`` shows them); several ``ProducerMetrics`` on one
registry with one prefix share the same collectors instead of failing on duplicates.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from kafka_reliable.histogram import BucketHistogram
from kafka_reliable.registry import OTHER, BoundedLabel, per_registry, registry_or_default

#: Delivery latency histogram buckets, in seconds.
LATENCY_BUCKETS_S = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
)
#: Distinct topics per metric before further topics are reported as ``_other``.
MAX_TOPICS = 500
#: Distinct error classes / DLQ reasons before further ones are reported as ``_other``.
MAX_CLASSES = 100
__all__ = ["OTHER", "ProducerMetrics"]

HEALTH_VALUES = {"healthy": 0, "degraded": 1, "unhealthy": 2}
CIRCUIT_VALUES = {"closed": 0, "half_open": 1, "open": 2}


class _Collectors:
    """The collectors of one (registry, prefix)."""

    def __init__(self, registry: CollectorRegistry, prefix: str) -> None:
        p = prefix
        #: ``messages_sent_total`` and ``delivery_latency_seconds``: the per-record pair, folded.
        self.sent = BucketHistogram(
            f"{p}_delivery_latency_seconds",
            "Send-to-acknowledgement latency",
            buckets=LATENCY_BUCKETS_S,
            labels=("topic",),
            counter=(f"{p}_messages_sent", "Records delivered (acknowledged by Kafka)"),
            registry=registry,
        )
        self.failed = Counter(
            f"{p}_messages_failed",
            "Failed delivery attempts, by error class",
            ["topic", "error_class"],
            registry=registry,
        )
        self.retried = Counter(
            f"{p}_messages_retried", "Records routed to <topic>.retry", ["topic"], registry=registry
        )
        self.dead_lettered = Counter(
            f"{p}_messages_dead_lettered",
            "Records routed to <topic>.dlq, by reason",
            ["topic", "reason"],
            registry=registry,
        )
        self.duplicates = Counter(
            f"{p}_duplicates", "Records skipped as duplicates", ["topic"], registry=registry
        )
        self.spooled = Counter(
            f"{p}_messages_spooled",
            "Records written to the local spool",
            ["topic"],
            registry=registry,
        )
        self.dlq_size = Gauge(
            f"{p}_dlq_size", "Records in <topic>.dlq", ["topic"], registry=registry
        )
        self.health = Gauge(
            f"{p}_health_status", "Health: 0 healthy, 1 degraded, 2 unhealthy", registry=registry
        )
        self.circuit = Gauge(
            f"{p}_circuit_state",
            "Circuit breaker: 0 closed, 1 half_open, 2 open",
            registry=registry,
        )


class ProducerMetrics:
    """The producer's Prometheus metrics; labelled children are cached per topic."""

    def __init__(
        self,
        *,
        registry: CollectorRegistry | None = None,
        prefix: str = "kafka_reliable",
        max_topics: int = MAX_TOPICS,
    ) -> None:
        self.registry = registry_or_default(registry)
        self.prefix = prefix
        self._c = per_registry(
            self.registry, f"producer:{prefix}", lambda r: _Collectors(r, prefix)
        )
        self._topic = BoundedLabel(max_topics)
        self._cls = BoundedLabel(MAX_CLASSES)
        self._reason = BoundedLabel(MAX_CLASSES)
        self._sent_label: dict[str, str] = {}
        self._simple: dict[tuple[str, str], Any] = {}

    def _child(self, name: str, topic: str) -> Any:
        child = self._simple.get((name, topic))
        if child is None:
            child = getattr(self._c, name).labels(topic=self._topic(topic))
            self._simple[(name, topic)] = child
        return child

    def sent(self, topic: str, latency_s: float | None = None) -> None:
        """One record acknowledged; ``latency_s`` from send to acknowledgement."""
        label = self._sent_label.get(topic)
        if label is None:
            label = self._sent_label[topic] = self._topic(topic)
        self._c.sent.observe(latency_s, (label,))

    def sent_by_topic(self, by_topic: dict[str, list[float | None]]) -> None:
        """A fold of fast-path acknowledgements (the tracker's ``ack_sink``)."""
        for topic, lats in by_topic.items():
            self.sent_many(topic, lats)

    def sent_many(self, topic: str, latencies_s: list[float | None]) -> None:
        """Records acknowledged since the last fold, with their latencies (seconds)."""
        label = self._sent_label.get(topic)
        if label is None:
            label = self._sent_label[topic] = self._topic(topic)
        self._c.sent.observe_all(latencies_s, (label,))

    def failed(self, topic: str, error_class: str) -> None:
        self._c.failed.labels(topic=self._topic(topic), error_class=self._cls(error_class)).inc()

    def retried(self, topic: str) -> None:
        self._child("retried", topic).inc()

    def dead_lettered(self, topic: str, reason: str) -> None:
        self._c.dead_lettered.labels(topic=self._topic(topic), reason=self._reason(reason)).inc()

    def duplicate(self, topic: str) -> None:
        self._child("duplicates", topic).inc()

    def spooled(self, topic: str) -> None:
        self._child("spooled", topic).inc()

    def set_dlq_size(self, topic: str, n: int) -> None:
        self._child("dlq_size", topic).set(n)

    def set_health(self, status: str) -> None:
        """``healthy`` / ``degraded`` / ``unhealthy`` as 0 / 1 / 2."""
        if status not in HEALTH_VALUES:
            raise ValueError(f"health status must be one of {list(HEALTH_VALUES)}, got {status!r}")
        self._c.health.set(HEALTH_VALUES[status])

    def set_circuit(self, state: str) -> None:
        """``closed`` / ``half_open`` / ``open`` as 0 / 1 / 2."""
        if state not in CIRCUIT_VALUES:
            raise ValueError(f"circuit state must be one of {list(CIRCUIT_VALUES)}, got {state!r}")
        self._c.circuit.set(CIRCUIT_VALUES[state])
