"""The dashboard's consumer row queries the metrics the ReliableConsumer exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.helpers.metrics import consumer_series

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards" / "kafka-reliable.json"


def test_the_consumer_row_covers_every_consumer_metric() -> None:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    consumer = [p for p in panels if p["title"].startswith("Consumer:")]
    exprs = " ".join(t["expr"] for p in consumer for t in p["targets"])
    used = set(re.findall(r"\bkafka_reliable_consumer_[a-z_]+", exprs))
    strip = re.compile(r"_(bucket|sum|count)$")
    families = {strip.sub("", n) for n in consumer_series()}
    assert families <= {strip.sub("", n) for n in used}
    assert len({p["gridPos"]["y"] for p in consumer}) >= 3
