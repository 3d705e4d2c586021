"""The Grafana dashboard parses, and its queries use only metric names the code defines."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from kafka_reliable.producer.metrics import ProducerMetrics
from tests.helpers.metrics import consumer_series

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "kafka-reliable.json"

#: Metrics the retry worker exports (name -> labels); the worker module may not exist yet.
WORKER_COUNTERS = {
    "kafka_reliable_retry_republished_total": {"topic"},
    "kafka_reliable_retry_failed_total": {"topic", "error_class"},
    "kafka_reliable_retry_dead_lettered_total": {"topic", "reason"},
}
WORKER_GAUGES = {"kafka_reliable_retry_pending": set[str]()}
WORKER_HISTOGRAMS = {"kafka_reliable_retry_lateness_seconds": set[str]()}

_NAME = re.compile(r"\bkafka_reliable_[A-Za-z0-9_]+")
_SELECTOR = re.compile(r"\b(kafka_reliable_[A-Za-z0-9_]+)\{([^}]*)\}")
_BY = re.compile(r"\bby\s*\(([^)]*)\)")


def producer_series() -> dict[str, set[str]]:
    """Series name -> label names, as ProducerMetrics exposes them."""
    reg = CollectorRegistry()
    m = ProducerMetrics(registry=reg)
    m.sent("t", 0.01)
    m.failed("t", "KafkaTimeoutError")
    m.retried("t")
    m.dead_lettered("t", "non_retriable")
    m.duplicate("t")
    m.spooled("t")
    m.set_dlq_size("t", 1)
    m.set_health("healthy")
    m.set_circuit("closed")
    out: dict[str, set[str]] = {}
    for family in reg.collect():
        for s in family.samples:
            out.setdefault(s.name, set()).update(k for k in s.labels if k != "le")
    return out


def known_series() -> dict[str, set[str]]:
    known = producer_series()
    known.update(WORKER_COUNTERS)
    known.update(WORKER_GAUGES)
    known.update(consumer_series())
    for name, labels in WORKER_HISTOGRAMS.items():
        for suffix in ("_bucket", "_sum", "_count"):
            known[name + suffix] = set(labels)
    return known


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def queries(d: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expression) for every panel target and templating query."""
    out = [(p["title"], t["expr"]) for p in d["panels"] for t in p.get("targets", [])]
    for var in d.get("templating", {}).get("list", []):
        q = var.get("query")
        out.append((f"variable {var['name']}", q["query"] if isinstance(q, dict) else q))
    return out


def test_dashboard_json_loads_with_panels_and_targets() -> None:
    d = dashboard()
    assert d["uid"] and d["title"]
    assert d["panels"]
    for p in d["panels"]:
        assert p.get("targets"), f"panel {p['title']!r} has no query"
        assert all(t.get("expr") for t in p["targets"]), p["title"]
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))


def test_every_query_uses_only_defined_metric_names() -> None:
    known = known_series()
    unknown = [(title, name) for title, expr in queries(dashboard()) for name in _NAME.findall(expr)
               if name not in known]
    assert unknown == []


def test_selectors_and_groupings_use_labels_the_metrics_have() -> None:
    known = known_series()
    problems = []
    for title, expr in queries(dashboard()):
        names = _NAME.findall(expr)
        for name, matchers in _SELECTOR.findall(expr):
            for label in re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers):
                if label not in known[name]:
                    problems.append((title, name, label))
        for group in _BY.findall(expr):
            for label in (g.strip() for g in group.split(",") if g.strip() and g.strip() != "le"):
                if not any(label in known[n] for n in names):
                    problems.append((title, "by", label))
    assert problems == []


def test_dashboard_covers_the_required_views() -> None:
    text = json.dumps(dashboard())
    for metric in ("kafka_reliable_messages_sent_total", "kafka_reliable_messages_failed_total",
                   "kafka_reliable_messages_retried_total", "kafka_reliable_messages_dead_lettered_total",
                   "kafka_reliable_delivery_latency_seconds_bucket", "kafka_reliable_dlq_size",
                   "kafka_reliable_retry_lateness_seconds_bucket", "kafka_reliable_health_status",
                   "kafka_reliable_circuit_state"):
        assert metric in text, metric
    assert "histogram_quantile(0.99" in text


def test_the_checker_catches_an_undefined_name() -> None:
    known = known_series()
    assert "kafka_reliable_messages_sent" not in known  # counters are exposed with _total
    assert [n for n in _NAME.findall("rate(kafka_reliable_nope_total[5m])") if n not in known]


def test_provisioning_points_at_the_dashboard_and_datasource() -> None:
    ds = (ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text()
    prov = (ROOT / "deploy/grafana/provisioning/dashboards/kafka-reliable.yml").read_text()
    uids = {t["datasource"]["uid"] for p in dashboard()["panels"] for t in p["targets"]}
    assert uids == {"prometheus"}
    assert "uid: prometheus" in ds
    assert "path: /var/lib/grafana/dashboards" in prov
    assert "scrape_configs" in (ROOT / "deploy/prometheus/prometheus.yml").read_text()


def test_worker_names_match_the_worker_module() -> None:
    from kafka_reliable.worker.metrics import WorkerMetrics
    m = WorkerMetrics(registry=CollectorRegistry())
    m.republished.labels(topic="t").inc()
    m.failed.labels(topic="t", error_class="KafkaTimeoutError").inc()
    m.dead_lettered.labels(topic="t", reason="retries_exhausted").inc()
    m.pending.set(1)
    m.lateness.observe(0.01)
    exposed: dict[str, set[str]] = {}
    for family in m.registry.collect():
        for s in family.samples:
            if not s.name.endswith("_created"):
                exposed.setdefault(s.name, set()).update(k for k in s.labels if k != "le")
    expected = {**WORKER_COUNTERS, **WORKER_GAUGES}
    for name, labels in WORKER_HISTOGRAMS.items():
        expected.update({name + sfx: set(labels) for sfx in ("_bucket", "_sum", "_count")})
    assert exposed == expected
