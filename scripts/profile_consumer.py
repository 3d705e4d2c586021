"""ReliableConsumer vs a raw confluent-kafka loop, one topic, interleaved: an indication, and a
profile of the consumer's engine thread (issue 25).

    python scripts/profile_consumer.py --records 200000 --rounds 2 [--profile out.txt]

Entry points for the benchmark suite: :func:`fill` (a topic of ``n`` JSON records),
:func:`run_raw` / :func:`run_reliable` (records per second from the first record handled to the
``n``-th; each decodes the JSON value and calls a no-op handler), :func:`profile_reliable`
(cProfile of the engine thread, top functions by own time). Prints the load average with every
figure, and the consuming thread's CPU time per record beside the rate: on a shared machine the
rate follows the load (and the broker), the CPU time much less; both are indications only,
quoted figures come from ``make bench``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import threading
import time
import uuid
from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from prometheus_client import CollectorRegistry

from kafka_reliable.consumer import ConsumerRecord, ReliableConsumer

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
VALUE = {"id": 0, "user": "u-123", "amount": 12.5, "currency": "EUR", "items": [1, 2, 3]}


def fill(n: int, partitions: int = 4) -> str:
    """A fresh topic holding ``n`` JSON records (~100 B each), keys spread over partitions."""
    topic = f"profile-consumer-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)
    p = Producer({"bootstrap.servers": BOOTSTRAP, "linger.ms": 20, "compression.type": "none"})
    for i in range(n):
        while True:
            try:
                p.produce(topic, json.dumps(dict(VALUE, id=i)).encode(), f"k{i}".encode())
                break
            except BufferError:
                p.poll(0.05)
    p.flush(60)
    return topic


class _Count:
    """Wall time and the consuming thread's CPU time from the first record to the ``n``-th (the
    CPU time excludes librdkafka's own threads, alike for both: the load-robust figure)."""

    def __init__(self, n: int) -> None:
        self.n, self.seen, self.t0, self.t1, self.cpu0, self.cpu1 = n, 0, 0.0, 0.0, 0.0, 0.0
        self.done = threading.Event()

    def tick(self) -> None:
        if not self.seen:
            self.t0, self.cpu0 = time.perf_counter(), time.thread_time()
        self.seen += 1
        if self.seen == self.n:
            self.t1, self.cpu1 = time.perf_counter(), time.thread_time()
            self.done.set()

    @property
    def rate(self) -> tuple[float, float]:
        """``(records per second, CPU µs per record on the consuming thread)``."""
        return (self.n - 1) / (self.t1 - self.t0), (self.cpu1 - self.cpu0) * 1e6 / (self.n - 1)


def run_raw(topic: str, n: int) -> tuple[float, float]:
    """``(records/s, CPU µs per record)`` of ``consume(500)`` + ``json.loads`` + a no-op handler."""
    count = _Count(n)
    c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": f"raw-{uuid.uuid4().hex[:8]}",
                  "auto.offset.reset": "earliest", "enable.partition.eof": False})  # fmt: skip
    c.subscribe([topic])

    def handler(_value: Any) -> None:
        count.tick()

    try:
        while not count.done.is_set():
            for m in c.consume(500, timeout=0.5):
                if m.error() is None:
                    handler(json.loads(m.value() or b"null"))
    finally:
        c.close()
    return count.rate


def _consumer(topic: str) -> ReliableConsumer:
    return ReliableConsumer(bootstrap_servers=BOOTSTRAP, group_id=f"rc-{uuid.uuid4().hex[:8]}",
                            topics=[topic], metrics_registry=CollectorRegistry())  # fmt: skip


def run_reliable(
    topic: str, n: int, profiler: cProfile.Profile | None = None
) -> tuple[float, float]:
    """``(records/s, CPU µs per record)`` of ``ReliableConsumer.run`` with a no-op handler (JSON deserializer)."""
    count = _Count(n)
    c = _consumer(topic)

    def handler(_rec: ConsumerRecord) -> None:
        count.tick()
        if count.done.is_set():
            c.stop()

    if profiler is not None:
        profiler.enable()
    try:
        c.run(handler)
    finally:
        if profiler is not None:
            profiler.disable()
    return count.rate


def profile_reliable(topic: str, n: int, top: int = 25) -> str:
    """The top functions (own time) of one ``run_reliable``, as text."""
    prof = cProfile.Profile()
    run_reliable(topic, n, prof)
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--profile", help="write a cProfile of one ReliableConsumer run here")
    args = ap.parse_args()
    topic = fill(args.records)
    print(f"load at start {os.getloadavg()}")
    for r in range(args.rounds):
        (raw, raw_us), (rel, rel_us) = (
            run_raw(topic, args.records),
            run_reliable(topic, args.records),
        )
        print(f"round {r}: raw {raw:,.0f}/s {raw_us:.2f} µs CPU/record; reliable {rel:,.0f}/s "
              f"{rel_us:.2f} µs CPU/record; ratio by rate {rel / raw:.2f}, by CPU "
              f"{raw_us / rel_us:.2f}; load {os.getloadavg()[0]:.2f}")  # fmt: skip
    if args.profile:
        with open(args.profile, "w") as f:
            f.write(profile_reliable(topic, args.records))
        print(f"profile written to {args.profile}")
    print(f"load at end {os.getloadavg()}")


if __name__ == "__main__":
    main()
