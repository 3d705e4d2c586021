"""``kafka-reliable topics`` and the CLI entry points on the real broker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from kafka_reliable.config import DEFAULT_DLQ_RETENTION_MS
from tests.helpers.cli import run_cli
from tests.helpers.ports import free_port


@pytest.mark.slow
def test_topics_ensure_creates_companions_like_the_source(kafka_bootstrap: str, admin: AdminClient, new_topic) -> None:
    # Given a 3-partition topic
    topic = new_topic(partitions=3, config={"max.message.bytes": "200000"})
    # When
    out = run_cli("topics", "ensure", topic, "--bootstrap-servers", kafka_bootstrap, "--json")
    again = run_cli("topics", "ensure", topic, "--bootstrap-servers", kafka_bootstrap)
    # Then
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"topic": topic, "partitions": 3, "retry_topic": f"{topic}.retry",
                                      "dlq_topic": f"{topic}.dlq"}
    assert again.returncode == 0
    md = admin.list_topics(timeout=10).topics
    assert len(md[f"{topic}.retry"].partitions) == 3 and len(md[f"{topic}.dlq"].partitions) == 3
    res = ConfigResource(ConfigResource.Type.TOPIC, f"{topic}.dlq")
    cfg = admin.describe_configs([res])[res].result(timeout=10)
    assert int(cfg["retention.ms"].value) == DEFAULT_DLQ_RETENTION_MS
    assert int(cfg["max.message.bytes"].value) > 200_000


def test_topics_ensure_unknown_topic_exits_3(kafka_bootstrap: str) -> None:
    out = run_cli("topics", "ensure", "no-such-topic-xyz", "--bootstrap-servers", kafka_bootstrap)
    assert out.returncode == 3 and "not found" in out.stdout


def test_help_and_dev_broker_status(tmp_path: Path) -> None:
    helped = run_cli("--help")
    assert helped.returncode == 0
    for verb in ("retry-worker", "dlq", "topics", "health", "generate", "dev-broker"):
        assert verb in helped.stdout
    assert "2 usage error" in helped.stdout
    # a dev broker on a port and folder of its own that was never started: "not running", exit 3
    status = run_cli("dev-broker", "status", "--json", "--port", str(free_port()), "--data-dir", str(tmp_path))
    assert status.returncode == 3, status.stderr
    report = json.loads(status.stdout)
    assert (report["running"], report["kafka_version"]) == (False, "4.4.0")
