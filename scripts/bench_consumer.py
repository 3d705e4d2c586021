#!/usr/bin/env python
"""ReliableConsumer under failures on a real broker: retry lateness and crash safety.

(Its throughput beside raw confluent-kafka, aiokafka and kafka-python is the consumer race of
the suite, ``bench/suite/consume.py``; ``make bench`` runs both.)

- flaky: F records, the handler fails the first two attempts of 10% and always for 1%
  (max_retries=3, backoff 200 ms .. 2 s): time until settled, successes exactly once, DLQ count,
  lateness of every retry (handed to the handler minus next.attempt.at; p50/p99/max, early).
- crash: C records (10% failing once) in a consumer process killed with SIGKILL halfway, then
  restarted: lost records and duplicates (re-deliveries with the same message id).

Prints the JSON and writes it to ``--out`` when given. Wall-clock figures: read them next to the
``conditions`` block, never as pass/fail thresholds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import confluent_kafka  # noqa: E402
from confluent_kafka import Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402
from prometheus_client import CollectorRegistry  # noqa: E402

from bench.suite.common import replication_factor, topic_config  # noqa: E402
from kafka_reliable import RetryConfig  # noqa: E402
from kafka_reliable.consumer import ConsumerRecord, ReliableConsumer  # noqa: E402


def _topic(admin: AdminClient, partitions: int) -> str:
    name = f"bench-consumer-{uuid.uuid4().hex[:8]}"
    topic = NewTopic(name, partitions, replication_factor(), config=topic_config())
    admin.create_topics([topic])[name].result(30)
    time.sleep(0.5)
    return name


def _fill(bs: str, topic: str, n: int) -> None:
    p = Producer(
        {
            "bootstrap.servers": bs,
            "linger.ms": 20,
            "enable.idempotence": True,
            "compression.type": "lz4",
        }
    )
    for i in range(n):
        value = json.dumps({"i": i, "payload": "x" * 80}).encode()
        while True:
            try:
                p.produce(topic, value=value, key=f"k{i}".encode())
                break
            except BufferError:
                p.poll(0.05)
    p.flush(60)


def flaky(bs: str, admin: AdminClient, n: int, partitions: int) -> dict[str, Any]:
    topic = _topic(admin, partitions)
    _fill(bs, topic, n)
    ok: dict[int, int] = {}
    late: list[float] = []
    always = {i for i in range(n) if i % 100 == 5}

    def handler(rec: ConsumerRecord) -> None:
        now = time.time() * 1000
        i = rec.value["i"]
        if rec.due_at_ms is not None:
            late.append(now - rec.due_at_ms)
        if i in always or (i % 10 == 0 and rec.attempt < 2):
            raise TimeoutError("flaky")
        ok[i] = ok.get(i, 0) + 1

    c = ReliableConsumer(
        bootstrap_servers=bs,
        group_id=f"bench-flaky-{uuid.uuid4().hex[:8]}",
        topics=[topic],
        retry_config=RetryConfig(max_retries=3, initial_delay_ms=200, max_delay_ms=2000),
        metrics_registry=CollectorRegistry(),
    )
    t = threading.Thread(target=c.run, args=(handler,), daemon=True)
    t0 = time.monotonic()
    t.start()
    while time.monotonic() - t0 < 300 and not (
        len(ok) == n - len(always) and c.stats.counts["dead_lettered"] == len(always)
    ):
        time.sleep(0.05)
    settled_s = time.monotonic() - t0
    c.stop()
    t.join(60)
    late.sort()
    return {
        "records": n,
        "fail_twice": n // 10,
        "always_fail": len(always),
        "settled_s": round(settled_s, 2),
        "handled_once": sum(1 for v in ok.values() if v == 1),
        "handled_more_than_once": sum(1 for v in ok.values() if v > 1),
        "dead_lettered": c.stats.counts["dead_lettered"],
        "retries": len(late),
        "early": sum(1 for x in late if x < 0),
        "lateness_p50_ms": round(late[len(late) // 2], 2),
        "lateness_p99_ms": round(late[int(len(late) * 0.99)], 2),
        "lateness_max_ms": round(late[-1], 2),
    }


CRASH_SCRIPT = r"""
import sys, time
from prometheus_client import CollectorRegistry
from kafka_reliable import ReliableConsumer, RetryConfig
bootstrap, topic, group, out = sys.argv[1:5]
f = open(out, "a", buffering=1)
def handler(rec):
    if rec.value["i"] % 10 == 0 and rec.attempt == 0:
        raise TimeoutError("transient")
    time.sleep(0.0002)
    f.write(f"{rec.message_id} {rec.value['i']}\n")
ReliableConsumer(bootstrap_servers=bootstrap, group_id=group, topics=[topic],
                 retry_config=RetryConfig(max_retries=3, initial_delay_ms=100, max_delay_ms=200),
                 metrics_registry=CollectorRegistry(),
                 consumer_config={"session_timeout_ms": 6000,
                                  "heartbeat_interval_ms": 1000}).run(handler)
"""


def crash(bs: str, admin: AdminClient, n: int, partitions: int) -> dict[str, Any]:
    topic = _topic(admin, partitions)
    _fill(bs, topic, n)
    group = f"bench-crash-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "handled.txt"
        out.touch()

        def lines() -> list[str]:
            return out.read_text().splitlines()

        def start() -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                [sys.executable, "-c", CRASH_SCRIPT, bs, topic, group, str(out)]
            )

        proc = start()
        while len(lines()) < n // 2 and proc.poll() is None:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        at_kill = len(lines())
        t0 = time.monotonic()
        proc = start()
        while len({ln.split()[1] for ln in lines()}) < n and time.monotonic() - t0 < 300:
            time.sleep(0.1)
        recovered_s = time.monotonic() - t0
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
        rows = [ln.split() for ln in lines()]
    ids = {int(i) for _, i in rows}
    same_id = all(len({m for m, i2 in rows if int(i2) == i}) == 1 for i in list(ids)[:2000])
    return {
        "records": n,
        "handled_before_sigkill": at_kill,
        "lost": n - len(ids),
        "duplicates": len(rows) - len(ids),
        "duplicates_share_message_id": same_id,
        "restart_to_complete_s": round(recovered_s, 2),
        "sigterm_exit_code": code,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    bs_default = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    ap.add_argument("--bootstrap-servers", default=bs_default)
    ap.add_argument("--quick", action="store_true", help="2,000 records each (a smoke run)")
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--flaky-records", type=int)
    ap.add_argument("--crash-records", type=int)
    ap.add_argument("--out", type=Path, help="also write the JSON here")
    args = ap.parse_args()
    size = 2_000 if args.quick else 10_000
    bs = args.bootstrap_servers
    admin = AdminClient({"bootstrap.servers": bs})
    result = {
        "conditions": {
            "python": platform.python_version(),
            "confluent_kafka": confluent_kafka.version(),
            "librdkafka": confluent_kafka.libversion()[0],
            "broker": bs,
            "value_bytes": 100,
            "consumer": "ReliableConsumer defaults",
            "load_avg_1m_at_start": round(os.getloadavg()[0], 2),
        },
        "flaky": flaky(bs, admin, args.flaky_records or size, args.partitions),
        "crash": crash(bs, admin, args.crash_records or size, args.partitions),
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
