"""Health, alerts and the circuit breaker through the producer, on real brokers."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient
from prometheus_client import CollectorRegistry

from kafka_reliable import ReliableKafkaProducer
from kafka_reliable import headers as H
from kafka_reliable.health import CircuitBreaker
from kafka_reliable.health.alerts import make_alert
from tests.helpers.kafka import create_topic, headers_dict, read_to_end, unique_name
from tests.helpers.waits import wait_until


def test_dlq_over_threshold_raises_dlq_size_alert(kafka_bootstrap: str, new_topic, tmp_path: Path) -> None:
    # Given a producer whose DLQ threshold is 5 and a topic that refuses records over 10 kB
    topic = new_topic(config={"max.message.bytes": "10000"})
    alerts: list[dict[str, Any]] = []
    registry = CollectorRegistry()
    with ReliableKafkaProducer(
        bootstrap_servers=kafka_bootstrap, spool_path=tmp_path / "s.db",
        health_thresholds={"dlq_size_threshold": 5}, maintenance_interval_s=0.2, dlq_check_interval_s=0.5,
        producer_config={"compression_type": "none"}, metrics_registry=registry,
    ) as p:
        p.add_health_alert_callback(alerts.append)
        # When 8 records are dead-lettered
        for i in range(8):
            p.send_message(topic, b"x" * 20_000, key=str(i))
        p.flush(30)
        # Then
        wait_until(lambda: any(a["type"] == "dlq_size" for a in alerts), 15, lambda: f"a dlq_size alert in {alerts}", step_s=0.2)
        alert = next(a for a in alerts if a["type"] == "dlq_size")
        assert alert["value"] == 8 and alert["threshold"] == 5
        assert {"severity", "timestamp", "message"} <= set(alert)
        health = p.get_health_status()
        assert health["status"] == "degraded" and health["metrics"]["dlq_size"] == 8
        assert p.get_stats()["dlq_stats"]["total_messages"] == 8
        assert registry.get_sample_value(
            "kafka_reliable_messages_dead_lettered_total", {"topic": topic, "reason": "non_retriable"}
        ) == 8
        assert registry.get_sample_value("kafka_reliable_dlq_size", {"topic": topic}) == 8
        assert registry.get_sample_value("kafka_reliable_health_status") == 1


def test_dlq_max_size_trims_oldest(kafka_bootstrap: str, new_topic, tmp_path: Path) -> None:
    # Given dlq_max_size=10
    topic = new_topic(config={"max.message.bytes": "10000"})
    with ReliableKafkaProducer(
        bootstrap_servers=kafka_bootstrap, spool_path=tmp_path / "s.db", dlq_max_size=10,
        maintenance_interval_s=0.2, dlq_check_interval_s=0.5, producer_config={"compression_type": "none"},
    ) as p:
        # When 25 records are dead-lettered
        mids = [p.send_message(topic, b"y" * 20_000, key=str(i)) for i in range(25)]
        p.flush(30)
        # Then the newest 10 remain and 15 are counted as trimmed
        wait_until(lambda: p.get_stats()["dlq_stats"]["trimmed"] == 15, 20, "15 DLQ records trimmed", step_s=0.2)
        left = read_to_end(kafka_bootstrap, topic + ".dlq", at_least=10, timeout_s=20)
        assert sorted(headers_dict(m)[H.MESSAGE_ID].decode() for m in left) == sorted(mids[-10:])


def test_circuit_breaker_spools_during_outage_and_drains(outage_broker, tmp_path: Path) -> None:
    # Given a producer with a breaker on a cluster that then goes down
    bootstrap = outage_broker.bootstrap_servers
    topic = create_topic(AdminClient({"bootstrap.servers": bootstrap}), unique_name("cb"))
    breaker = CircuitBreaker(open_duration_s=1.0, min_calls=5)
    p = ReliableKafkaProducer(
        bootstrap_servers=bootstrap, spool_path=tmp_path / "s.db", circuit_breaker=breaker,
        maintenance_interval_s=0.2, producer_config={"reconnect_backoff_max_ms": 500},
    )
    try:
        p.send_message(topic, {"warm": 1})
        assert p.flush(10) == 0
        outage_broker.stop()
        try:
            wait_until(lambda: breaker.state == "open", 20, lambda: f"breaker open, is {breaker.state}", step_s=0.2)
            # When 100 records are sent while the breaker is open
            mids = [p.send_message(topic, {"n": i}, key=str(i)) for i in range(100)]
            # Then they are spooled, not handed to librdkafka
            assert {p.get_message_status(m) for m in mids} == {"spooled"}
            assert p.spool.count() == 100
            assert p.get_health_status()["status"] == "unhealthy"
        finally:
            outage_broker.start()
        # And after recovery the breaker closes and the spool drains
        wait_until(lambda: p.spool.count() == 0, 60, lambda: f"spool empty, holds {p.spool.count()}", step_s=0.2)
        wait_until(lambda: breaker.state == "closed", 30, lambda: f"breaker closed, is {breaker.state}", step_s=0.2)
    finally:
        p.close()
    got = read_to_end(bootstrap, topic, at_least=101, timeout_s=30)
    ids = {headers_dict(m)[H.MESSAGE_ID].decode() for m in got}
    assert set(mids) <= ids, f"lost {len(set(mids) - ids)}"


def test_dlq_alerts_from_maintenance_respect_the_cooldown(kafka_bootstrap: str, tmp_path: Path) -> None:
    # Given a producer whose health callbacks count alerts
    got: list[dict[str, Any]] = []
    with ReliableKafkaProducer(bootstrap_servers=kafka_bootstrap, spool_path=tmp_path / "s.db",
                               alert_cooldown_s=60, metrics_registry=CollectorRegistry()) as p:
        p.add_health_alert_callback(got.append)
        alert = make_alert(type="dlq_retention_expiry", topic="orders.dlq", value=3, threshold=0,
                           severity="critical", timestamp=time.time(), message="3 records expire soon")
        # When the DLQ tools raise the same alert on every maintenance pass
        for _ in range(5):
            p.dlq.maintenance.alert(dict(alert))
        p.dlq.maintenance.alert({**alert, "topic": "payments.dlq"})
    # Then each (type, topic) reaches the callbacks once within the cooldown
    assert [(a["type"], a["topic"]) for a in got] == [
        ("dlq_retention_expiry", "orders.dlq"), ("dlq_retention_expiry", "payments.dlq")]
