"""Prometheus metrics of the ReliableConsumer, on a registry the caller may pass.

Names::

    kafka_reliable_consumer_handled_total{topic,group}              handler returned
    kafka_reliable_consumer_failed_total{topic,group,error_class}   handler raised (each attempt)
    kafka_reliable_consumer_retried_total{topic,group}              sent to <topic>.<group>.retry
    kafka_reliable_consumer_dead_lettered_total{topic,group,reason} sent to <topic>.<group>.dlq
    kafka_reliable_consumer_parked_total{topic,group}               parked behind its key
    kafka_reliable_consumer_handler_seconds{topic,group}            histogram
    kafka_reliable_consumer_retry_lateness_seconds{group}           histogram: handed over - due
    kafka_reliable_consumer_lag{topic,partition,group}              gauge (librdkafka statistics)
    kafka_reliable_consumer_pending{group}                          gauge: retries read, not done

Default registry: prometheus_client's global one. Several consumers on one registry share
the collectors (no duplicate-registration error); label values are bounded like the producer's.
"""

from __future__ import annotations

import contextlib
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from kafka_reliable.histogram import LATENESS_BUCKETS_S, BucketHistogram
from kafka_reliable.registry import BoundedLabel, per_registry, registry_or_default

#: Handler latency buckets (seconds).
HANDLER_BUCKETS_S = (0.0005, *LATENESS_BUCKETS_S)
#: Distinct values per label before further ones are reported as ``_other``.
MAX_LABEL_VALUES = 200
PREFIX = "kafka_reliable_consumer"


class _Collectors:
    def __init__(self, r: CollectorRegistry) -> None:
        p = PREFIX
        self.handler = BucketHistogram(
            f"{p}_handler_seconds",
            "Handler run time",
            buckets=HANDLER_BUCKETS_S,
            labels=("topic", "group"),
            registry=r,
            counter=(f"{p}_handled", "Records the handler processed without raising"),
        )
        self.failed = Counter(
            f"{p}_failed",
            "Handler attempts that raised, by exception class",
            ["topic", "group", "error_class"],
            registry=r,
        )
        self.retried = Counter(
            f"{p}_retried",
            "Records sent to the group's retry topic",
            ["topic", "group"],
            registry=r,
        )
        self.dead_lettered = Counter(
            f"{p}_dead_lettered",
            "Records sent to the group's DLQ, by reason",
            ["topic", "group", "reason"],
            registry=r,
        )
        self.parked = Counter(
            f"{p}_parked",
            "Records parked behind an earlier record of their key",
            ["topic", "group"],
            registry=r,
        )
        self.lateness = BucketHistogram(
            f"{p}_retry_lateness_seconds",
            "Time a retry was handed to the handler minus its next.attempt.at",
            buckets=LATENESS_BUCKETS_S,
            labels=("group",),
            registry=r,
        )
        self.lag = Gauge(
            f"{p}_lag",
            "Consumer lag per assigned partition",
            ["topic", "partition", "group"],
            registry=r,
        )
        self.pending = Gauge(
            f"{p}_pending", "Retry records read and not yet handled", ["group"], registry=r
        )


class ConsumerMetrics:
    """The metrics of one consumer (one group); labelled children cached per topic."""

    def __init__(
        self, *, group: str, registry: CollectorRegistry | None = None, enabled: bool = True
    ) -> None:
        self.registry = registry_or_default(registry)
        self.group = group
        self.enabled = enabled
        self._c = per_registry(self.registry, "consumer", _Collectors) if enabled else None
        self._topic = BoundedLabel(MAX_LABEL_VALUES)
        self._cls = BoundedLabel(MAX_LABEL_VALUES)
        self._children: dict[tuple[str, str], Any] = {}
        self._labels: dict[str, str] = {}
        self._group = (group,)
        self._pending = self._c.pending.labels(group=group) if self._c else None

    def _child(self, name: str, topic: str) -> Any:
        child = self._children.get((name, topic))
        if child is None:
            assert self._c is not None
            child = self._children[(name, topic)] = getattr(self._c, name).labels(
                topic=self._topic(topic), group=self.group
            )
        return child

    def _label(self, topic: str) -> str:
        label = self._labels.get(topic)
        if label is None:
            label = self._labels[topic] = self._topic(topic)
        return label

    def handled(self, topic: str, seconds: float) -> None:
        if self._c is not None:
            self._c.handler.observe(seconds, (self._label(topic), self.group))

    def handled_many(self, topic: str, seconds: list[float]) -> None:
        if self._c is not None:
            self._c.handler.observe_all(seconds, (self._label(topic), self.group))

    def failed(self, topic: str, error_class: str, seconds: float) -> None:
        if self._c is not None:
            self._c.failed.labels(
                topic=self._topic(topic), group=self.group, error_class=self._cls(error_class)
            ).inc()
            self._c.handler.observe(seconds, (self._label(topic), self.group), counted=False)

    def retried(self, topic: str) -> None:
        if self._c is not None:
            self._child("retried", topic).inc()

    def parked(self, topic: str) -> None:
        if self._c is not None:
            self._child("parked", topic).inc()

    def dead_lettered(self, topic: str, reason: str) -> None:
        if self._c is not None:
            self._c.dead_lettered.labels(
                topic=self._topic(topic), group=self.group, reason=reason
            ).inc()

    def lateness(self, seconds: float) -> None:
        if self._c is not None:
            self._c.lateness.observe(seconds, self._group)

    def set_pending(self, n: int) -> None:
        if self._pending is not None:
            self._pending.set(n)

    def set_lag(self, topic: str, partition: int, lag: int) -> None:
        if self._c is not None:
            self._c.lag.labels(
                topic=self._topic(topic), partition=str(partition), group=self.group
            ).set(lag)

    def forget_lag(self, topic: str, partition: int) -> None:
        if self._c is not None:
            with contextlib.suppress(KeyError):
                self._c.lag.remove(self._topic(topic), str(partition), self.group)
