"""``kafka-reliable health``: connect, judge, print; exit 0 healthy, 1 degraded, 2 unhealthy.

Usable as a container health check (``HEALTHCHECK CMD kafka-reliable health``). It connects
a librdkafka client with statistics on, waits for the cluster's answer (metadata, broker
states), optionally counts DLQ records and pings Redis, and applies the HealthMonitor rules.
Memory is the container's (cgroup) usage when limited, else the machine's.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from kafka_reliable.config import HealthThresholds, redact_url
from kafka_reliable.health import HealthMonitor, container_memory_usage

#: Exit codes by status.
EXIT_CODES = {"healthy": 0, "degraded": 1, "unhealthy": 2}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("health", help="check the cluster (and Redis, DLQ size); exit 0/1/2 = healthy/degraded/unhealthy")
    p.add_argument("--bootstrap-servers", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092"),
                   help="Kafka bootstrap servers (default: $KAFKA_BOOTSTRAP_SERVERS or %(default)s)")
    p.add_argument("--redis-url", default=None, help="also check the dedup Redis (e.g. redis://host:6379/0)")
    p.add_argument("--dlq-topic", nargs="*", default=[], metavar="TOPIC",
                   help="DLQ topics whose record count is judged against --dlq-size-threshold")
    p.add_argument("--dlq-size-threshold", type=int, default=HealthThresholds().dlq_size_threshold)
    p.add_argument("--memory-usage-threshold", type=float, default=HealthThresholds().memory_usage_threshold)
    p.add_argument("--timeout-s", type=float, default=10.0, help="how long to wait for the cluster (default 10)")
    p.add_argument("--json", action="store_true", help="print the status as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    thresholds = HealthThresholds(dlq_size_threshold=args.dlq_size_threshold,
                                  memory_usage_threshold=args.memory_usage_threshold)
    monitor = HealthMonitor(thresholds=thresholds, memory_probe=container_memory_usage)
    _check_kafka(monitor, args.bootstrap_servers, args.timeout_s)
    if args.dlq_topic and monitor.connected:
        monitor.set_dlq_size(_dlq_size(args.bootstrap_servers, args.dlq_topic, args.timeout_s))
    if args.redis_url:
        monitor.set_dedup_available(_redis_answers(args.redis_url, args.timeout_s))
    status = monitor.get_status()
    status["target"] = {"bootstrap_servers": args.bootstrap_servers,
                        "redis_url": redact_url(args.redis_url) if args.redis_url else None,
                        "dlq_topics": list(args.dlq_topic)}
    if args.json:
        print(json.dumps(status, default=str))
    else:
        _print_table(status)
    return EXIT_CODES[status["status"]]


def _check_kafka(monitor: HealthMonitor, bootstrap: str, timeout_s: float) -> None:
    """Feed the monitor from a real client: error_cb, stats_cb and a metadata request."""
    conf = {
        "bootstrap.servers": bootstrap,
        "statistics.interval.ms": 100,
        "error_cb": lambda err: monitor.record_connection_error(err.name(), err.str()),
        "stats_cb": lambda raw: monitor.record_stats(json.loads(raw)),
        "socket.connection.setup.timeout.ms": max(1000, int(timeout_s * 1000)),
        "log_level": 2,  # connection failures are reported in the result, not as log spam
    }
    producer = Producer(conf)
    try:
        try:
            producer.list_topics(timeout=timeout_s)
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            name = err.name() if isinstance(err, KafkaError) else "_TRANSPORT"
            monitor.record_connection_error(
                "_ALL_BROKERS_DOWN" if name in ("_TRANSPORT", "_TIMED_OUT") else name, str(exc)
            )
        deadline = time.monotonic() + min(timeout_s, 2.0)
        while monitor.brokers_up is None and time.monotonic() < deadline:
            producer.poll(0.05)
    finally:
        producer.flush(0)


def _dlq_size(bootstrap: str, topics: list[str], timeout_s: float) -> int:
    from kafka_reliable.topics import CompanionTopics

    companion = CompanionTopics({"bootstrap.servers": bootstrap})
    return sum(companion.count(t, timeout_s=timeout_s) for t in topics)


def _redis_answers(url: str, timeout_s: float) -> bool:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except redis.RedisError:
        return False


def _print_table(status: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    colour = {"healthy": "green", "degraded": "yellow", "unhealthy": "red"}[status["status"]]
    console = Console()
    console.print(f"Status: [bold {colour}]{status['status']}[/]  ({status['target']['bootstrap_servers']})")
    table = Table(show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in status["metrics"].items():
        table.add_row(key, _fmt(value))
    console.print(table)
    for issue in status["issues"]:
        console.print(f"[{colour}]• {issue}[/]")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)
