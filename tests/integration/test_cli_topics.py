"""``kafka-reliable topics`` and the CLI entry points on the real broker."""

from __future__ import annotations

import json
import subprocess
import sys

from confluent_kafka.admin import AdminClient, ConfigResource

from kafka_reliable.config import DEFAULT_DLQ_RETENTION_MS


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kafka_reliable", *args], capture_output=True, text=True, timeout=60)


def test_topics_ensure_creates_companions_like_the_source(kafka_bootstrap: str, admin: AdminClient, new_topic) -> None:
    # Given a 3-partition topic
    topic = new_topic(partitions=3, config={"max.message.bytes": "200000"})
    # When
    out = _cli("topics", "ensure", topic, "--bootstrap-servers", kafka_bootstrap, "--json")
    again = _cli("topics", "ensure", topic, "--bootstrap-servers", kafka_bootstrap)
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
    out = _cli("topics", "ensure", "no-such-topic-xyz", "--bootstrap-servers", kafka_bootstrap)
    assert out.returncode == 3 and "not found" in out.stdout


def test_help_and_dev_broker_status() -> None:
    assert _cli("--help").returncode == 0
    for verb in ("retry-worker", "dlq", "topics", "health", "generate", "dev-broker"):
        assert verb in _cli("--help").stdout
    status = _cli("dev-broker", "status", "--json")
    assert status.returncode in (0, 3)
    assert json.loads(status.stdout)["kafka_version"] == "4.4.0"
