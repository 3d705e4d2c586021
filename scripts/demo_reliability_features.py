#!/usr/bin/env python3
"""Show every reliability feature working against a real Kafka broker (and Redis when given).

    python scripts/demo_reliability_features.py --demo all
    python scripts/demo_reliability_features.py --demo deduplication --redis-url redis://localhost:6379/0
    python scripts/demo_reliability_features.py --kafka-servers broker1:9092,broker2:9092 --short
    python scripts/demo_reliability_features.py --demo consumer

Each demo does real things on the broker, checks the outcome and explains it in a few lines.
Topics are named ``demo-<run>-…`` and deleted at the end (``--keep-topics`` keeps them).
Exit code 0 when every demo saw what it expected, 1 otherwise.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
)
from rich.console import Console
from rich.table import Table

from kafka_reliable import ReliableKafkaProducer, RetryConfig, SerializationError
from kafka_reliable import headers as H
from kafka_reliable.avro import AvroDecoder, AvroSerializer
from kafka_reliable.datagen.generators import EventGenerator
from kafka_reliable.datagen.orchestrator import DataGenerationOrchestrator
from kafka_reliable.dlq import DeadLetterQueue
from kafka_reliable.worker import RetryWorker, WorkerConfig

DEMOS = ("dlq", "retry", "deduplication", "health", "batch", "scenario", "consumer")
#: Producer settings that make failures surface in seconds (librdkafka's default is minutes).
FAST_FAILURES = {"delivery_timeout_ms": 3000, "request_timeout_ms": 1500, "batch_size": 32_000}
console = Console(highlight=False)


class Demo:
    """Shared state of one run: broker, Redis, unique topic names, scratch folder, results."""

    def __init__(self, *, servers: str, redis_url: str | None, short: bool, tmp: Path) -> None:
        self.servers, self.redis_url, self.short, self.tmp = servers, redis_url, short, tmp
        self.run_id = uuid.uuid4().hex[:6]
        self.admin = AdminClient({"bootstrap.servers": servers})
        self.gen = EventGenerator(seed=2024, start_ms=int(time.time() * 1000))
        self.results: list[tuple[str, bool, str]] = []

    def topic(self, name: str) -> str:
        return f"demo-{self.run_id}-{name}"

    def create(self, topic: str, config: dict[str, str] | None = None, partitions: int = 1) -> str:
        self.admin.create_topics([NewTopic(topic, partitions, -1, config=config or {})])[topic].result(30)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            t = self.admin.list_topics(topic, timeout=5).topics.get(topic)
            if t is not None and t.error is None and all(p.leader >= 0 for p in t.partitions.values()):
                break
            time.sleep(0.1)
        return topic

    def set_config(self, topic: str, key: str, value: str) -> None:
        entry = ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
        res = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[entry])
        self.admin.incremental_alter_configs([res])[res].result(30)

    def read(self, topic: str) -> list[Any]:
        """Every record a read_committed consumer finds in ``topic`` (none when it does not exist).

        Counted by reading, not from watermarks: transaction markers of a replay occupy offsets.
        """
        c = Consumer({"bootstrap.servers": self.servers, "group.id": f"demo-read-{self.run_id}",
                      "enable.partition.eof": True, "enable.auto.commit": False,
                      "isolation.level": "read_committed"})
        try:
            md = c.list_topics(topic, timeout=10).topics.get(topic)
            if md is None or md.error is not None:
                return []
            c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in md.partitions])
            out, at_end, deadline = [], set(), time.monotonic() + 20
            while len(at_end) < len(md.partitions) and time.monotonic() < deadline:
                for m in c.consume(500, timeout=0.5):
                    if m.error() is None:
                        out.append(m)
                    elif m.error().code() == KafkaError._PARTITION_EOF:
                        at_end.add(m.partition())
            return out
        finally:
            c.close()

    def count(self, topic: str) -> int:
        return len(self.read(topic))

    def producer(self, name: str, **kw: Any) -> ReliableKafkaProducer:
        kw.setdefault("producer_config", FAST_FAILURES)
        return ReliableKafkaProducer(bootstrap_servers=self.servers, spool_path=self.tmp / f"{name}.db", **kw)

    def transactions(self, n: int) -> list[dict[str, Any]]:
        g, rng, out = self.gen, self.gen.rng, []
        for i in range(n):
            user = g.catalog.pick_user(rng)
            cart = [(g.catalog.pick_product(rng), rng.randint(1, 2))]
            out.append(g.transaction(at_ms=g.start_ms + i * 1000, user=user, cart=cart, session_id=None,
                                     ip=user.ip_address, device_type=user.device[0]).value)
        return out

    def events(self, n: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        t = self.gen.start_ms
        while len(out) < n:
            t += 5000
            out.extend(r.value for r in self.gen.session(t) if r.kind == "user_event")
        return out[:n]

    def record(self, name: str, ok: bool, figure: str) -> None:
        self.results.append((name, ok, figure))
        console.print(f"[bold]{name} demo: {'OK' if ok else 'FAILED'}[/] — {figure}\n")

    def cleanup(self) -> None:
        mine = [t for t in self.admin.list_topics(timeout=10).topics if t.startswith(f"demo-{self.run_id}-")]
        if mine:
            for fut in self.admin.delete_topics(mine).values():
                fut.result(30)


def explain(*lines: str) -> None:
    for line in lines:
        console.print(f"  [dim]→[/] {line}")


def wait_until(cond: Callable[[], bool], timeout_s: float, step_s: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step_s)
    return cond()


# ---- demos ----------------------------------------------------------------------------------
def demo_dlq(d: Demo) -> None:
    console.rule("[bold]Dead letter queue: oversized records, stats, list, replay")
    topic = d.create(d.topic("orders"), {"max.message.bytes": "64000"})
    ser = AvroSerializer(schemas={topic: "transaction"})
    good, n_big = d.transactions(10 if d.short else 40), 3
    big = [{**t, "metadata": {"gift_message": os.urandom(40_000).hex()}} for t in d.transactions(n_big)]
    with d.producer("dlq", serializer=ser) as p:
        try:
            p.send_message(topic, {**good[0], "total_cents": "12.50"})
        except SerializationError as exc:
            explain(f"a bad value is refused before sending: [italic]{exc}[/]")
        for t in good + big:
            p.send_message(topic, t, key=t["user_id"])
        p.flush(30)
        dlq_stats = p.dlq.stats(topic)
        explain(f"{len(good)} orders delivered, {n_big} orders of ~80 kB refused by the broker "
                f"(topic max.message.bytes = 64000): MSG_SIZE_TOO_LARGE is not retriable → {topic}.dlq")
        explain(f"DLQ stats: total {dlq_stats['total_messages']}, by error class "
                f"{dict(dlq_stats.get('error_class_breakdown', {}))}")
        table = Table("id", "error class", "code", "reason", "attempt", "bytes")
        listed = p.get_dlq_messages(topic)
        for m in listed:
            table.add_row(m.id, str(m.error_class), str(m.error_code), str(m.reason), str(m.retry_count),
                          str(len(m.value or b"")))
        console.print(table)
        d.set_config(topic, "max.message.bytes", "1048588")
        explain("fix the cause: max.message.bytes raised to 1 MiB (incremental_alter_configs), then replay")
        replayed = DeadLetterQueue(bootstrap_servers=d.servers).replay_dlq_messages(topic)
    arrived = wait_until(lambda: d.count(topic) == len(good) + n_big, 15)
    marked = [m for m in d.read(topic) if H.REPLAY_COUNT in dict(m.headers() or [])]
    explain(f"replayed {replayed} records; {topic} now holds {d.count(topic)} records, {len(marked)} of them "
            f"with {H.REPLAY_COUNT} = 1 (a loop guard: a record cannot circle DLQ → topic forever)")
    ok = len(listed) == n_big and replayed == n_big and arrived and len(marked) == n_big
    d.record("dlq", ok, f"{n_big} oversized → dlq, listed {len(listed)}, replayed {replayed}")


def demo_retry(d: Demo) -> None:
    console.rule("[bold]Retry topic and retry worker: an unprovisioned topic")
    topic, n = d.topic("payments"), 8 if d.short else 25
    rc = RetryConfig(max_retries=3, initial_delay_ms=1000, jitter=False)
    with d.producer("retry", retry_config=rc) as p:
        ids = [p.send_message(topic, {"payment_id": i, "amount_cents": 1999 + i}, key=f"order-{i}")
               for i in range(n)]
        p.flush(30)
        statuses = {p.get_message_status(m) for m in ids}
    retry_topic = f"{topic}.retry"
    explain(f"{topic} does not exist yet and the broker does not auto-create topics: every record "
            f"failed with a retriable error → {retry_topic} (statuses {sorted(s or '?' for s in statuses)})")
    explain("(Kafka 4.x caps min.insync.replicas at the replica count, so raising it no longer makes "
            "a one-broker topic refuse writes; a missing topic does)")
    in_retry = d.count(retry_topic)
    d.create(topic)
    explain(f"{in_retry} records wait in {retry_topic}; the topic is now created — the retry worker republishes "
            "each record when its next.attempt.at is due")
    cfg = WorkerConfig(bootstrap_servers=d.servers, topics=(topic,), group_id=f"demo-worker-{d.run_id}",
                       retry_config=rc)
    worker = RetryWorker(config=cfg)
    thread = threading.Thread(target=worker.run, name="demo-retry-worker", daemon=True)
    t0 = time.monotonic()
    thread.start()
    arrived = wait_until(lambda: d.count(topic) >= n, 45)
    elapsed = time.monotonic() - t0
    worker.stop()
    thread.join(20)
    explain(f"worker counts {worker.counts}; {d.count(topic)}/{n} records in {topic} after {elapsed:.1f} s")
    ok = statuses == {"retrying"} and in_retry == n and arrived
    d.record("retry", ok, f"{in_retry} → .retry, {worker.counts['republished']} republished by the worker")


def demo_deduplication(d: Demo) -> None:
    console.rule("[bold]Deduplication: a client that re-sends what it already sent")
    topic, n = d.create(d.topic("clicks")), 20 if d.short else 100
    client = _redis(d.redis_url)
    backend = "Redis" if client is not None else "memory"
    events = d.events(n)
    ser = AvroSerializer(schemas={topic: "user_event"})
    with d.producer("dedup-a", serializer=ser, enable_deduplication=True, redis_client=client) as p:
        for e in events:
            p.send_message(topic, e, key=e["session_id"])
        for e in events[: n // 2]:  # a retry loop in the application re-sends half of them
            p.send_message(topic, e, key=e["session_id"])
        p.flush(30)
        dup_a = p.get_stats()["deduplication_stats"]
    explain(f"{n} events sent, then {n // 2} of them again: {dup_a['duplicates']} caught by the {backend} "
            f"backend (content checksum of topic, key, value), duplicate rate {dup_a['duplicate_rate']:.0%}")
    dup_b = 0
    if client is not None:
        with d.producer("dedup-b", serializer=ser, enable_deduplication=True, redis_client=client) as q:
            for e in events[:10]:
                q.send_message(topic, e, key=e["session_id"])
            q.flush(30)
            dup_b = q.get_stats()["duplicates"]
        explain(f"a second producer instance sharing Redis re-sent 10 of them: {dup_b} caught (shared keys)")
    else:
        explain("no Redis answered: memory dedup protects one process only (give --redis-url to share)")
    on_topic = d.count(topic)
    decoded = AvroDecoder().decode(bytes(d.read(topic)[0].value()))
    explain(f"{topic} holds {on_topic} records (Avro single-object; first is a {decoded['event_type']})")
    ok = on_topic == n and dup_a["duplicates"] == n // 2 and (client is None or dup_b == 10)
    d.record("deduplication", ok, f"{dup_a['duplicates'] + dup_b} duplicates stopped ({backend}), {on_topic} on topic")


def demo_health(d: Demo) -> None:
    console.rule("[bold]Health monitoring and alerts")
    good_topic, bad_topic = d.create(d.topic("health")), d.topic("health-missing")
    alerts: list[dict[str, Any]] = []
    # the latency threshold is far off: the demo shows the error-rate alert, and a busy machine's
    # first deliveries can take a second (the "before" status must not depend on load)
    with d.producer("health", health_thresholds={"error_rate_threshold": 0.05, "latency_threshold_ms": 30_000},
                    health_window_s=30) as p:
        p.add_health_alert_callback(alerts.append)
        for i in range(40):
            p.send_message(good_topic, {"n": i})
        p.flush(30)
        wait_until(lambda: p.get_health_status()["metrics"]["deliveries_in_window"] >= 40, 5)
        before = p.get_health_status()
        lat = p.get_stats()["latency_stats"]
        explain(f"40 records delivered: status [bold]{before['status']}[/], "
                f"error rate {before['metrics']['avg_error_rate']:.2%}, "
                f"delivery latency avg {lat['avg_ms']:.1f} ms / p95 {lat['p95_ms']:.1f} ms")
        for i in range(12):
            p.send_message(bad_topic, {"n": i})
        p.flush(30)
        wait_until(lambda: any(a["type"] == "error_rate" for a in alerts), 10)
        after = p.get_health_status()
    explain(f"12 records for a missing topic failed: status [bold]{after['status']}[/], "
            f"error rate {after['metrics']['avg_error_rate']:.2%}, issues: {after['issues']}")
    for a in alerts:
        explain(f"alert callback: {a['type']} — {a['value']} exceeds {a['threshold']} ({a['severity']})")
    ok = before["status"] == "healthy" and after["status"] != "healthy" and any(
        a["type"] == "error_rate" for a in alerts)
    d.record("health", ok, f"{before['status']} → {after['status']}, {len(alerts)} alert(s)")


def demo_batch(d: Demo) -> None:
    console.rule("[bold]Batch sends")
    topic, n = d.create(d.topic("events-batch"), partitions=3), 300 if d.short else 2000
    events = d.events(n)
    ser = AvroSerializer(schemas={topic: "user_event"})
    with d.producer("batch", serializer=ser, enable_deduplication=True) as p:
        t0 = time.perf_counter()
        res = p.send_batch(topic, events, key_extractor=lambda e: e["session_id"])
        dt = time.perf_counter() - t0
        explain(f"send_batch of {res['total']}: sent {res['sent']}, failed {res['failed']}, "
                f"duplicates {res['duplicates']} in {dt * 1000:.0f} ms ({res['total'] / dt:,.0f} records/s, "
                "returns once every record is delivered or routed)")
        again = p.send_batch(topic, events[:5] + d.events(5), key_extractor=lambda e: e["session_id"])
        explain(f"a batch repeating 5 earlier events: sent {again['sent']}, duplicates {again['duplicates']}")
        bad = [dict(e) for e in d.events(4)]
        bad[2]["sequence_number"] = "third"
        try:
            p.send_batch(topic, bad)
        except SerializationError as exc:
            explain(f"a batch with one bad value is refused whole, nothing sent: [italic]{exc}[/]")
    on_topic = d.count(topic)
    ok = res["sent"] == n and again["duplicates"] == 5 and on_topic == n + again["sent"]
    d.record("batch", ok, f"{res['sent']}/{res['total']} sent, {again['duplicates']} duplicates, {on_topic} on topic")


def demo_scenario(d: Demo) -> None:
    console.rule("[bold]Data generator: system_degradation through the reliable producer")
    prefix = d.topic("shop-")
    d.create(prefix + "transactions", {"max.message.bytes": "64000"}, partitions=2)
    orch = DataGenerationOrchestrator(bootstrap_servers=d.servers, topic_prefix=prefix, seed=7,
                                      redis_client=_redis(d.redis_url), producer_config=FAST_FAILURES,
                                      spool_path=d.tmp / "scenario.db", console=console, partitions=2)
    try:
        s = orch.run_scenario("system_degradation", duration_hours=0.05 if d.short else 0.25, speed=0)
    finally:
        orch.close()
    inj = s["injected"]
    explain(f"{s['generated']} records of simulated shop traffic; injected {inj}")
    explain(f"oversized → .dlq: {s['dead_lettered']}; unprovisioned topic → .retry: {s['retried']}; "
            f"duplicates stopped: {s['duplicates']}; {s['throughput_per_s']} records/s delivered")
    ok = (s["dead_lettered"] == inj.get("oversized", 0) and s["retried"] == inj.get("unwritable", 0)
          and s["duplicates"] == inj.get("duplicate", 0) and s["undelivered"] == 0)
    d.record("scenario", ok, f"{s['sent']} sent, {s['retried']} retry, {s['dead_lettered']} dlq, "
             f"{s['duplicates']} duplicates")


def demo_consumer(d: Demo) -> None:
    console.rule("[bold]ReliableConsumer: a flaky handler, a bad record dead-lettered and replayed")
    from kafka_reliable.consumer import ConsumerRecord, ReliableConsumer

    topic, n, group = d.create(d.topic("shipments"), partitions=2), 12 if d.short else 40, "billing"
    with d.producer("consumer") as p:
        for i in range(n):
            p.send_message(topic, {"order": i, "amount_cents": -5 if i == 7 else 1000 + i}, key=f"order-{i}")
        p.flush(30)
    fixed, calls, handled = threading.Event(), [], []

    def charge(rec: ConsumerRecord) -> None:
        calls.append((rec.value["order"], rec.attempt))
        if rec.value["amount_cents"] < 0 and not fixed.is_set():
            raise ValueError(f"amount {rec.value['amount_cents']} is negative")
        if rec.value["order"] % 4 == 0 and rec.attempt == 0:
            raise TimeoutError("payment API timed out")
        handled.append(rec.value["order"])

    consumer = ReliableConsumer(bootstrap_servers=d.servers, group_id=group, topics=[topic],
                                retry_config=RetryConfig(max_retries=3, initial_delay_ms=500, max_delay_ms=2000),
                                non_retriable_exceptions=(ValueError,))
    thread = threading.Thread(target=consumer.run, args=(charge,), name="demo-consumer", daemon=True)
    thread.start()
    try:
        settled = wait_until(lambda: len(handled) == n - 1 and consumer.stats.counts["dead_lettered"] == 1, 45)
        flaky = sorted({o for o, a in calls if a > 0})
        explain(f"handler timed out on the first attempt of orders {flaky} → {consumer.retry_topic(topic)} "
                "(group-scoped: other groups of the topic are not disturbed), handed back when due, then succeeded")
        dlq = DeadLetterQueue(bootstrap_servers=d.servers)
        dead = dlq.get_dlq_messages(consumer.dlq_topic(topic))
        for m in dead:
            explain(f"{consumer.dlq_topic(topic)}: key {m.key!r} reason {m.reason}, "
                    f"{m.error_class}: {m.last_error}")
        fixed.set()
        replayed = dlq.replay_dlq_messages(consumer.dlq_topic(topic))
        back = wait_until(lambda: 7 in handled, 30)
        explain(f"after the fix: replayed {replayed} record(s) into {consumer.retry_topic(topic)}, due now — "
                f"only group {group!r} handles it again (order 7 handled: {back})")
        stats = consumer.get_stats()
        explain(f"get_stats(): handled {stats['messages_handled']}, failed {stats['messages_failed']}, retried "
                f"{stats['messages_retried']}, dead-lettered {stats['messages_dead_lettered']}, retry lateness "
                f"p99 {stats['lateness_stats']['p99_ms']:.1f} ms; health {consumer.get_health_status()['status']}")
    finally:
        consumer.stop()
        thread.join(20)
    ok = settled and back and len(dead) == 1 and replayed == 1 and sorted(handled) == list(range(n))
    d.record("consumer", ok, f"{n} records: {len(flaky)} retried then handled, 1 dead-lettered and replayed")


# ---- helpers and main -----------------------------------------------------------------------
def _redis(url: str | None) -> Any:
    if not url:
        return None
    import redis

    client = redis.Redis.from_url(url, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        console.print(f"[yellow]Redis at {url.split('@')[-1]} does not answer ({exc}); using memory dedup")
        return None
    return client


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--demo", choices=("all", *DEMOS), default="all")
    ap.add_argument("--kafka-servers", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092"))
    ap.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://localhost:6379/0"))
    ap.add_argument("--short", action="store_true", help="fewer records (CI and tests)")
    ap.add_argument("--keep-topics", action="store_true", help="keep the demo-<run>-* topics")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    names = DEMOS if args.demo == "all" else (args.demo,)
    with tempfile.TemporaryDirectory(prefix="kr-demo-") as tmp:
        d = Demo(servers=args.kafka_servers, redis_url=args.redis_url, short=args.short, tmp=Path(tmp))
        console.print(f"kafka-reliable demo on [bold]{d.servers}[/] (topics demo-{d.run_id}-*)\n")
        t0 = time.monotonic()
        try:
            for name in names:
                try:
                    globals()[f"demo_{name}"](d)
                except Exception as exc:  # noqa: BLE001 - one failed demo must not hide the others
                    console.print_exception(max_frames=5)
                    d.record(name, False, f"raised {type(exc).__name__}: {exc}")
        finally:
            if not args.keep_topics:
                d.cleanup()
        table = Table("demo", "result", "what happened", title=f"summary ({time.monotonic() - t0:.1f} s)")
        for name, ok, figure in d.results:
            table.add_row(name, "[green]OK[/]" if ok else "[red]FAILED[/]", figure)
        console.print(table)
    return 0 if all(ok for _, ok, _ in d.results) else 1


if __name__ == "__main__":
    sys.exit(main())
