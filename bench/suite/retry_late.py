"""The retry-worker bench's lateness and crash parts (run by ``scripts/bench_retry_worker.py``)."""

from __future__ import annotations

import random
import re
import signal
import socket
import time
import urllib.request
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from confluent_kafka import (
    Consumer,
)

from bench.suite.retry_drain import Cluster, stop, worker, write_retry
from kafka_reliable.headers import MESSAGE_ID

#: Lateness run: each record's random backoff on top of its place in the stagger.
BACKOFF_JITTER_MS = 500


# ---- lateness under load ------------------------------------------------------------------
def lateness(
    cl: Cluster, n: int, spread_s: float, partitions: int, write_rate: float
) -> dict[str, Any]:
    """Staggered due times: record i (in write order) is due at ``start + i * spread_s / n`` plus
    a random backoff of up to ``BACKOFF_JITTER_MS``, ``start`` once every record is written."""
    source = cl.topic(partitions, {"message.timestamp.type": "LogAppendTime"})
    group, port = f"bench-{uuid.uuid4().hex[:6]}", free_port()
    proc = worker(cl.bs, source, group, False, extra=("--metrics-port", str(port)))
    cl.wait_assigned(group, proc)
    start = int(time.time() * 1000) + int(2_000 + 1_500 * n / write_rate)
    rnd = random.Random(5)
    step_ms = spread_s * 1000 / n
    dues = [start + int(i * step_ms) + rnd.randrange(BACKOFF_JITTER_MS) for i in range(n)]
    write_retry(cl.bs, source, dues, partitions)
    written_ms = int(time.time() * 1000)
    c = Consumer(
        {
            "bootstrap.servers": cl.bs,
            "group.id": f"r-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
        }
    )
    c.subscribe([source])
    late: list[int] = []
    deadline = time.monotonic() + spread_s + 120
    try:
        while len(late) < n and time.monotonic() < deadline:
            for m in c.consume(1000, timeout=0.5):
                if m.error() is None:
                    mid = int(message_id(m)[1:])
                    late.append(m.timestamp()[1] - dues[mid])
        own = worker_lateness(port)
    finally:
        c.close()
        stop(proc)
    late.sort()
    return {
        "records": n,
        "spread_s": spread_s,
        "offered_records_per_s": round(n / spread_s),
        "all_written_before_first_due": written_ms <= start,
        "received": len(late),
        "early": sum(1 for x in late if x < 0),
        "p50_ms": late[len(late) // 2],
        "p99_ms": late[int(len(late) * 0.99)],
        "max_ms": late[-1],
        "measured_as": "broker LogAppendTime of the republished record minus its due time "
        "(includes the produce: linger 5 ms, acks=all round trip, broker queueing)",
        "worker_dispatch": own,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def worker_lateness(port: int) -> dict[str, Any]:
    """The worker's own lateness histogram (dispatch time minus due time): bucket bounds of
    p50/p99 and the count, read from its /metrics."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    buckets = [
        (float(le), float(v))
        for le, v in re.findall(
            r'kafka_reliable_retry_lateness_seconds_bucket\{le="([^"]+)"\} (\S+)', text
        )
    ]
    total = buckets[-1][1] if buckets else 0.0

    def upper_ms(q: float) -> float | None:
        return next((le * 1000 for le, cum in buckets if cum >= q * total), None) if total else None

    return {
        "records": int(total),
        "p50_at_most_ms": upper_ms(0.5),
        "p99_at_most_ms": upper_ms(0.99),
        "measured_as": "kafka_reliable_retry_lateness_seconds from the worker's /metrics "
        "(bucket upper bounds)",
    }


def message_id(m: Any) -> str:
    for k, v in m.headers() or ():
        if k == MESSAGE_ID and isinstance(v, bytes):
            return v.decode()
    raise ValueError("a record without a message id")


# ---- crash test -----------------------------------------------------------------------------
def read_ids(bs: str, topic: str, expected: int) -> list[str]:
    c = Consumer(
        {
            "bootstrap.servers": bs,
            "group.id": f"ids-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )
    c.subscribe([topic])
    ids: list[str] = []
    idle = time.monotonic()
    try:
        while time.monotonic() - idle < (2 if len(ids) >= expected else 15):
            batch = [m for m in c.consume(2000, timeout=0.5) if m.error() is None]
            if batch:
                idle = time.monotonic()
            ids.extend(message_id(m) for m in batch)
    finally:
        c.close()
    return ids


def crash(cl: Cluster, n: int, partitions: int, transactional: bool, log: Path) -> dict[str, Any]:
    """SIGKILL halfway through ``n`` due records, restart, count lost and duplicated ids."""
    source = cl.topic(partitions)
    t0 = int(time.time() * 1000) + 1_500
    write_retry(cl.bs, source, [t0 + i * 4_000 // n for i in range(n)], partitions)
    group = f"crash-{uuid.uuid4().hex[:6]}"
    proc = worker(cl.bs, source, group, transactional, log)
    try:
        while sum(cl.ends(source, partitions)) < n // 2:
            assert proc.poll() is None, "worker exited"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        killed_at = sum(cl.ends(source, partitions))
        proc = worker(cl.bs, source, group, transactional, log)
        ends = cl.ends(f"{source}.retry", partitions)
        deadline = time.monotonic() + 120
        while cl.committed(group, f"{source}.retry", partitions) != ends:
            assert time.monotonic() < deadline, "restarted worker did not commit everything"
            time.sleep(0.1)
    finally:
        stop(proc)
    counts = Counter(read_ids(cl.bs, source, n))
    return {
        "records": n,
        "transactional": transactional,
        "killed_with_in_topic": killed_at,
        "lost": len({f"m{i}" for i in range(n)} - set(counts)),
        "duplicates": sum(counts.values()) - len(counts),
        "restart_exit_code": proc.returncode,
    }
