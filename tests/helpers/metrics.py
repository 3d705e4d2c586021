"""Metric series as the code exports them, for the dashboard tests."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from kafka_reliable.consumer.metrics import ConsumerMetrics


def consumer_series() -> dict[str, set[str]]:
    """Series name -> label names, as ConsumerMetrics exposes them."""
    reg = CollectorRegistry()
    m = ConsumerMetrics(group="g", registry=reg)
    m.handled("t", 0.001)
    m.failed("t", "ValueError", 0.001)
    m.retried("t")
    m.parked("t")
    m.dead_lettered("t", "poison")
    m.lateness(0.01)
    m.set_pending(1)
    m.set_lag("t", 0, 1)
    out: dict[str, set[str]] = {}
    for family in reg.collect():
        for s in family.samples:
            if not s.name.endswith("_created"):
                out.setdefault(s.name, set()).update(k for k in s.labels if k != "le")
    return out
