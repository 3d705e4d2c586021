#!/usr/bin/env python3
"""Producer throughput: raw confluent-kafka vs ReliableKafkaProducer, in the same run.

Measures, for N records of a ~100-byte JSON value each: the send-call rate (time spent in
produce()/send_message() alone) and the end-to-end rate (until every record is acknowledged).
Prints a table and writes bench/results/producer.json. Ratios matter; absolute numbers on a
shared 2-core machine are noisy, so each variant runs ``--rounds`` times and the best is kept.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import confluent_kafka
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from kafka_reliable import ReliableKafkaProducer  # noqa: E402
from kafka_reliable.serialization import JsonSerializer  # noqa: E402

VALUE = {"user_id": "u-12345", "order_id": "o-987654321", "amount_cents": 9999, "currency": "EUR", "items": 3}


def make_topic(admin: AdminClient) -> str:
    name = f"bench-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)])[name].result(30)
    return name


def run_raw(bootstrap: str, topic: str, n: int) -> tuple[float, float]:
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                  "linger.ms": 5, "compression.type": "lz4"})
    ser = JsonSerializer()
    delivered = 0

    def cb(err: Any, msg: Any) -> None:
        nonlocal delivered
        if err is None:
            delivered += 1

    t0 = time.perf_counter()
    send = 0.0
    for i in range(n):
        s0 = time.perf_counter()
        v = ser(VALUE, topic)
        while True:
            try:
                p.produce(topic, v, str(i).encode(), on_delivery=cb)
                break
            except BufferError:
                p.poll(0.01)
        send += time.perf_counter() - s0
        if i % 1000 == 0:
            p.poll(0)
    p.flush(120)
    total = time.perf_counter() - t0
    assert delivered == n, f"raw: delivered {delivered}/{n}"
    return send, total


def run_reliable(bootstrap: str, topic: str, n: int, **kwargs: Any) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as d:
        kwargs.setdefault("enable_metrics", False)
        p = ReliableKafkaProducer(bootstrap_servers=bootstrap, spool_path=Path(d) / "s.db", **kwargs)
        t0 = time.perf_counter()
        send = 0.0
        for i in range(n):
            s0 = time.perf_counter()
            p.send_message(topic, VALUE if "enable_deduplication" not in kwargs else {**VALUE, "i": i}, key=str(i))
            send += time.perf_counter() - s0
        p.flush(120)
        total = time.perf_counter() - t0
        stats = p.get_stats()
        p.close()
    assert stats["messages_sent"] == n, f"reliable: sent {stats['messages_sent']}/{n}"
    return send, total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bootstrap-servers", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    ap.add_argument("-n", "--messages", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    ap.add_argument("--out", default="bench/results/producer.json")
    args = ap.parse_args()
    admin = AdminClient({"bootstrap.servers": args.bootstrap_servers})
    variants: dict[str, Any] = {
        "raw confluent-kafka": lambda t: run_raw(args.bootstrap_servers, t, args.messages),
        "reliable (defaults)": lambda t: run_reliable(args.bootstrap_servers, t, args.messages, enable_metrics=True),
        "reliable (no metrics)": lambda t: run_reliable(args.bootstrap_servers, t, args.messages),
        "reliable (no id header)": lambda t: run_reliable(args.bootstrap_servers, t, args.messages,
                                                          message_id_header=False),
        "reliable + memory dedup": lambda t: run_reliable(args.bootstrap_servers, t, args.messages,
                                                          enable_deduplication=True),
    }
    results: dict[str, dict[str, float]] = {}
    for name, fn in variants.items():
        sends, totals = [], []
        for _ in range(args.rounds):
            s, t = fn(make_topic(admin))
            sends.append(s)
            totals.append(t)
        results[name] = {
            "send_us_per_msg": min(sends) / args.messages * 1e6,
            "end_to_end_msgs_per_s": args.messages / min(totals),
            "end_to_end_median_msgs_per_s": args.messages / statistics.median(totals),
        }
        print(f"{name:26} send {results[name]['send_us_per_msg']:6.2f} us/msg   "
              f"end-to-end {results[name]['end_to_end_msgs_per_s']:9.0f} msg/s", flush=True)
    base = results["raw confluent-kafka"]["end_to_end_msgs_per_s"]
    for r in results.values():
        r["ratio_to_raw"] = r["end_to_end_msgs_per_s"] / base
    print("\nend-to-end ratio to raw: " + ", ".join(f"{k}: {v['ratio_to_raw']:.2f}" for k, v in results.items()))
    out = {
        "conditions": {
            "messages": args.messages, "rounds": args.rounds, "value_bytes": len(json.dumps(VALUE)),
            "partitions": 3, "acks": "all", "idempotence": True, "linger_ms": 5, "compression": "lz4",
            "broker": "single-node Apache Kafka 4.4.0 on loopback", "confluent_kafka": confluent_kafka.version(), "librdkafka": confluent_kafka.libversion()[0],
            "python": platform.python_version(), "cpus": os.cpu_count(),
        },
        "results": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
