"""``kafka-reliable health``: connect, judge, print; exit 0 healthy, 1 degraded, 2 unhealthy.

Usable as a container health check (``HEALTHCHECK CMD kafka-reliable health``). It connects
a librdkafka client with statistics on, waits for the cluster's answer (metadata, broker
states), optionally counts DLQ records and pings Redis, and applies the HealthMonitor rules.
Memory is the container's (cgroup) usage when limited, else the machine's.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from kafka_reliable.cli.common import (
    client_conf,
    connection_parent,
    fraction,
    non_negative_int,
    positive_float,
    redis_url,
)
from kafka_reliable.config import HealthThresholds, redact_url
from kafka_reliable.health import HealthMonitor, container_memory_usage

#: Exit codes by status.
EXIT_CODES = {"healthy": 0, "degraded": 1, "unhealthy": 2}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("health", help="check the cluster (and Redis, DLQ size); exit 0/1/2 = healthy/degraded/unhealthy",
                       epilog="exit codes: 0 healthy, 1 degraded, 2 unhealthy or bad arguments. The whole check "
                       "(counted from process start) answers within --timeout-s.", parents=[connection_parent()])
    p.add_argument("--redis-url", type=redis_url, default=None,
                   help="also check the dedup Redis (e.g. redis://host:6379/0)")
    p.add_argument("--dlq-topic", nargs="*", default=[], metavar="TOPIC",
                   help="DLQ topics whose record count is judged against --dlq-size-threshold "
                   "(a missing one makes the status degraded)")
    p.add_argument("--dlq-size-threshold", type=non_negative_int, default=HealthThresholds().dlq_size_threshold)
    p.add_argument("--memory-usage-threshold", type=fraction,
                   default=HealthThresholds().memory_usage_threshold)
    p.add_argument("--timeout-s", type=positive_float, default=10.0,
                   help="time budget of the whole check (default 10)")
    p.add_argument("--json", action="store_true", help="print the status as JSON")
    p.set_defaults(func=run)


#: Seconds of the budget kept for closing the client and printing the answer.
_RESERVE_S = 0.25


class _Budget:
    """One deadline for the whole check; every wait takes what is left (at least ``floor_s``).

    Counted from the start of the process (interpreter start and imports take a second on a
    busy machine), so a container health check gets its answer within ``--timeout-s``.
    """

    def __init__(self, timeout_s: float, floor_s: float = 0.05) -> None:
        self.deadline = time.monotonic() + max(0.2, timeout_s - _process_age_s() - _RESERVE_S)
        self.floor_s = floor_s

    def left(self, cap_s: float | None = None) -> float:
        left = max(self.floor_s, self.deadline - time.monotonic())
        return left if cap_s is None else min(cap_s, left)

    @property
    def over(self) -> bool:
        return time.monotonic() >= self.deadline


def _process_age_s() -> float:
    try:
        import psutil

        return max(0.0, time.time() - psutil.Process().create_time())
    except Exception:  # noqa: BLE001 - no process table: count from now
        return 0.0


def run(args: argparse.Namespace) -> int:
    thresholds = HealthThresholds(dlq_size_threshold=args.dlq_size_threshold,
                                  memory_usage_threshold=args.memory_usage_threshold)
    budget = _Budget(args.timeout_s)
    monitor = HealthMonitor(thresholds=thresholds, memory_probe=container_memory_usage)
    missing: list[str] = []
    consumer = _check_kafka(monitor, client_conf(args), budget)
    try:
        if args.dlq_topic and monitor.connected:
            size, missing = _dlq_size(consumer, args.dlq_topic, budget)
            monitor.set_dlq_size(size)
    finally:
        consumer.close()
    if args.redis_url:
        monitor.set_dedup_available(_redis_answers(args.redis_url, budget.left()))
    status = monitor.get_status()
    if missing:
        status["issues"].extend(f"DLQ topic {t!r} does not exist" for t in missing)
        if status["status"] == "healthy":
            status["status"] = "degraded"
    status["target"] = {"bootstrap_servers": args.bootstrap_servers,
                        "redis_url": redact_url(args.redis_url) if args.redis_url else None,
                        "dlq_topics": list(args.dlq_topic), "dlq_topics_missing": missing}
    if args.json:
        print(json.dumps(status, default=str))
    else:
        _print_table(status)
    return EXIT_CODES[status["status"]]


def _check_kafka(monitor: HealthMonitor, client: dict[str, Any], budget: _Budget) -> Consumer:
    """Feed the monitor from a real client (error_cb, stats_cb, metadata); return the client.

    A consumer that never subscribes: it joins no group, and can read watermarks after.
    """
    down: list[str] = []

    def on_error(err: KafkaError) -> None:
        monitor.record_connection_error(err.name(), err.str())
        if err.name() == "_ALL_BROKERS_DOWN":
            down.append(err.str())

    bootstrap = client["bootstrap.servers"]
    conf = {
        **client,
        "group.id": "kafka-reliable-health",
        "enable.auto.commit": False,
        "statistics.interval.ms": 100,
        "error_cb": on_error,
        "stats_cb": lambda raw: monitor.record_stats(json.loads(raw)),
        "socket.connection.setup.timeout.ms": max(1000, int(budget.left() * 1000)),
    }
    consumer = Consumer(conf)
    answered = False
    while not budget.over and not down and not (answered and monitor.brokers_up is not None):
        if not answered:
            try:
                consumer.list_topics(timeout=budget.left(0.5))
                answered = True
            except KafkaException:
                pass
        consumer.poll(budget.left(0.05))
    if not answered and not down:
        monitor.record_connection_error("_ALL_BROKERS_DOWN", f"no answer from {bootstrap} within the time budget")
    return consumer


def _dlq_size(consumer: Consumer, topics: list[str], budget: _Budget) -> tuple[int, list[str]]:
    """Records in the existing DLQ topics (high - low watermarks), and the missing ones."""
    total, missing = 0, []
    for topic in topics:
        md = consumer.list_topics(topic, timeout=budget.left())
        t = md.topics.get(topic)
        if t is None or t.error is not None or not t.partitions:
            missing.append(topic)
            continue
        for p in t.partitions:
            lo, hi = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=budget.left())
            total += hi - lo
    return total, missing


def _redis_answers(url: str, timeout_s: float) -> bool:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, ValueError, OSError):
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
