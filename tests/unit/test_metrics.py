"""ProducerMetrics on a private registry: names, labels, values, bounds."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from kafka_reliable.producer.metrics import OTHER, ProducerMetrics


def value(reg: CollectorRegistry, name: str, **labels: str) -> float | None:
    return reg.get_sample_value(name, labels)


def test_counters_count_per_topic_and_class() -> None:
    # Given
    reg = CollectorRegistry()
    m = ProducerMetrics(registry=reg)
    # When
    for _ in range(3):
        m.sent("orders", 0.004)
    m.sent("payments")
    m.failed("orders", "KafkaTimeoutError")
    m.failed("orders", "KafkaTimeoutError")
    m.failed("orders", "MessageSizeTooLargeError")
    m.retried("orders")
    m.dead_lettered("orders", "non_retriable")
    m.duplicate("orders")
    m.spooled("payments")
    m.set_dlq_size("orders", 42)
    # Then
    assert value(reg, "kafka_reliable_messages_sent_total", topic="orders") == 3
    assert value(reg, "kafka_reliable_messages_sent_total", topic="payments") == 1
    assert value(reg, "kafka_reliable_messages_failed_total", topic="orders", error_class="KafkaTimeoutError") == 2
    assert value(reg, "kafka_reliable_messages_failed_total", topic="orders",
                 error_class="MessageSizeTooLargeError") == 1
    assert value(reg, "kafka_reliable_messages_retried_total", topic="orders") == 1
    assert value(reg, "kafka_reliable_messages_dead_lettered_total", topic="orders", reason="non_retriable") == 1
    assert value(reg, "kafka_reliable_duplicates_total", topic="orders") == 1
    assert value(reg, "kafka_reliable_messages_spooled_total", topic="payments") == 1
    assert value(reg, "kafka_reliable_dlq_size", topic="orders") == 42


def test_latency_histogram_buckets_count_and_sum() -> None:
    reg = CollectorRegistry()
    m = ProducerMetrics(registry=reg)
    m.sent("t", 0.003)
    m.sent("t", 0.2)
    m.sent("t", 500.0)
    m.sent("t")  # no latency: counted as sent, not observed
    h = "kafka_reliable_delivery_latency_seconds"
    assert value(reg, f"{h}_bucket", topic="t", le="0.0025") == 0
    assert value(reg, f"{h}_bucket", topic="t", le="0.005") == 1
    assert value(reg, f"{h}_bucket", topic="t", le="0.25") == 2
    assert value(reg, f"{h}_bucket", topic="t", le="120.0") == 2
    assert value(reg, f"{h}_bucket", topic="t", le="+Inf") == 3
    assert value(reg, f"{h}_count", topic="t") == 3
    assert value(reg, f"{h}_sum", topic="t") == pytest.approx(500.203)
    assert value(reg, "kafka_reliable_messages_sent_total", topic="t") == 4


def test_health_and_circuit_gauges() -> None:
    reg = CollectorRegistry()
    m = ProducerMetrics(registry=reg)
    m.set_health("degraded")
    m.set_circuit("open")
    assert value(reg, "kafka_reliable_health_status") == 1
    assert value(reg, "kafka_reliable_circuit_state") == 2
    m.set_health("unhealthy")
    m.set_circuit("half_open")
    assert value(reg, "kafka_reliable_health_status") == 2
    assert value(reg, "kafka_reliable_circuit_state") == 1
    with pytest.raises(ValueError):
        m.set_health("fine")
    with pytest.raises(ValueError):
        m.set_circuit("ajar")


def test_two_producers_share_collectors_on_one_registry() -> None:
    reg = CollectorRegistry()
    a, b = ProducerMetrics(registry=reg), ProducerMetrics(registry=reg)
    a.sent("t", 0.01)
    b.sent("t", 0.01)
    b.retried("t")
    assert value(reg, "kafka_reliable_messages_sent_total", topic="t") == 2
    assert value(reg, "kafka_reliable_messages_retried_total", topic="t") == 1


def test_prefix_changes_every_name() -> None:
    reg = CollectorRegistry()
    m = ProducerMetrics(registry=reg, prefix="app")
    m.sent("t", 0.01)
    text = generate_latest(reg).decode()
    assert "app_messages_sent_total" in text
    assert "kafka_reliable" not in text


def test_topic_label_cardinality_is_bounded() -> None:
    reg = CollectorRegistry()
    m = ProducerMetrics(registry=reg, max_topics=2)
    for t in ("a", "b", "c", "d"):
        m.sent(t, 0.01)
        m.failed(t, "KafkaTimeoutError")
    assert value(reg, "kafka_reliable_messages_sent_total", topic="a") == 1
    assert value(reg, "kafka_reliable_messages_sent_total", topic="c") is None
    assert value(reg, "kafka_reliable_messages_sent_total", topic=OTHER) == 2
    assert value(reg, "kafka_reliable_messages_failed_total", topic=OTHER, error_class="KafkaTimeoutError") == 2


def test_default_registry_is_the_global_one() -> None:
    from prometheus_client import REGISTRY

    m = ProducerMetrics()
    before = REGISTRY.get_sample_value("kafka_reliable_messages_spooled_total", {"topic": "glob"}) or 0
    m.spooled("glob")
    assert REGISTRY.get_sample_value("kafka_reliable_messages_spooled_total", {"topic": "glob"}) == before + 1
