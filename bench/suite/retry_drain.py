"""The retry-worker bench's drain part: one worker process against a raw confluent-kafka
consume→produce pipe over the same due records (run by ``scripts/bench_retry_worker.py``)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import (
    Consumer,
    ConsumerGroupState,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

from bench.suite.common import ROOT, replication_factor, topic_config
from kafka_reliable.config import RELIABLE_DEFAULTS
from kafka_reliable.headers import Failure, failure_headers
from kafka_reliable.topics import CompanionTopics

#: The script whose ``--pipe-child`` runs the raw pipe in a process of its own.
SCRIPT = ROOT / "scripts" / "bench_retry_worker.py"
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "KAFKA_RELIABLE_LOG_LEVEL": "WARNING"}


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
                    headers=failure_headers(None, f, message_id=f"m{i}"),  # type: ignore[arg-type]
                )
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
    try:
        c.commit(asynchronous=False)
    except KafkaException as exc:  # everything was already committed by an async commit
        if exc.args[0].code() != KafkaError._NO_OFFSET:
            raise
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
            str(SCRIPT),
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
        cpu_ratios = [p / w for w, p in zip(cpu[mode], cpu["pipe"], strict=True) if w > 0]
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
                "cpu_ratio_to_pipe": round(statistics.median(cpu_ratios), 3)
                if cpu_ratios
                else None,
            }
        )
    return pipe, rows
