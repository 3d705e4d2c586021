"""Fault-suite bookkeeping: send a known set of ids, then find every one of them again.

Each record's value is ``{"seq": n, ...}``; ``seq`` is the identity we account for. After a
scenario the topic, ``<topic>.retry``, ``<topic>.dlq`` and the producer's spool are read in
full and every sent ``seq`` is put in exactly one bucket: delivered once, delivered more than
once, still waiting in ``.retry``, in the DLQ, in the spool — or LOST.
"""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

MESSAGE_ID = "kafka_reliable.message.id"
RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results" / "faults.json"


@dataclass
class Tally:
    """One row of the fault table."""

    scenario: str
    sent: int = 0
    once: int = 0
    dup: int = 0
    retry: int = 0
    dlq: int = 0
    spool: int = 0
    lost: int = 0
    refused: int = 0  # send calls that raised (the caller was told; not "sent")
    unknown: int = 0  # records whose seq was never sent (must be 0)
    id_mismatch: int = 0  # copies of one seq with different message ids, or != 1 id header
    seconds: float = 0.0
    notes: str = ""
    lost_sample: list[int] = field(default_factory=list)
    #: what the producer routed on the way (its get_stats counters): retried, spooled, drained…
    routed: dict[str, int] = field(default_factory=dict)

    def row(self) -> str:
        return (f"{self.scenario:34} {self.sent:>8} {self.once:>8} {self.dup:>6} {self.retry:>6} {self.dlq:>6} "
                f"{self.spool:>6} {self.lost:>6} {self.refused:>7}")


HEADER = (f"{'scenario':34} {'sent':>8} {'once':>8} {'dup':>6} {'retry':>6} {'dlq':>6} "
          f"{'spool':>6} {'LOST':>6} {'refused':>7}")


# ---- reading back ---------------------------------------------------------------------------

def _seq(value: bytes | None) -> int | None:
    try:
        return int(json.loads(value or b"null")["seq"])
    except (ValueError, TypeError, KeyError):
        return None


def read_topic(conf: dict[str, Any], topic: str, timeout_s: float = 120.0) -> list[tuple[int | None, list[bytes]]]:
    """Every record of ``topic`` up to its current end: ``(seq, [message id header values])``."""
    c = Consumer({**conf, "group.id": f"faults-reader-{os.getpid()}-{time.monotonic_ns()}",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "isolation.level": "read_committed", "log_level": 0})
    try:
        md = c.list_topics(topic, timeout=30)
        if topic not in md.topics or md.topics[topic].error is not None:
            return []
        ends: dict[int, int] = {}
        starts = []
        for p in md.topics[topic].partitions:
            lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
            if hi > lo:
                ends[p] = hi
                starts.append(TopicPartition(topic, p, lo))
        c.assign(starts)
        out: list[tuple[int | None, list[bytes]]] = []
        deadline = time.monotonic() + timeout_s
        while ends and time.monotonic() < deadline:
            for m in c.consume(num_messages=5000, timeout=0.5):
                if m.error() is not None:
                    if m.error().code() != KafkaError._PARTITION_EOF:
                        raise RuntimeError(f"reading {topic}: {m.error()}")
                    continue
                ids = [v for k, v in (m.headers() or []) if k == MESSAGE_ID]
                out.append((_seq(m.value()), ids))
                if m.offset() + 1 >= ends.get(m.partition(), 0):
                    ends.pop(m.partition(), None)
            for p in list(ends):  # transaction markers: the position may pass the last record
                pos = c.position([TopicPartition(topic, p)])[0].offset
                if pos >= ends[p]:
                    ends.pop(p)
        if ends:
            raise TimeoutError(f"reading {topic}: partitions {sorted(ends)} not read to the end in {timeout_s} s")
        return out
    finally:
        c.close()


def read_spool(path: Path | None) -> list[int | None]:
    if path is None or not Path(path).exists():
        return []
    db = sqlite3.connect(str(path))
    try:
        return [_seq(v) for (v,) in db.execute("SELECT value FROM spool")]
    except sqlite3.Error:
        return []
    finally:
        db.close()


def tally(scenario: str, conf: dict[str, Any], topic: str, sent: Iterable[int], *,
          spool_path: Path | None = None, refused: int = 0) -> Tally:
    """Put every sent seq in one bucket (see the module docstring)."""
    sent_set = set(sent)
    t = Tally(scenario=scenario, sent=len(sent_set), refused=refused)
    main = read_topic(conf, topic)
    copies: Counter[int] = Counter()
    ids: dict[int, set[bytes]] = defaultdict(set)
    for seq, mids in main:
        if seq is None or seq not in sent_set:
            t.unknown += 1
            continue
        copies[seq] += 1
        if len(mids) != 1:
            t.id_mismatch += 1
        ids[seq].update(mids)
    t.id_mismatch += sum(1 for s in ids.values() if len(s) > 1)
    retry = {s for s, _ in read_topic(conf, topic + ".retry")}
    dlq = {s for s, _ in read_topic(conf, topic + ".dlq")}
    spool = set(read_spool(spool_path))
    for seq in sent_set:
        n = copies.get(seq, 0)
        if n == 1:
            t.once += 1
        elif n > 1:
            t.dup += 1
        elif seq in dlq:
            t.dlq += 1
        elif seq in spool:
            t.spool += 1
        elif seq in retry:
            t.retry += 1
        else:
            t.lost += 1
            if len(t.lost_sample) < 10:
                t.lost_sample.append(seq)
    return t


def delivered_count(conf: dict[str, Any], topic: str) -> int:
    """Records in ``topic`` from watermarks (cheap progress probe)."""
    with Probe(conf, topic) as probe:
        return probe.count()


class Probe:
    """Watermark counts of one topic on one open consumer: after the first, a count costs a few
    round trips (no new connections), so a fault can land close to the progress it waits for."""

    def __init__(self, conf: dict[str, Any], topic: str) -> None:
        self.topic = topic
        self.consumer = Consumer({**conf, "group.id": "faults-wm", "log_level": 0})
        md = self.consumer.list_topics(topic, timeout=10)
        self.parts = [TopicPartition(topic, p) for p in md.topics[topic].partitions]

    def count(self) -> int:
        total = 0
        for tp in self.parts:
            lo, hi = self.consumer.get_watermark_offsets(tp, timeout=10)
            total += hi - lo
        return total

    def __enter__(self) -> Probe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.consumer.close()


# ---- setup and driving ----------------------------------------------------------------------

def create_topics(conf: dict[str, Any], topic: str, partitions: int = 3, rf: int = 3, min_isr: int = 2) -> None:
    """The topic and its ``.retry``/``.dlq`` up front, RF 3 (creation needs all brokers up)."""
    admin = AdminClient(conf)
    names = [topic, topic + ".retry", topic + ".dlq"]
    cfg = {"min.insync.replicas": str(min_isr)}
    fs = admin.create_topics([NewTopic(n, num_partitions=partitions, replication_factor=rf, config=cfg) for n in names])
    for f in fs.values():
        f.result(timeout=60)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        md = admin.list_topics(timeout=10)
        if all(n in md.topics and md.topics[n].partitions and all(p.leader >= 0 for p in md.topics[n].partitions.values())
               for n in names):
            return
        time.sleep(0.2)
    raise TimeoutError(f"topics {names} have no leaders")


def leader_of(conf: dict[str, Any], topic: str, partition: int = 0) -> int:
    md = AdminClient(conf).list_topics(topic, timeout=10)
    return int(md.topics[topic].partitions[partition].leader)


def paced_send(send: Callable[[int], None], n: int, duration_s: float,
               events: dict[int, Callable[[], None]] | None = None) -> tuple[list[int], int, list[threading.Thread]]:
    """Call ``send(seq)`` for seq 0..n-1 spread over ``duration_s``; start ``events[seq]`` in a thread.

    Returns (seqs whose send returned, refused count, fault threads started).
    """
    sent: list[int] = []
    refused = 0
    threads: list[threading.Thread] = []
    start = time.monotonic()
    for seq in range(n):
        if events and seq in events:
            th = threading.Thread(target=events[seq], daemon=True)
            th.start()
            threads.append(th)
        if seq % 500 == 0:
            ahead = start + duration_s * seq / n - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        try:
            send(seq)
        except Exception:  # noqa: BLE001 - a refused send is counted, the caller was told
            refused += 1
            continue
        sent.append(seq)
    return sent, refused, threads


def value(seq: int) -> dict[str, Any]:
    return {"seq": seq, "pad": "x" * 64}


class Worker:
    """The retry worker (``python -m kafka_reliable.worker``) as a child process."""

    def __init__(self, bootstrap: str, topic: str, group: str, log_dir: Path, *, transactional: bool = False,
                 extra: list[str] | None = None, env: dict[str, str] | None = None) -> None:
        self.env = {**os.environ, **(env or {})}
        self.cmd = [sys.executable, "-m", "kafka_reliable.worker", "--bootstrap-servers", bootstrap,
                    "--topics", topic, "--group", group, *(["--transactional"] if transactional else []), *(extra or [])]
        self.log = log_dir / f"worker-{group}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         cwd=str(Path(__file__).resolve().parents[2]), env=self.env)

    def kill(self, sig: int = 9) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except FileNotFoundError:
            return ""


def wait_for(cond: Callable[[], bool], timeout_s: float, what: str, step_s: float = 0.5) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(step_s)
    raise TimeoutError(f"{what}: not within {timeout_s:.0f} s")


# ---- results --------------------------------------------------------------------------------

def environment() -> dict[str, Any]:
    import confluent_kafka

    from kafka_reliable.dev.broker import KAFKA_VERSION

    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {_mem_gib()} GiB RAM, {platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "confluent_kafka": confluent_kafka.__version__,
        "librdkafka": confluent_kafka.libversion()[0],
        "kafka": KAFKA_VERSION,
        "cluster": "1 controller + 3 brokers (KRaft) on loopback, RF 3, min.insync.replicas 2, acks=all, idempotent",
    }


def _mem_gib() -> int:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)
    except (ValueError, OSError):
        return 0


def record(t: Tally) -> None:
    """Merge one row into bench/results/faults.json (rows keyed by scenario)."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    try:
        data = json.loads(RESULTS.read_text())
    except (OSError, ValueError):
        data = {"scenarios": {}}
    data["environment"] = environment()
    row = asdict(t)
    row["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    data.setdefault("scenarios", {})[t.scenario] = row
    RESULTS.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
