"""The durable send path on the real broker: the write-ahead log's ownership rules, the spool's
defects found by probing as a user would (each failed on the main before the log), and the
errors a user gets for paths and settings that cannot work."""

from __future__ import annotations

import base64
import os
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from kafka_reliable import ReliableKafkaProducer
from kafka_reliable.errors import (
    ConfigurationError,
    ProducerClosedError,
    SpoolError,
    SpoolFullError,
)
from kafka_reliable.headers import MESSAGE_ID
from kafka_reliable.record import OutgoingRecord
from kafka_reliable.spool import Spool
from tests.helpers.kafka import read_to_end
from tests.helpers.waits import wait_until

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _ids(bootstrap: str, topic: str) -> Counter[str]:
    return Counter(dict(m.headers() or []).get(MESSAGE_ID, b"").decode() for m in read_to_end(bootstrap, topic))


def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kafka_reliable", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_a_second_producer_never_resends_a_live_producers_records(
        kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path) -> None:
    # Before the log: 200 sends with linger 4 s, a second producer 2.5 s later -> 600 records.
    topic = new_topic(partitions=3)
    spool = tmp_path / "spool.sqlite3"
    live = ReliableKafkaProducer(bootstrap_servers=kafka_bootstrap, spool_path=spool, enable_metrics=False,
                                 producer_config={"linger_ms": 4000}, durability="spool")
    mids = [live.send_message(topic, {"n": i}, key=str(i)) for i in range(200)]
    assert live.get_stats()["write_ahead_log"]["in_flight"] == 200
    second = ReliableKafkaProducer(bootstrap_servers=kafka_bootstrap, spool_path=spool, enable_metrics=False)
    assert second.spool.count() == 0  # nothing of the live producer's was taken
    second.close(10)
    live.flush(30)
    live.close(10)
    ids = _ids(kafka_bootstrap, topic)
    assert sorted(ids) == sorted(mids) and set(ids.values()) == {1}


def test_spool_drain_beside_a_live_producer_sends_nothing_twice(
        kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path) -> None:
    # Before: `spool drain` beside a live durable producer -> 300 records for 100.
    topic = new_topic()
    spool = tmp_path / "spool.sqlite3"
    live = ReliableKafkaProducer(bootstrap_servers=kafka_bootstrap, spool_path=spool, enable_metrics=False,
                                 producer_config={"linger_ms": 3000}, durability="spool")
    for i in range(100):
        live.send_message(topic, {"n": i})
    out = _cli("spool", "drain", "--spool-path", str(spool), "--bootstrap-servers", kafka_bootstrap,
               "--timeout-s", "5")
    assert out.returncode == 0, out.stderr
    assert "drained 0 of 0" in out.stdout
    live.close(30)
    assert set(_ids(kafka_bootstrap, topic).values()) == {1} and sum(_ids(kafka_bootstrap, topic).values()) == 100


def test_two_drains_at_once_send_each_row_once(
        kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path) -> None:
    # Before: two `spool drain` at once on 300 rows -> 600 records.
    topic = new_topic(partitions=2)
    spool_path = tmp_path / "spool.sqlite3"
    spool = Spool(spool_path)
    spool.add([OutgoingRecord(f"row-{i}", topic, None, b"v%d" % i, [(MESSAGE_ID, f"row-{i}".encode())], None)
               for i in range(300)], "cluster_unreachable")
    spool.close()
    args = [sys.executable, "-m", "kafka_reliable", "spool", "drain", "--spool-path", str(spool_path),
            "--bootstrap-servers", kafka_bootstrap, "--timeout-s", "30"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
             for _ in range(2)]
    outs = [p.communicate(timeout=90) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    ids = _ids(kafka_bootstrap, topic)
    assert len(ids) == 300 and set(ids.values()) == {1}, Counter(ids.values())


def test_export_onto_the_spool_itself_is_refused_and_the_spool_kept(tmp_path: Path) -> None:
    # Before: `spool export --spool-path s.db -o s.db` truncated the spool to 0 bytes.
    path = tmp_path / "s.db"
    spool = Spool(path)
    spool.add([OutgoingRecord("m1", "t", None, b"v", [], None)], "cluster_unreachable")
    spool.close()
    out = _cli("spool", "export", "--spool-path", str(path), "-o", str(path))
    assert out.returncode == 2 and "is the spool itself" in out.stderr
    assert Spool(path, create=False).count() == 1


def test_a_corrupt_row_is_quarantined_and_the_rest_are_sent(
        kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path) -> None:
    # Before: one row with headers b"\xff\xff\xff" blocked the spool (a traceback every second).
    topic = new_topic()
    path = tmp_path / "s.db"
    spool = Spool(path)
    spool.add([OutgoingRecord(f"m{i}", topic, None, b"v%d" % i, [], None) for i in range(3)], "cluster_unreachable")
    spool.close()
    db = sqlite3.connect(path)
    db.execute("UPDATE spool SET headers = ? WHERE message_id = 'm1'", (b"\xff\xff\xff",))
    db.commit()
    db.close()
    with ReliableKafkaProducer(bootstrap_servers=kafka_bootstrap, spool_path=path, enable_metrics=False) as p:
        assert p.drain_spool(timeout_s=20) == 2
        summary = p.spool.summary()
    assert summary["quarantined"] == 1 and "undecodable" in str(summary["quarantine_reasons"])
    assert sorted(m.value() for m in read_to_end(kafka_bootstrap, topic)) == [b"v0", b"v2"]
    out = _cli("spool", "export", "--spool-path", str(path), "--quarantined")
    assert out.returncode == 0 and '"message_id": "m1"' in out.stdout


def test_a_record_no_topic_can_take_is_quarantined_not_resent_forever(
        kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path) -> None:
    # Before: an oversized record to a 249-character topic (its .retry name is illegal) stayed
    # spooled and was resent about once a second forever.
    topic = new_topic(config={"max.message.bytes": "2000"}, prefix="x" * 238)
    assert len(topic) == 249
    with ReliableKafkaProducer(bootstrap_servers=kafka_bootstrap, spool_path=tmp_path / "s.db",
                               enable_metrics=False) as p:
        mid = p.send_message(topic, {"pad": base64.b64encode(os.urandom(6000)).decode()})  # incompressible
        wait_until(lambda: p.get_message_status(mid) == "spooled", 30, lambda: f"status {p.get_message_status(mid)}")
        ok = p.send_message(topic, {"small": 1})  # nothing else is held up
        wait_until(lambda: p.get_message_status(ok) == "sent", 30, lambda: f"status {p.get_message_status(ok)}")
        time.sleep(1.5)  # a drain pass would have picked a spooled row up by now
        summary = p.spool.summary()
    assert summary["quarantined"] == 1 and summary["by_reason"] == {}
    assert "249" in str(summary["quarantine_reasons"])


@pytest.mark.parametrize("make, says", [
    (lambda d: d / "app.db", "not a kafka-reliable spool"),
    (lambda d: d / "empty.db", "empty file"),
    (lambda d: d, "is a directory"),
    (lambda d: ":memory:", "not a file"),
    (lambda d: "", "empty"),
])
def test_paths_that_are_not_spools_are_refused_in_one_line(tmp_path: Path, make: Callable[[Path], object],
                                                           says: str) -> None:
    app = sqlite3.connect(tmp_path / "app.db")
    app.execute("CREATE TABLE orders (id INTEGER)")
    app.commit()
    app.close()
    (tmp_path / "empty.db").touch()
    with pytest.raises(SpoolError, match=says) as err:
        ReliableKafkaProducer(bootstrap_servers="127.0.0.1:1", spool_path=make(tmp_path), enable_metrics=False)  # type: ignore[arg-type]
    assert "\n" not in str(err.value)
    tables = {r[0] for r in sqlite3.connect(tmp_path / "app.db").execute("SELECT name FROM sqlite_master")}
    assert tables == {"orders"}
    out = _cli("spool", "status", "--spool-path", str(tmp_path / "app.db"))
    assert out.returncode != 0 and "not a kafka-reliable spool" in out.stderr


def _threads() -> int:
    """librdkafka's threads (named rdk:…) and ours (kafka-reliable-…) in this process."""
    import gc

    gc.collect()
    names = []
    for t in os.listdir("/proc/self/task"):
        try:
            names.append(Path(f"/proc/self/task/{t}/comm").read_text())
        except OSError:
            continue
    return sum(1 for n in names if n.startswith(("rdk:", "kafka-reliable")))


def test_an_unwritable_spool_folder_fails_at_construction_and_leaks_nothing(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    before = _threads()
    for bad in (tmp_path / "file" / "spool.db", Path("/proc/kafka-reliable/spool.db")):
        with pytest.raises(SpoolError, match='durability="memory"') as err:
            ReliableKafkaProducer(bootstrap_servers="127.0.0.1:1", spool_path=bad, enable_metrics=False,
                                  durability="spool")
        assert str(bad) in str(err.value) and "\n" not in str(err.value)
    time.sleep(0.2)
    assert _threads() <= before  # no librdkafka client or thread was left behind


def test_after_close_stats_are_the_last_ones_and_actions_say_closed(kafka_bootstrap: str, tmp_path: Path) -> None:
    # Before: get_stats(), spool.summary() and drain_spool() after close() raised sqlite3 errors.
    p = ReliableKafkaProducer(bootstrap_servers=kafka_bootstrap, spool_path=tmp_path / "s.db", enable_metrics=False,
                              durability="spool")
    p.close(5)
    assert p.get_stats()["durability"] == "spool"
    with pytest.raises(ProducerClosedError):
        p.drain_spool()
    with pytest.raises(SpoolError, match="closed"):
        p.spool.summary()


@pytest.mark.parametrize("conf", [{"acks": 0}, {"acks": "1"}, {"enable.idempotence": False}])
def test_producer_settings_that_break_the_guarantee_are_refused(tmp_path: Path, conf: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError, match="unsafe_producer_config"):
        ReliableKafkaProducer(bootstrap_servers="127.0.0.1:1", producer_config=conf, spool_path=tmp_path / "s.db",
                              enable_metrics=False)
    p = ReliableKafkaProducer(bootstrap_servers="127.0.0.1:1", producer_config=conf, spool_path=tmp_path / "s.db",
                              enable_metrics=False, unsafe_producer_config=True)
    p.close(0.5)


def test_a_full_log_refuses_the_send_keeps_what_it_accepted_and_gives_the_claim_back(tmp_path: Path) -> None:
    # A cluster that never answers: nothing settles, the log fills up to spool_max_bytes.
    p = ReliableKafkaProducer(bootstrap_servers="127.0.0.1:1", spool_path=tmp_path / "s.db", enable_metrics=False,
                              spool_max_bytes=1 << 20, enable_deduplication=True, durability="spool")
    accepted = []
    with pytest.raises(SpoolFullError, match="spool_max_bytes"):
        for i in range(100_000):
            accepted.append(p.send_message("t-full", {"n": i, "pad": "p" * 200}, key=str(i)))
    refused = len(accepted)
    assert refused > 1000
    # the refused record's dedup claim was given back: sending it again is not a "duplicate"
    with pytest.raises(SpoolFullError):
        p.send_message("t-full", {"n": refused, "pad": "p" * 200}, key=str(refused))
    assert p.get_stats()["duplicates"] == 0
    assert p.get_stats()["write_ahead_log"]["in_flight"] == refused
    p._producer.purge(in_queue=True)  # noqa: SLF001 - end fast: the cluster never answers
    p.close(1)
    from kafka_reliable.wal import inspect, wal_root
    kept = sum(len(o.records) for o in inspect(wal_root(tmp_path / "s.db")))
    spooled = Spool(tmp_path / "s.db").count()
    assert kept + spooled == refused  # every accepted record is on disk: spooled, or still in the log
