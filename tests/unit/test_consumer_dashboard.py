"""The dashboard's consumer row queries the metrics the ReliableConsumer exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import CollectorRegistry

from kafka_reliable.consumer.metrics import ConsumerMetrics

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards" / "kafka-reliable.json"


def consumer_series() -> dict[str, set[str]]:
    """Series name -> label names, as ConsumerMetrics exposes them (test_dashboard uses this too)."""
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


def test_the_consumer_row_covers_every_consumer_metric() -> None:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    consumer = [p for p in panels if p["title"].startswith("Consumer:")]
    exprs = " ".join(t["expr"] for p in consumer for t in p["targets"])
    used = set(re.findall(r"\bkafka_reliable_consumer_[a-z_]+", exprs))
    strip = re.compile(r"_(bucket|sum|count)$")
    families = {strip.sub("", n) for n in consumer_series()}
    assert families <= {strip.sub("", n) for n in used}
    assert len({p["gridPos"]["y"] for p in consumer}) >= 3
