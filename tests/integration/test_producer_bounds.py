"""Time limits the producer keeps when the cluster is gone: stats answer at once and never
raise, close(timeout) returns within its timeout with everything spooled, and
``spool drain --timeout-s`` gives up on time."""

from __future__ import annotations

import time
from pathlib import Path

from kafka_reliable import ReliableKafkaProducer
from kafka_reliable.record import OutgoingRecord
from kafka_reliable.spool import Spool
from tests.helpers.cli import run_cli

DEAD = "127.0.0.1:1"
#: Slack over a stated time limit (process start, a loaded 2-core machine).
SLACK_S = 3.0


def test_stats_during_an_outage_answer_and_never_raise(tmp_path: Path) -> None:
    with ReliableKafkaProducer(bootstrap_servers=DEAD, spool_path=tmp_path / "s.db") as p:
        p.send_message("orders", {"i": 1})  # a topic whose DLQ size cannot be read
        t0 = time.monotonic()
        stats = p.get_stats()
        took = time.monotonic() - t0
        assert took < 1.0 + SLACK_S
        assert stats["dlq_stats"]["total_messages"] is None and "unknown" in stats["dlq_stats"]
        assert stats["messages_sent"] == 0 and stats["messages_pending"] == 1
        health = p.get_health_status()
        assert health["status"] in {"healthy", "degraded", "unhealthy"}
        p.close(timeout=1)


def test_close_keeps_its_timeout_and_spools_everything(tmp_path: Path) -> None:
    p = ReliableKafkaProducer(bootstrap_servers=DEAD, spool_path=tmp_path / "s.db")
    mids = [p.send_message("orders", {"i": i}) for i in range(100)]
    t0 = time.monotonic()
    p.close(timeout=5)
    assert time.monotonic() - t0 < 5 + SLACK_S
    assert {p.get_message_status(m) for m in mids} == {"spooled"}
    s = Spool(tmp_path / "s.db")
    assert s.count() == 100
    s.close()


def test_spool_drain_cli_gives_up_on_time(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    s = Spool(path)
    s.add([OutgoingRecord(f"m{i}", "orders", None, b"v") for i in range(10)], "cluster_unreachable")
    s.close()
    t0 = time.monotonic()
    r = run_cli("spool", "drain", "--spool-path", str(path), "--bootstrap-servers", DEAD, "--timeout-s", "3")
    assert time.monotonic() - t0 < 3 + SLACK_S + 2  # + interpreter start
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "drained 0 of 10 records; 10 left" in r.stdout
