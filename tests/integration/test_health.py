"""Health and metrics against real components: /metrics over HTTP, a real broker outage."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from kafka_reliable.health import HealthMonitor
from kafka_reliable.metrics import start_metrics_server
from kafka_reliable.producer.metrics import ProducerMetrics
from tests.helpers.cli import cli
from tests.helpers.kafka import create_topic, unique_name
from tests.helpers.waits import wait_until


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.status == 200
        text = resp.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def test_metrics_endpoint_shows_the_counters(capsys: pytest.CaptureFixture[str]) -> None:
    # Given a registry with counted events, served on a free port
    reg = CollectorRegistry()
    m = ProducerMetrics(registry=reg)
    for latency_s in (0.004, 0.004, 0.03, 1.7, 0.0009):
        m.sent("orders", latency_s)
    m.failed("orders", "KafkaTimeoutError")
    m.failed("orders", "KafkaTimeoutError")
    m.failed("orders", "MessageSizeTooLargeError")
    m.retried("orders")
    m.retried("orders")
    m.dead_lettered("orders", "non_retriable")
    m.duplicate("orders")
    m.spooled("orders")
    m.set_dlq_size("orders", 7)
    m.set_health("degraded")
    m.set_circuit("half_open")
    server = start_metrics_server(0, registry=reg, addr="127.0.0.1")
    try:
        # When
        got = scrape(server.url)
        with urllib.request.urlopen(server.url, timeout=10) as resp:
            excerpt = [ln for ln in resp.read().decode().splitlines() if ln and not ln.startswith("#")]
    finally:
        server.shutdown()
    # Then
    t = (("topic", "orders"),)
    assert got[("kafka_reliable_messages_sent_total", t)] == 5
    assert got[("kafka_reliable_messages_failed_total", (("error_class", "KafkaTimeoutError"), *t))] == 2
    assert got[("kafka_reliable_messages_failed_total", (("error_class", "MessageSizeTooLargeError"), *t))] == 1
    assert got[("kafka_reliable_messages_retried_total", t)] == 2
    assert got[("kafka_reliable_messages_dead_lettered_total", (("reason", "non_retriable"), *t))] == 1
    assert got[("kafka_reliable_duplicates_total", t)] == 1
    assert got[("kafka_reliable_messages_spooled_total", t)] == 1
    assert got[("kafka_reliable_dlq_size", t)] == 7
    assert got[("kafka_reliable_delivery_latency_seconds_count", t)] == 5
    assert got[("kafka_reliable_delivery_latency_seconds_bucket", (("le", "0.005"), *t))] == 3
    assert got[("kafka_reliable_health_status", ())] == 1
    assert got[("kafka_reliable_circuit_state", ())] == 1
    with capsys.disabled():
        print("\n/metrics excerpt:\n" + "\n".join(ln for ln in excerpt if "_created" not in ln))


def test_metrics_server_shutdown_releases_the_port() -> None:
    server = start_metrics_server(0, registry=CollectorRegistry(), addr="127.0.0.1")
    port = server.port
    server.shutdown()
    again = start_metrics_server(port, registry=CollectorRegistry(), addr="127.0.0.1")
    again.shutdown()


class _Feeder:
    """A real librdkafka producer feeding a HealthMonitor, polled and ticked in the background."""

    def __init__(self, bootstrap: str, monitor: HealthMonitor) -> None:
        self.monitor = monitor
        self.producer = Producer({
            "bootstrap.servers": bootstrap,
            "statistics.interval.ms": 500,
            "reconnect.backoff.max.ms": 500,
            "error_cb": lambda err: monitor.record_connection_error(err.name(), err.str()),
            "stats_cb": lambda raw: monitor.record_stats(json.loads(raw)),
            "log_level": 2,
        })
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        next_tick = 0.0
        while not self._stop.is_set():
            self.producer.poll(0.05)
            if time.monotonic() >= next_tick:
                self.monitor.tick()
                next_tick = time.monotonic() + 0.25

    def produce(self, topic: str, n: int) -> None:
        def report(err: Any, msg: Any) -> None:
            latency_s = msg.latency() if err is None else None
            self.monitor.record_delivery(err is None, None if latency_s is None else latency_s * 1000)

        for i in range(n):
            self.producer.produce(topic, value=f"v{i}".encode(), on_delivery=report)
        self.producer.flush(15)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.producer.flush(0)


@pytest.fixture
def feeder(outage_broker: Any) -> Iterator[tuple[_Feeder, list[dict[str, Any]]]]:
    monitor = HealthMonitor(window_s=30.0, alert_cooldown_s=1.0)
    alerts: list[dict[str, Any]] = []
    monitor.add_alert_callback(alerts.append)
    f = _Feeder(outage_broker.bootstrap_servers, monitor)
    yield f, alerts
    f.close()
    if not outage_broker.is_running():
        outage_broker.start()


def test_broker_outage_is_unhealthy_with_alert_and_recovers(
    outage_broker: Any, feeder: tuple[_Feeder, list[dict[str, Any]]], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a producer delivering to the private broker, reported healthy
    f, alerts = feeder
    monitor = f.monitor
    topic = create_topic(AdminClient({"bootstrap.servers": outage_broker.bootstrap_servers}), unique_name("health"))
    f.produce(topic, 20)
    wait_until(lambda: monitor.brokers_up == 1 and monitor.get_status()["status"] == "healthy", 15)
    healthy = monitor.get_status()
    assert healthy["metrics"]["deliveries_in_window"] == 20
    assert healthy["metrics"]["avg_latency_ms"] > 0
    assert not [a for a in alerts if a["type"] == "connection"]

    # When the broker stops
    t0 = time.monotonic()
    outage_broker.stop()
    stopped_s = time.monotonic() - t0
    wait_until(lambda: any(a["type"] == "connection" and not a["recovered"] for a in alerts), 15)
    detect_s = time.monotonic() - t0
    # Then
    down = monitor.get_status()
    assert down["status"] == "unhealthy"
    assert down["metrics"]["connected"] is False
    alert = next(a for a in alerts if a["type"] == "connection")
    assert alert["severity"] == "critical" and alert["status"] == "unhealthy"
    assert alert["value"] is False and alert["threshold"] is True

    # When it starts again
    t1 = time.monotonic()
    outage_broker.start()
    started_s = time.monotonic() - t1
    wait_until(lambda: any(a["type"] == "connection" and a["recovered"] for a in alerts), 20)
    recover_s = time.monotonic() - t1
    # Then
    wait_until(lambda: monitor.get_status()["status"] == "healthy", 5)
    recovery = next(a for a in alerts if a["type"] == "connection" and a["recovered"])
    assert recovery["severity"] == "info"
    assert monitor.get_status()["metrics"]["connected"] is True
    with capsys.disabled():
        print(f"\nbroker stop took {stopped_s:.1f}s; connection alert {detect_s:.1f}s after stop() was called")
        print(f"broker start took {started_s:.1f}s; recovery alert {recover_s:.1f}s after start() was called")
        print("healthy:", json.dumps(healthy, default=str))
        print("down:", json.dumps(down, default=str))
        print("alerts:", json.dumps([a for a in alerts if a["type"] == "connection"], default=str))


def _health(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code, out, _ = cli(capsys, "health", "--json", *argv)
    return code, json.loads(out)


def test_cli_health_exit_codes_follow_the_status(
    kafka_bootstrap: str, redis_url: str, new_topic: Callable[..., str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a DLQ topic holding 3 records
    dlq = new_topic(prefix="health") + ".dlq"
    create_topic(AdminClient({"bootstrap.servers": kafka_bootstrap}), dlq)
    p = Producer({"bootstrap.servers": kafka_bootstrap})
    for i in range(3):
        p.produce(dlq, value=f"dead-{i}".encode())
    assert p.flush(15) == 0
    # When / Then: reachable cluster and Redis, DLQ under its threshold -> healthy, exit 0
    code, status = _health(capsys, "--bootstrap-servers", kafka_bootstrap, "--redis-url", redis_url,
                        "--dlq-topic", dlq, "--dlq-size-threshold", "3")
    assert (code, status["status"]) == (0, "healthy")
    assert status["metrics"]["dlq_size"] == 3 and status["metrics"]["dedup_available"] is True
    # When the DLQ is over its threshold -> degraded, exit 1
    code, status = _health(capsys, "--bootstrap-servers", kafka_bootstrap, "--dlq-topic", dlq,
                        "--dlq-size-threshold", "2")
    assert (code, status["status"]) == (1, "degraded")
    assert any("DLQ holds 3 records" in i for i in status["issues"])
    # When the cluster cannot be reached -> unhealthy, exit 2
    code, status = _health(capsys, "--bootstrap-servers", "127.0.0.1:1", "--timeout-s", "2")
    assert (code, status["status"]) == (2, "unhealthy")
    assert status["metrics"]["connected"] is False


def test_cli_health_reports_an_unreachable_redis(kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, status = _health(capsys, "--bootstrap-servers", kafka_bootstrap, "--redis-url",
                        "redis://:secret@127.0.0.1:1/0", "--timeout-s", "2")
    assert (code, status["status"]) == (1, "degraded")
    assert status["metrics"]["dedup_available"] is False
    assert "secret" not in json.dumps(status)


def _dead_port() -> int:
    """A port nothing listens on (bound by the OS, then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_cli_health_a_dead_bootstrap_entry_is_not_an_outage(kafka_bootstrap: str) -> None:
    # Given: a bootstrap list whose first entry is dead, the second the live (one-broker) cluster
    from concurrent.futures import ThreadPoolExecutor

    from tests.helpers.cli import run_cli

    servers = f"127.0.0.1:{_dead_port()},{kafka_bootstrap}"
    live = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=10).brokers
    # When: the check runs five times (librdkafka picks the first entry at random)
    with ThreadPoolExecutor(3) as pool:
        runs = list(pool.map(lambda _: run_cli("health", "--json", "--bootstrap-servers", servers), range(5)))
    # Then: healthy every time, with the brokers the metadata lists (not a bootstrap entry twice)
    for r in runs:
        status = json.loads(r.stdout)
        assert (r.returncode, status["status"]) == (0, "healthy"), status["issues"]
        assert status["metrics"]["brokers_up"] == len(live)
        assert status["metrics"]["brokers_down"] == 0


def test_cli_health_dlq_topic_that_is_a_source_topic_is_resolved_or_said_to_be_no_dlq(
    kafka_bootstrap: str, new_topic: Callable[..., str], capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.helpers.consumer import produce

    # Given: a source topic with 5 records and no DLQ, and one with 5 records and a 2-record DLQ
    bare, with_dlq = new_topic(prefix="health-src"), new_topic(prefix="health-src")
    create_topic(AdminClient({"bootstrap.servers": kafka_bootstrap}), f"{with_dlq}.dlq")
    produce(kafka_bootstrap, bare, [(None, b"x")] * 5)
    produce(kafka_bootstrap, with_dlq, [(None, b"x")] * 5)
    produce(kafka_bootstrap, f"{with_dlq}.dlq", [(None, b"dead")] * 2)
    # When / Then: the bare source is no DLQ: not counted, said so, degraded
    code, status = _health(capsys, "--bootstrap-servers", kafka_bootstrap, "--dlq-topic", bare)
    assert (code, status["status"]) == (1, "degraded")
    assert status["metrics"]["dlq_size"] == 0
    assert any(f"'{bare}' is not a DLQ" in i for i in status["issues"]), status["issues"]
    assert status["target"]["dlq_topics_missing"] == [bare]
    # When / Then: the source with a DLQ counts its DLQ's records, and says which topic it used
    code, status = _health(capsys, "--bootstrap-servers", kafka_bootstrap, "--dlq-topic", with_dlq)
    assert (code, status["status"]) == (0, "healthy"), status["issues"]
    assert status["metrics"]["dlq_size"] == 2
    assert status["notes"] == [f"{with_dlq}: using DLQ topic {with_dlq}.dlq"]
