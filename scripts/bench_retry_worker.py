#!/usr/bin/env python
"""Retry-worker figures on a real broker: drain rate and lateness.

- drain: N records already due in ``<topic>.retry`` (P partitions, ~100-byte values), one
  worker process (``python -m kafka_reliable.worker``); records/s from the first republished
  record to the moment every ``.retry`` offset is committed. At-least-once and transactional.
- lateness: M records due over S seconds into a source topic with LogAppendTime, so the
  broker stamps arrival; lateness = arrival - due (p50/p99/max), never negative.

Writes ``bench/results/retry_worker.json``. Wall-clock figures of whatever machine runs it:
read them next to the ``conditions`` block, never as a pass/fail threshold.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import confluent_kafka  # noqa: E402
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from kafka_reliable.headers import MESSAGE_ID, Failure, failure_headers  # noqa: E402
from kafka_reliable.topics import CompanionTopics  # noqa: E402

OUT = ROOT / "bench" / "results" / "retry_worker.json"


def _topic(admin: AdminClient, partitions: int, config: dict[str, str] | None = None) -> str:
    name = f"bench-rw-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(name, partitions, 1, config=config or {})])[name].result(30)
    time.sleep(0.5)
    return name


def _write(bs: str, source: str, dues: list[int], partitions: int) -> None:
    p = Producer({"bootstrap.servers": bs, "linger.ms": 20, "enable.idempotence": True})
    for i, due in enumerate(dues):
        f = Failure(original_topic=source, attempt=1, error_code="_MSG_TIMED_OUT", error_class="KafkaTimeoutError",
                    error_message="timed out", retriable=True, first_failure_at_ms=due - 100,
                    last_failure_at_ms=due - 100, next_attempt_at_ms=due)
        value = json.dumps({"id": i, "payload": "x" * 70}).encode()
        while True:
            try:
                p.produce(f"{source}.retry", value=value, key=f"k{i}".encode(), partition=i % partitions,
                          headers=failure_headers(None, f, message_id=f"m{i}"))
                break
            except BufferError:
                p.poll(0.05)
    p.flush(60)


def _offsets(bs: str, topic: str, partitions: int, group: str | None) -> list[int]:
    c = Consumer({"bootstrap.servers": bs, "group.id": group or f"wm-{uuid.uuid4().hex[:6]}"})
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        if group:
            return [tp.offset for tp in c.committed(tps, timeout=10)]
        return [c.get_watermark_offsets(tp, timeout=10)[1] for tp in tps]
    finally:
        c.close()


def drain(bs: str, admin: AdminClient, n: int, partitions: int, transactional: bool) -> dict[str, Any]:
    source = _topic(admin, partitions)
    CompanionTopics({"bootstrap.servers": bs}).ensure(source)
    _write(bs, source, [int(time.time() * 1000)] * n, partitions)
    ends = _offsets(bs, f"{source}.retry", partitions, None)
    group = f"bench-{uuid.uuid4().hex[:6]}"
    cmd = [sys.executable, "-m", "kafka_reliable.worker", "--bootstrap-servers", bs, "--topics", source,
           "--group", group] + (["--transactional"] if transactional else [])
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KAFKA_RELIABLE_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT)
    try:
        while sum(_offsets(bs, source, partitions, None)) == 0:
            time.sleep(0.01)
        t_first = time.perf_counter()
        while _offsets(bs, f"{source}.retry", partitions, group) != ends:
            time.sleep(0.02)
        elapsed = time.perf_counter() - t_first
    finally:
        proc.terminate()
        proc.wait(30)
    return {"records": n, "partitions": partitions, "transactional": transactional,
            "seconds": round(elapsed, 3), "records_per_s": round(n / elapsed)}


def lateness(bs: str, admin: AdminClient, n: int, spread_s: float, partitions: int) -> dict[str, Any]:
    source = _topic(admin, partitions, {"message.timestamp.type": "LogAppendTime"})
    CompanionTopics({"bootstrap.servers": bs}).ensure(source)
    start = int(time.time() * 1000) + 2_000
    rnd = random.Random(5)
    dues = [start + rnd.randrange(int(spread_s * 1000)) for _ in range(n)]
    _write(bs, source, dues, partitions)
    cmd = [sys.executable, "-m", "kafka_reliable.worker", "--bootstrap-servers", bs, "--topics", source,
           "--group", f"bench-{uuid.uuid4().hex[:6]}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KAFKA_RELIABLE_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT)
    c = Consumer({"bootstrap.servers": bs, "group.id": f"r-{uuid.uuid4().hex[:6]}",
                  "auto.offset.reset": "earliest"})
    c.subscribe([source])
    late: list[int] = []
    deadline = time.monotonic() + spread_s + 60
    try:
        while len(late) < n and time.monotonic() < deadline:
            for m in c.consume(1000, timeout=0.5):
                if m.error() is None:
                    mid = int(dict(m.headers())[MESSAGE_ID].decode()[1:])
                    late.append(m.timestamp()[1] - dues[mid])
    finally:
        c.close()
        proc.terminate()
        proc.wait(30)
    late.sort()
    return {"records": n, "spread_s": spread_s, "received": len(late),
            "early": sum(1 for x in late if x < 0), "p50_ms": late[len(late) // 2],
            "p99_ms": late[int(len(late) * 0.99)], "max_ms": late[-1]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap-servers", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    ap.add_argument("--records", type=int, default=50_000)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--lateness-records", type=int, default=5_000)
    ap.add_argument("--lateness-spread-s", type=float, default=10.0)
    args = ap.parse_args()
    bs = args.bootstrap_servers
    admin = AdminClient({"bootstrap.servers": bs})
    result = {
        "conditions": {
            "cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "confluent_kafka": confluent_kafka.version(), "librdkafka": confluent_kafka.libversion()[0],
            "broker": "single local Apache Kafka (dev broker) on loopback", "value_bytes": 100,
            "worker": "one process, defaults (linger.ms=5, lz4, acks=all, idempotent, commit every 200 ms)",
        },
        "drain": [drain(bs, admin, args.records, args.partitions, txn) for txn in (False, True)],
        "lateness": lateness(bs, admin, args.lateness_records, args.lateness_spread_s, args.partitions),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
