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

from confluent_kafka import Consumer, KafkaException, TopicPartition

from kafka_reliable.cli.common import (
    client_conf,
    connection_parent,
    fraction,
    non_negative_int,
    positive_float,
    protocol_hint,
    redis_url,
)
from kafka_reliable.config import HealthThresholds, redact_url
from kafka_reliable.health import HealthMonitor, container_memory_usage

#: Exit codes by status.
EXIT_CODES = {"healthy": 0, "degraded": 1, "unhealthy": 2}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "health",
        help="check the cluster (and Redis, DLQ size); exit 0/1/2 = healthy/degraded/unhealthy",
        epilog="exit codes: 0 healthy, 1 degraded, 2 unhealthy or bad arguments. The whole check "
        "(counted from process start) answers within --timeout-s.",
        parents=[connection_parent()],
    )
    p.add_argument(
        "--redis-url",
        type=redis_url,
        default=None,
        help="also check the dedup Redis (e.g. redis://host:6379/0)",
    )
    p.add_argument(
        "--dlq-topic",
        nargs="*",
        default=[],
        metavar="TOPIC",
        help="DLQ topics whose record count is judged against --dlq-size-threshold "
        "(a missing one makes the status degraded)",
    )
    p.add_argument(
        "--dlq-size-threshold", type=non_negative_int, default=HealthThresholds().dlq_size_threshold
    )
    p.add_argument(
        "--memory-usage-threshold", type=fraction, default=HealthThresholds().memory_usage_threshold
    )
    p.add_argument(
        "--timeout-s",
        type=positive_float,
        default=10.0,
        help="time budget of the whole check (default 10)",
    )
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
        age = _process_age_s()
        age = age if age < timeout_s else 0.0  # older: not started for this check (run in-process)
        self.deadline = time.monotonic() + max(0.2, timeout_s - age - _RESERVE_S)
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
    thresholds = HealthThresholds(
        dlq_size_threshold=args.dlq_size_threshold,
        memory_usage_threshold=args.memory_usage_threshold,
    )
    budget = _Budget(args.timeout_s)
    monitor = HealthMonitor(thresholds=thresholds, memory_probe=container_memory_usage)
    conf = client_conf(args)
    missing: dict[str, str] = {}
    notes: list[str] = []
    consumer, cluster = _check_kafka(monitor, conf, budget)
    try:
        if args.dlq_topic and cluster is not None:
            size, missing, notes = _dlq_size(consumer, conf, args.dlq_topic, budget)
            monitor.set_dlq_size(size)
    finally:
        consumer.close()
    if args.redis_url:
        monitor.set_dedup_available(_redis_answers(args.redis_url, budget.left()))
    status = monitor.get_status()
    extra = [*missing.values(), *(cluster.issues() if cluster is not None else [])]
    status["issues"].extend(extra)
    if extra and status["status"] == "healthy":
        status["status"] = "degraded"
    if cluster is not None:
        status["metrics"].update(cluster.metrics())
    status["notes"] = notes
    status["target"] = {
        "bootstrap_servers": args.bootstrap_servers,
        "redis_url": redact_url(args.redis_url) if args.redis_url else None,
        "dlq_topics": list(args.dlq_topic),
        "dlq_topics_missing": list(missing),
    }
    if args.json:
        print(json.dumps(status, default=str))
    else:
        _print_table(status)
    return EXIT_CODES[status["status"]]


class _Cluster:
    """What one metadata answer says: live brokers, and brokers that partitions name but the
    metadata does not list (down)."""

    def __init__(self, md: Any) -> None:
        self.live = sorted(md.brokers)
        named = {r for t in md.topics.values() for p in t.partitions.values() for r in p.replicas}
        self.down = sorted(named - set(self.live))
        self.leaderless = sum(
            1
            for name, t in md.topics.items()
            if not name.startswith("__")
            for p in t.partitions.values()
            if p.leader < 0
        )

    def metrics(self) -> dict[str, Any]:
        return {
            "brokers_up": len(self.live),
            "brokers_down": len(self.down),
            "broker_ids_down": self.down,
            "partitions_without_leader": self.leaderless,
        }

    def issues(self) -> list[str]:
        out = []
        if self.down:
            total = len(self.live) + len(self.down)
            out.append(f"{len(self.down)} of {total} brokers down (ids {self.down})")
        if self.leaderless:
            out.append(f"{self.leaderless} partitions have no leader")
        return out


def _check_kafka(
    monitor: HealthMonitor, client: dict[str, Any], budget: _Budget
) -> tuple[Consumer, _Cluster | None]:
    """Reachable = a metadata answer from any broker within the budget (a dead bootstrap entry
    or one broker of three down is not an outage); brokers up/down from that answer.

    A consumer that never subscribes: it joins no group, and can read watermarks after.
    """
    errors: list[tuple[str, str]] = []
    conf = {
        **client,
        "group.id": "kafka-reliable-health",
        "enable.auto.commit": False,
        "error_cb": lambda err: errors.append((err.name(), err.str())),
        "socket.connection.setup.timeout.ms": max(1000, int(budget.left() * 1000)),
    }
    consumer = Consumer(conf)
    protocol = str(client.get("security.protocol", "plaintext"))
    while not budget.over:
        try:
            cluster = _Cluster(consumer.list_topics(timeout=budget.left(0.5)))
        except KafkaException:
            consumer.poll(0)  # serves error_cb
            if any(name in _GIVE_UP for name, _ in errors) or protocol_hint(protocol, errors):
                break
            continue
        monitor.record_metadata(len(cluster.live))
        return consumer, cluster
    silent = f"no answer from {client['bootstrap.servers']} within the time budget"
    causes = [(name, text) for name, text in errors if name != "_ALL_BROKERS_DOWN"] or [
        ("_ALL_BROKERS_DOWN", silent)
    ]
    monitor.record_connection_error(causes[-1][0], protocol_hint(protocol, errors) + causes[-1][1])
    return consumer, None


#: Errors after which no broker will answer this client: stop waiting.
_GIVE_UP = frozenset({"_ALL_BROKERS_DOWN", "_AUTHENTICATION", "_SSL"})


def _dlq_size(
    consumer: Consumer, conf: dict[str, Any], topics: list[str], budget: _Budget
) -> tuple[int, dict[str, str], list[str]]:
    """Records in the DLQ topics (high - low watermarks), the missing ones (name -> issue), notes.

    Each name is resolved as ``kafka-reliable dlq`` does: a source topic means its DLQ
    (``orders`` -> ``orders.dlq``, or a foreign ``orders-dlt``); a topic that is no DLQ at all
    is reported as such, never counted."""
    from kafka_reliable.dlq import DeadLetterQueue

    dlq = DeadLetterQueue(conf=conf, timeout_s=budget.left())
    total, missing, notes = 0, {}, []
    for topic in topics:
        r = dlq.resolve(topic)
        if not r.exists:
            missing[topic] = (
                f"DLQ topic '{topic}' does not exist"
                if r.dlq_topic == topic
                else f"'{topic}' is not a DLQ and has none: {r.missing}"
            )
            continue
        if r.note:
            notes.append(r.note)
        t = consumer.list_topics(r.dlq_topic, timeout=budget.left()).topics.get(r.dlq_topic)
        for p in t.partitions if t is not None else ():
            tp = TopicPartition(r.dlq_topic, p)
            lo, hi = consumer.get_watermark_offsets(tp, timeout=budget.left())
            total += hi - lo
    return total, missing, notes


def _redis_answers(url: str, timeout_s: float) -> bool:
    import redis

    try:
        client = redis.Redis.from_url(
            url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s
        )
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
    console.print(
        f"Status: [bold {colour}]{status['status']}[/]  ({status['target']['bootstrap_servers']})"
    )
    table = Table(show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in status["metrics"].items():
        table.add_row(key, _fmt(value))
    console.print(table)
    for issue in status["issues"]:
        console.print(f"[{colour}]• {issue}[/]")
    for note in status.get("notes", []):
        console.print(f"  {note}")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)
