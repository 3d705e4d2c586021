"""Consumer race: ReliableConsumer (sync and asyncio) beside raw confluent-kafka, aiokafka and
kafka-python, each reading the same pre-filled topic with a fresh group, interleaved rounds.

Child: ``python -m bench.suite.consume --contender NAME --topic T --records N`` prints one JSON
line. Every contender decodes the JSON value and calls a no-op handler; the clock runs from the
first record handled to the N-th (group join and first fetch excluded, alike for all); CPU is
the whole process's (all threads) over that span.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from bench.suite.common import (
    POOL,
    RDKAFKA_CONF,
    bootstrap,
    delete_topics,
    dumps,
    new_topics,
    run_child,
    value_pool,
    vm_hwm_mb,
)

#: Race order inside a round (raw opens and closes it).
ORDER = ["raw", "reliable", "reliable-async", "aiokafka", "kafka-python"]
LABELS = {
    "raw": "raw confluent-kafka consume(500) loop + json.loads + handler call",
    "reliable": "ReliableConsumer.run, no-op handler (metrics on)",
    "reliable-async": "AsyncReliableConsumer.run_async, no-op async handler",
    "aiokafka": "aiokafka AIOKafkaConsumer.getmany(500) + json.loads",
    "kafka-python": "kafka-python KafkaConsumer.poll(500) + json.loads",
}
BATCH = 500


class Clock:
    """Start at the first record handled, stop at the ``n``-th."""

    def __init__(self, n: int) -> None:
        self.n, self.seen = n, 0
        self.t0 = self.t1 = self.cpu0 = self.cpu1 = 0.0
        self.done = threading.Event()

    def tick(self) -> None:
        if not self.seen:
            self.t0, self.cpu0 = time.perf_counter(), _cpu_s()
        self.seen += 1
        if self.seen == self.n:
            self.t1, self.cpu1 = time.perf_counter(), _cpu_s()
            self.done.set()


def _cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _group(name: str) -> str:
    return f"bench-consume-{name}-{uuid.uuid4().hex[:8]}"


def run_raw(topic: str, clock: Clock) -> None:
    from confluent_kafka import Consumer

    c = Consumer({"bootstrap.servers": bootstrap(), "group.id": _group("raw"),
                  "auto.offset.reset": "earliest", "enable.partition.eof": False})  # fmt: skip
    c.subscribe([topic])

    def handler(_value: Any) -> None:
        return None

    try:
        while not clock.done.is_set():
            for m in c.consume(BATCH, timeout=0.5):
                if m.error() is None:
                    handler(json.loads(m.value() or b"null"))
                    clock.tick()
    finally:
        c.close()


def run_reliable(topic: str, clock: Clock) -> None:
    from prometheus_client import CollectorRegistry

    from kafka_reliable.consumer import ReliableConsumer

    c = ReliableConsumer(bootstrap_servers=bootstrap(), group_id=_group("rc"), topics=[topic],
                         metrics_registry=CollectorRegistry())  # fmt: skip
    t = threading.Thread(target=c.run, args=(lambda _rec: clock.tick(),), daemon=True)
    t.start()
    clock.done.wait(600)
    c.stop()
    t.join(60)


def run_reliable_async(topic: str, clock: Clock) -> None:
    from prometheus_client import CollectorRegistry

    from kafka_reliable.aio import AsyncReliableConsumer

    c = AsyncReliableConsumer(bootstrap_servers=bootstrap(), group_id=_group("arc"),
                              topics=[topic], metrics_registry=CollectorRegistry())  # fmt: skip

    async def handler(_rec: Any) -> None:
        clock.tick()
        if clock.done.is_set():
            c.stop()

    asyncio.run(c.run_async(handler))


def run_aiokafka(topic: str, clock: Clock) -> None:
    from aiokafka import AIOKafkaConsumer

    async def go() -> None:
        c = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap(), group_id=_group("aiok"),
                             auto_offset_reset="earliest")  # fmt: skip
        await c.start()
        try:
            while not clock.done.is_set():
                got = await c.getmany(timeout_ms=500, max_records=BATCH)
                for records in got.values():
                    for m in records:
                        json.loads(m.value)
                        clock.tick()
        finally:
            await c.stop()

    asyncio.run(go())


def run_kafka_python(topic: str, clock: Clock) -> None:
    from kafka import KafkaConsumer

    c = KafkaConsumer(topic, bootstrap_servers=bootstrap(), group_id=_group("kp"),
                      auto_offset_reset="earliest")  # fmt: skip
    try:
        while not clock.done.is_set():
            for records in c.poll(timeout_ms=500, max_records=BATCH).values():
                for m in records:
                    json.loads(m.value)
                    clock.tick()
    finally:
        c.close()


RUNNERS: dict[str, Callable[[str, Clock], None]] = {
    "raw": run_raw,
    "reliable": run_reliable,
    "reliable-async": run_reliable_async,
    "aiokafka": run_aiokafka,
    "kafka-python": run_kafka_python,
}


def fill(topic: str, n: int) -> int:
    """``n`` records of ~100-byte JSON (keys spread over partitions) with raw confluent-kafka;
    returns the value size."""
    from confluent_kafka import Producer

    pool = value_pool(100)
    p = Producer({"bootstrap.servers": bootstrap(), **RDKAFKA_CONF})
    for i in range(n):
        rec = pool[i % POOL]
        rec["seq"] = i
        while True:
            try:
                p.produce(topic, dumps(rec), str(i).encode())
                break
            except BufferError:
                p.poll(0.05)
    if p.flush(120):
        raise RuntimeError(f"could not fill {topic} with {n} records")
    return len(dumps(pool[0]))


def trial(name: str, topic: str, n: int) -> dict[str, Any]:
    clock = Clock(n)
    RUNNERS[name](topic, clock)
    if clock.seen < n:
        raise RuntimeError(f"{name} handled {clock.seen} of {n} records")
    elapsed = max(1e-6, clock.t1 - clock.t0)
    return {"contender": name, "records": n, "elapsed_s": elapsed,
            "cpu_s": clock.cpu1 - clock.cpu0, "peak_rss_mb": vm_hwm_mb()}  # fmt: skip


def _shown(r: dict[str, Any]) -> str:
    if "error" in r:
        return str(r["error"])
    return f"{r['records_per_s']:>9,.0f} rec/s {r['cpu_s_per_100k']:5.2f} CPU-s/100k"


def race(admin: Any, n: int, rounds: int, log: Callable[[str], None]) -> dict[str, Any]:
    """Every consumer contender over the same ``n`` records, ``rounds`` interleaved rounds."""
    from bench.suite.throughput import summarize_trials

    (topic,) = new_topics(admin, 1, prefix="bench-consume")
    try:
        value_bytes = fill(topic, n)
        trials: list[dict[str, Any]] = []
        for rnd in range(rounds):
            for name in [*ORDER, "raw"]:
                args = ["--contender", name, "--topic", topic, "--records", str(n)]
                r = run_child("bench.suite.consume", args, timeout_s=120 + n / 1000)
                r.update(round=rnd, size_bytes=value_bytes, contender=name)
                if "error" not in r:
                    r["records_per_s"] = n / r["elapsed_s"]
                    r["mb_per_s"] = n * value_bytes / r["elapsed_s"] / 1e6
                    r["cpu_s_per_100k"] = r["cpu_s"] / n * 100_000
                trials.append(r)
                log(f"  round {rnd + 1}/{rounds} {name:<15} " + _shown(r))
    finally:
        delete_topics(admin, [topic])
    summary = summarize_trials(trials, ORDER, [value_bytes])[str(value_bytes)]
    for name, s in summary.items():
        if "label" in s:
            s["label"] = LABELS[name]
    return {"records": n, "value_bytes": value_bytes, "trials": trials, "summary": summary}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--contender", choices=ORDER, required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--records", type=int, required=True)
    args = ap.parse_args(argv)
    print(json.dumps(trial(args.contender, args.topic, args.records)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
