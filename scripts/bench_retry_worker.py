#!/usr/bin/env python
"""Retry-worker figures on a real broker, side by side with a raw confluent-kafka pipe.

- drain: N records already due in ``<topic>.retry`` (P partitions, ~100-byte values), read by
  a raw consume->produce pipe (confluent-kafka, same client settings, commits every 200 ms)
  and by one worker process (``python -m kafka_reliable.worker``), at-least-once and
  transactional, interleaved over the same records (a fresh group each), R rounds. Rate: from
  the first record written to the target until every record is acknowledged (pipe) or every
  ``.retry`` offset is committed (worker). Ratio: worker / pipe of the same round.
- lateness: N records with staggered due times over S seconds (record i due at i*S/N plus a
  random backoff up to 500 ms), republished into a source topic with LogAppendTime (the broker
  stamps arrival); lateness = arrival - due (p50/p99/max), early = arrivals before due.
- crash: C records due over ~4 s; SIGKILL the worker once half has reached the topic,
  restart it, wait until every ``.retry`` offset is committed; lost and duplicated message ids.

Writes ``bench/results/retry_worker.json`` (``--out``). Wall-clock figures of whatever machine
runs it: read them next to the ``conditions`` block, never as a pass/fail threshold.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import confluent_kafka  # noqa: E402
from confluent_kafka import (  # noqa: E402
    Consumer,
    ConsumerGroupState,
    ConsumerGroupTopicPartitions,
    KafkaError,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from bench.suite.common import replication_factor, topic_config  # noqa: E402
from kafka_reliable.config import RELIABLE_DEFAULTS  # noqa: E402
from kafka_reliable.headers import MESSAGE_ID, Failure, failure_headers  # noqa: E402
from kafka_reliable.topics import CompanionTopics  # noqa: E402

OUT = ROOT / "bench" / "results" / "retry_worker.json"
#: Lateness run: each record's random backoff on top of its place in the stagger.
BACKOFF_JITTER_MS = 500
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "KAFKA_RELIABLE_LOG_LEVEL": "WARNING"}
FULL: dict[str, Any] = {
    "records": 100_000,
    "partitions": 6,
    "rounds": 3,
    "lateness_records": 100_000,
    "lateness_spread_s": 10.0,
    "crash_records": 20_000,
}
QUICK: dict[str, Any] = {
    "records": 10_000,
    "partitions": 6,
    "rounds": 1,
    "lateness_records": 5_000,
    "lateness_spread_s": 3.0,
    "crash_records": 4_000,
}


class Cluster:
    """One admin client and one long-lived consumer for watermarks and group offsets."""

    def __init__(self, bs: str) -> None:
        self.bs = bs
        self.admin = AdminClient({"bootstrap.servers": bs})
        self._wm = Consumer({"bootstrap.servers": bs, "group.id": f"wm-{uuid.uuid4().hex[:6]}"})

    def topic(
        self, partitions: int, config: dict[str, str] | None = None, companions: bool = True
    ) -> str:
        name = f"bench-rw-{uuid.uuid4().hex[:8]}"
        conf = {**topic_config(), **(config or {})}
        topic = NewTopic(name, partitions, replication_factor(), config=conf)
        self.admin.create_topics([topic])[name].result(30)
        while not self.admin.list_topics(name, timeout=10).topics[name].partitions:
            time.sleep(0.1)
        if companions:
            CompanionTopics({"bootstrap.servers": self.bs}, admin=self.admin).ensure(name)
        return name

    def wait_assigned(
        self, group: str, proc: subprocess.Popen[Any], timeout_s: float = 60.0
    ) -> None:
        """Until the group is stable with every member assigned (the worker is ready to read)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert proc.poll() is None, "worker exited"
            desc = self.admin.describe_consumer_groups([group])[group].result(10)
            if (
                desc.state == ConsumerGroupState.STABLE
                and desc.members
                and all(m.assignment and m.assignment.topic_partitions for m in desc.members)
            ):
                return
            time.sleep(0.1)
        raise TimeoutError(f"group {group} not stable within {timeout_s} s")

    def ends(self, topic: str, partitions: int) -> list[int]:
        return [
            self._wm.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(partitions)
        ]

    def committed(self, group: str, topic: str, partitions: int) -> list[int]:
        """The group's committed offsets (one admin request; -1001 where none)."""
        req = ConsumerGroupTopicPartitions(
            group, [TopicPartition(topic, p) for p in range(partitions)]
        )
        got = self.admin.list_consumer_group_offsets([req])[group].result(10)
        return [tp.offset for tp in sorted(got.topic_partitions, key=lambda tp: tp.partition)]


def write_retry(bs: str, source: str, dues: list[int], partitions: int) -> float:
    """``len(dues)`` records in ``<source>.retry``, record i due at ``dues[i]``; seconds taken."""
    t0 = time.perf_counter()
    p = Producer(
        {
            "bootstrap.servers": bs,
            "linger.ms": 20,
            "enable.idempotence": True,
            "compression.type": "lz4",
        }
    )
    for i, due in enumerate(dues):
        f = Failure(
            original_topic=source,
            attempt=1,
            error_code="_MSG_TIMED_OUT",
            error_class="KafkaTimeoutError",
            error_message="timed out",
            retriable=True,
            first_failure_at_ms=due - 100,
            last_failure_at_ms=due - 100,
            next_attempt_at_ms=due,
        )
        value = json.dumps({"id": i, "payload": "x" * 70}).encode()
        while True:
            try:
                p.produce(
                    f"{source}.retry",
                    value=value,
                    key=f"k{i}".encode(),
                    partition=i % partitions,
                    headers=failure_headers(None, f, message_id=f"m{i}"),
                )  # type: ignore[arg-type]
                break
            except BufferError:
                p.poll(0.05)
    assert p.flush(120) == 0, "could not write the .retry records"
    return time.perf_counter() - t0


def worker(
    bs: str,
    source: str,
    group: str,
    transactional: bool,
    log: Path | None = None,
    extra: tuple[str, ...] = (),
) -> subprocess.Popen[Any]:
    cmd = [
        sys.executable,
        "-m",
        "kafka_reliable.worker",
        "--bootstrap-servers",
        bs,
        "--topics",
        source,
        "--group",
        group,
        *extra,
    ] + (["--transactional"] if transactional else [])
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
    env = {**ENV, "KAFKA_RELIABLE_INSTANCE_ID": group} if log else ENV
    return subprocess.Popen(
        cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT if log else None
    )


def stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


# ---- drain: raw pipe vs worker --------------------------------------------------------------
def pipe_child(bs: str, source: str, sink: str, n: int, group: str) -> int:
    """The raw pipe (a child process): consume ``<source>.retry``, produce every record to ``sink``
    as it comes (same producer defaults as the worker, per-record delivery callback, async commit
    every 200 ms); after ``n`` records: flush, commit, print ``done``."""
    c = Consumer(
        {
            "bootstrap.servers": bs,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )
    p = Producer({**RELIABLE_DEFAULTS, "bootstrap.servers": bs})
    acked = [0]

    def on_delivery(err: KafkaError | None, _msg: Any) -> None:
        if err is None:
            acked[0] += 1

    c.subscribe([f"{source}.retry"])
    produced, last_commit = 0, time.monotonic()
    while produced < n:
        for m in c.consume(500, timeout=0.05):
            if m.error() is None:
                while True:
                    try:
                        p.produce(
                            sink, m.value(), m.key(), on_delivery=on_delivery, headers=m.headers()
                        )
                        break
                    except BufferError:
                        p.poll(0.05)
                produced += 1
        p.poll(0)
        if time.monotonic() - last_commit >= 0.2:
            c.commit(asynchronous=True)
            last_commit = time.monotonic()
    p.flush(120)
    c.commit(asynchronous=False)
    print("done" if acked[0] == n else f"acked {acked[0]} of {n}", flush=True)
    c.close()
    return 0


def first_record(
    bs: str, topic: str, partitions: int, after: list[int], proc: subprocess.Popen[Any]
) -> float:
    """perf_counter when the first record past ``after`` (per partition) can be read from
    ``topic``."""
    c = Consumer(
        {
            "bootstrap.servers": bs,
            "group.id": f"first-{uuid.uuid4().hex[:6]}",
            "fetch.wait.max.ms": 5,
        }
    )
    c.assign([TopicPartition(topic, p, off) for p, off in enumerate(after)])
    try:
        while True:
            assert proc.poll() is None, "contender exited before writing anything"
            if any(m.error() is None for m in c.consume(1, timeout=0.1)):
                return time.perf_counter()
    finally:
        c.close()


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system, every thread) a live process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drain_once(
    cl: Cluster, source: str, sink: str, partitions: int, n: int, mode: str
) -> tuple[float, float]:
    """(seconds, CPU seconds) from the first record readable in the target until every ``.retry``
    offset is committed (worker) or the pipe says it flushed and committed: both are child
    processes, observed the same way."""
    target = sink if mode == "pipe" else source
    ends, before = cl.ends(f"{source}.retry", partitions), cl.ends(target, partitions)
    group = f"bench-{mode}-{uuid.uuid4().hex[:6]}"
    if mode == "pipe":
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--pipe-child",
            source,
            sink,
            str(n),
            group,
            "--bootstrap-servers",
            cl.bs,
        ]
        proc: subprocess.Popen[Any] = subprocess.Popen(
            cmd, env=ENV, cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
    else:
        proc = worker(cl.bs, source, group, mode == "transactional")
    try:
        t_first = first_record(cl.bs, target, partitions, before, proc)
        cpu_first = cpu_s(proc.pid)
        if mode == "pipe":
            assert proc.stdout is not None and proc.stdout.readline().strip() == "done", (
                "pipe failed"
            )
        else:
            while cl.committed(group, f"{source}.retry", partitions) != ends:
                assert proc.poll() is None, "worker exited"
                time.sleep(0.02)
        return time.perf_counter() - t_first, cpu_s(proc.pid) - cpu_first
    finally:
        stop(proc)


def drain(cl: Cluster, n: int, partitions: int, rounds: int) -> dict[str, Any]:
    """Rounds of pipe, at-least-once, transactional (interleaved) over the same ``n`` records."""
    source = cl.topic(partitions)
    sink = cl.topic(partitions, companions=False)
    write_s = write_retry(cl.bs, source, [int(time.time() * 1000)] * n, partitions)
    runs: dict[str, list[float]] = {"pipe": [], "at_least_once": [], "transactional": []}
    cpu: dict[str, list[float]] = {mode: [] for mode in runs}
    for r in range(rounds):
        for mode in runs:
            seconds, cpu_seconds = drain_once(cl, source, sink, partitions, n, mode)
            runs[mode].append(n / seconds)
            cpu[mode].append(cpu_seconds / n * 1e6)
            print(
                f"round {r + 1} {mode}: {n / seconds:,.0f} records/s, "
                f"{cpu[mode][-1]:.1f} CPU-us/record",
                file=sys.stderr,
            )
    return {
        "write_records_per_s": round(n / write_s),
        **{k: [round(x) for x in v] for k, v in runs.items()},
        "cpu_us_per_record": {k: [round(x, 1) for x in v] for k, v in cpu.items()},
    }


def drain_summary(
    d: dict[str, Any], n: int, partitions: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The pipe's figures, and per worker mode: median rate, ratio to the pipe of the same round,
    CPU-us per record (all threads of the process; less sensitive to a busy machine)."""
    cpu = d["cpu_us_per_record"]
    pipe = {
        "records": n,
        "partitions": partitions,
        "records_per_s": round(statistics.median(d["pipe"])),
        "runs": d["pipe"],
        "cpu_us_per_record": statistics.median(cpu["pipe"]),
        "cpu_runs": cpu["pipe"],
    }
    rows = []
    for mode in ("at_least_once", "transactional"):
        ratios = [w / p for w, p in zip(d[mode], d["pipe"], strict=True)]
        cpu_ratios = [p / w for w, p in zip(cpu[mode], cpu["pipe"], strict=True)]
        rows.append(
            {
                "records": n,
                "partitions": partitions,
                "transactional": mode == "transactional",
                "records_per_s": round(statistics.median(d[mode])),
                "runs": d[mode],
                "ratio_to_pipe": round(statistics.median(ratios), 3),
                "ratio_min_max": [round(min(ratios), 3), round(max(ratios), 3)],
                "cpu_us_per_record": statistics.median(cpu[mode]),
                "cpu_runs": cpu[mode],
                "cpu_ratio_to_pipe": round(statistics.median(cpu_ratios), 3),
            }
        )
    return pipe, rows


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


# ---- main ---------------------------------------------------------------------------------
def _git_commit() -> str | None:
    """HEAD of the checkout (``$BENCH_GIT_COMMIT`` when run from an exported tree)."""
    if os.environ.get("BENCH_GIT_COMMIT"):
        return os.environ["BENCH_GIT_COMMIT"]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def conditions(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "confluent_kafka": confluent_kafka.__version__,
        "librdkafka": confluent_kafka.libversion()[0],
        "broker": os.environ.get("BENCH_TARGET") or f"Apache Kafka at {args.bootstrap_servers}",
        "replication_factor": replication_factor(),
        "value_bytes": 100,
        "worker": "one process, defaults (linger.ms=5, lz4, acks=all, idempotent, asynchronous "
        "commit every 200 ms; transactional: a transaction committed every 200 ms)",
        "pipe": "raw confluent-kafka Consumer.consume(500) -> Producer.produce of each record with "
        "its headers (same producer defaults, per-record delivery callback, async commit every "
        "200 ms), own process",
        "timing": "pipe and worker alike: from the first record readable in the target topic until "
        "every .retry offset is committed (worker) or the pipe has flushed and committed; process "
        "start-up excluded",
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "git_commit": _git_commit(),
        "quick": args.quick,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--bootstrap-servers", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    )
    ap.add_argument(
        "--quick", action="store_true", help="small sizes, one round (< 60 s): a smoke run"
    )
    for key, value in FULL.items():
        ap.add_argument(
            f"--{key.replace('_', '-')}",
            type=type(value),
            help=f"default {value} ({QUICK[key]} quick)",
        )
    ap.add_argument(
        "--pipe-child", nargs=4, metavar=("SOURCE", "SINK", "N", "GROUP"), help=argparse.SUPPRESS
    )
    ap.add_argument(
        "--sections", default="drain,lateness,crash", help="what to run (default: all three)"
    )
    ap.add_argument(
        "--out", type=Path, default=OUT, help=f"JSON output (default {OUT.relative_to(ROOT)})"
    )
    args = ap.parse_args()
    if args.pipe_child:
        source, sink, n, group = args.pipe_child
        return pipe_child(args.bootstrap_servers, source, sink, int(n), group)
    size = {
        k: getattr(args, k) if getattr(args, k) is not None else (QUICK if args.quick else FULL)[k]
        for k in FULL
    }
    cl = Cluster(args.bootstrap_servers)
    t0 = time.monotonic()
    result: dict[str, Any] = {"conditions": conditions(args), "sizes": size}
    sections = set(args.sections.split(","))
    write_rate = 30_000.0
    if "drain" in sections:
        d = drain(cl, size["records"], size["partitions"], size["rounds"])
        result["raw_pipe"], result["drain"] = drain_summary(d, size["records"], size["partitions"])
        write_rate = d["write_records_per_s"]
    if "lateness" in sections:
        result["lateness"] = lateness(
            cl, size["lateness_records"], size["lateness_spread_s"], size["partitions"], write_rate
        )
    if "crash" in sections:
        log = args.out.parent / "retry_worker_crash.log"
        log.unlink(missing_ok=True)
        result["crash"] = [
            crash(cl, size["crash_records"], size["partitions"], txn, log) for txn in (False, True)
        ]
        log.unlink(missing_ok=True)
    result["conditions"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["elapsed_s"] = round(time.monotonic() - t0, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
