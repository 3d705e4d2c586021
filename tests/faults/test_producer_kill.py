"""Producer processes SIGKILLed mid-run (an OOM kill, an eviction past the grace period).

Default settings (the write-ahead log, ``durability="spool"``): every record is in the
producer's log before ``send_message`` returns, and the next producer on the same spool
resends what the dead one left, so LOST must be 0 and every duplicate carries one id.
Four producers on one spool (gunicorn/uvicorn workers), one killed: a new producer takes over
the dead one's log while the others keep running; their records are never resent.
``durability="memory"`` (the opt-out): what librdkafka held is gone; measured, not asserted.
"""

from __future__ import annotations

import inspect
import mmap
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from kafka_reliable import ReliableKafkaProducer
from tests.faults.harness import Tally, create_topics, tally, wait_for
from tests.helpers.kafka import unique_name

pytestmark = pytest.mark.faults

CHILD = Path(__file__).with_name("producer_child.py")
ROOT = Path(__file__).resolve().parents[2]
#: How long a child sends flat out before the kill (full runs: KAFKA_RELIABLE_FAULTS=all).
RUN_S = 3.0 if os.environ.get("KAFKA_RELIABLE_FAULTS") == "all" else 1.5
#: The children's durability argument: the library's default when it is the write-ahead log.
DEFAULT_DURABILITY = inspect.signature(ReliableKafkaProducer.__init__).parameters["durability"].default
DURABLE = "default" if DEFAULT_DURABILITY == "spool" else "spool"


class Child:
    """One producer process sending seq 0.. to its own topic."""

    def __init__(self, cluster: Any, tmp: Path, spool: Path, durability: str, name: str) -> None:
        conf = {"bootstrap.servers": cluster.bootstrap_servers}
        self.topic = unique_name(f"f-pk-{name}")
        create_topics(conf, self.topic)
        self.counter = tmp / f"{name}.counter"
        self.counter.write_bytes(b"\0" * 8)
        self.log = tmp / f"{name}.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, str(CHILD), cluster.bootstrap_servers, self.topic, str(spool),
                 str(self.counter), durability], stdout=out, stderr=subprocess.STDOUT, cwd=str(ROOT))

    def sent(self) -> int:
        with open(self.counter, "r+b") as f:
            return int(struct.unpack_from("<q", mmap.mmap(f.fileno(), 8), 0)[0])

    def wait_sending(self) -> None:
        wait_for(lambda: self.sent() > 1000 or self.proc.poll() is not None, 60, "producer child sending", 0.05)
        assert self.proc.poll() is None, self.log.read_text()[-3000:]

    def stop(self, sig: int) -> int:
        self.proc.send_signal(sig)
        self.proc.wait(60)
        return self.sent()


def _resend(cluster: Any, spool: Path) -> dict[str, Any]:
    """A new producer with default settings on the spool: it takes over dead owners' logs."""
    p = ReliableKafkaProducer(bootstrap_servers=cluster.bootstrap_servers, spool_path=spool, enable_metrics=False)
    try:
        wait_for(lambda: p.spool.count() == 0, 120, "the new producer resending the dead one's records", 0.2)
        p.flush(60)
        return p.get_stats()
    finally:
        p.close(60)


def _tally(name: str, cluster: Any, child: Child, sent: int, spool: Path, started: float, notes: str) -> Tally:
    conf = {"bootstrap.servers": cluster.bootstrap_servers}
    t = tally(name, conf, child.topic, range(sent), spool_path=spool)
    if t.unknown:
        # The record whose send_message was running at the kill (seq == sent) may already be
        # in the log (resent) or delivered although its call never returned: it counts as sent.
        t = tally(name, conf, child.topic, range(sent + 1), spool_path=spool)
    t.seconds = round(time.monotonic() - started, 1)
    t.notes = notes
    print("\n" + t.row())
    return t


def test_producer_sigkilled_default_settings(healthy: Any, tmp_path: Path, report: list[Tally]) -> None:
    started = time.monotonic()
    spool = tmp_path / "spool.sqlite3"
    child = Child(healthy, tmp_path, spool, DURABLE, "durable")
    child.wait_sending()
    time.sleep(RUN_S)  # the fault's timing, not a wait for a condition
    sent = child.stop(signal.SIGKILL)
    _resend(healthy, spool)
    t = _tally("producer_sigkill_durable", healthy, child, sent, spool, started,
               f"durability='spool' ({'the default' if DURABLE == 'default' else 'opted in'}); SIGKILLed "
               f"{RUN_S} s into a flat-out run; a new producer on the spool resends")
    report.append(t)
    assert t.lost == 0, f"default settings LOST {t.lost} records (e.g. {t.lost_sample}): {t}"
    assert t.unknown == 0 and t.id_mismatch == 0, t


def test_four_producers_one_spool_one_killed(healthy: Any, tmp_path: Path, report: list[Tally]) -> None:
    started = time.monotonic()
    spool = tmp_path / "spool.sqlite3"
    children = [Child(healthy, tmp_path, spool, DURABLE, f"w{i}") for i in range(4)]
    for c in children:
        c.wait_sending()
    time.sleep(RUN_S)
    killed = children[0].stop(signal.SIGKILL)
    # A replacement worker starts while the other three still send: it must take over the dead
    # one's log only.
    _resend(healthy, spool)
    time.sleep(0.5)
    survivors = [c.stop(signal.SIGTERM) for c in children[1:]]
    rows = [_tally("4_producers_one_killed", healthy, children[0], killed, spool, started,
                   "worker SIGKILLed; a new worker takes over its log while 3 others send")]
    rows += [_tally("4_producers_survivor", healthy, c, n, spool, started, "graceful SIGTERM + close")
             for c, n in zip(children[1:], survivors, strict=True)]
    report.extend(rows[:2])
    for t in rows:
        assert t.lost == 0 and t.unknown == 0 and t.id_mismatch == 0, t
    for t in rows[1:]:
        assert t.dup == 0, f"a live producer's records were sent twice: {t}"


@pytest.mark.full_only
def test_producer_sigkilled_memory_mode(healthy: Any, tmp_path: Path, report: list[Tally]) -> None:
    started = time.monotonic()
    spool = tmp_path / "spool.sqlite3"
    child = Child(healthy, tmp_path, spool, "memory", "memory")
    child.wait_sending()
    time.sleep(RUN_S)
    sent = child.stop(signal.SIGKILL)
    t = _tally("producer_sigkill_memory_mode", healthy, child, sent, spool, started,
               "durability='memory' (opt-out): LOST = librdkafka's in-memory queue (not asserted)")
    report.append(t)
    # The opt-out may lose what was in memory; it must never invent or mislabel records.
    assert t.unknown == 0 and t.id_mismatch == 0 and t.dup == 0, t
