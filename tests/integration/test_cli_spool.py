"""``kafka-reliable spool status|drain`` on a real spool file and the real broker."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from kafka_reliable import headers as H
from kafka_reliable.record import OutgoingRecord
from kafka_reliable.spool import Spool
from tests.helpers.cli import run_cli
from tests.helpers.kafka import headers_dict, read_to_end


@pytest.mark.slow
def test_spool_status_and_drain(kafka_bootstrap: str, new_topic, tmp_path: Path) -> None:
    # Given a spool left behind with 50 records for one topic
    topic = new_topic(partitions=2)
    path = tmp_path / "spool.sqlite3"
    spool = Spool(path)
    spool.add((OutgoingRecord(f"m{i}", topic, f"k{i}".encode(), f"v{i}".encode(), [(H.MESSAGE_ID, f"m{i}".encode())])
               for i in range(50)), "cluster_unreachable")
    spool.close()
    # When the operator looks
    status = run_cli("spool", "status", "--spool-path", str(path), "--json", timeout_s=120)
    # Then
    assert status.returncode == 0, status.stderr
    info = json.loads(status.stdout)
    assert info["records"] == 50 and info["by_topic"] == {topic: 50} and info["by_reason"] == {"cluster_unreachable": 50}
    # When the operator drains it
    drain = run_cli("spool", "drain", "--spool-path", str(path), "--bootstrap-servers", kafka_bootstrap, timeout_s=120)
    # Then every record is on its topic once and the spool is empty
    assert drain.returncode == 0, drain.stdout + drain.stderr
    assert "drained 50 of 50" in drain.stdout
    got = read_to_end(kafka_bootstrap, topic)  # to the end: duplicates would show
    assert sorted(headers_dict(m)[H.MESSAGE_ID].decode() for m in got) == sorted(f"m{i}" for i in range(50))
    assert len(got) == 50
    assert json.loads(run_cli("spool", "status", "--spool-path", str(path), "--json", timeout_s=120).stdout)["records"] == 0


def test_reading_verbs_never_create_a_spool(tmp_path: Path) -> None:
    missing = tmp_path / "typo.sqlite3"
    for verb in (["status"], ["export"], ["purge", "--quarantined", "--yes"]):
        r = run_cli("spool", *verb, "--spool-path", str(missing), timeout_s=120)
        assert r.returncode == 1, (verb, r.stdout, r.stderr)
        assert f"no spool at {missing}" in r.stderr and "Traceback" not in r.stderr
    assert not missing.exists()


@pytest.mark.slow
def test_quarantined_records_shown_exported_and_purged(kafka_bootstrap: str, new_topic, tmp_path: Path) -> None:
    # Given a spool with one record too big for every limit between two good ones
    topic = new_topic()
    path = tmp_path / "spool.sqlite3"
    spool = Spool(path)
    huge = os.urandom(3 * 1024 * 1024)  # incompressible: too big for the topic and its DLQ
    spool.add([OutgoingRecord("a", topic, None, b"1", [(H.MESSAGE_ID, b"a")]),
               OutgoingRecord("huge", topic, b"k", huge, [(H.MESSAGE_ID, b"huge")]),
               OutgoingRecord("b", topic, None, b"2", [(H.MESSAGE_ID, b"b")])], "cluster_unreachable")
    spool.close()
    # When the operator drains it: no traceback, the good ones delivered, the huge one quarantined
    drain = run_cli("spool", "drain", "--spool-path", str(path), "--bootstrap-servers", kafka_bootstrap,
                    "--timeout-s", "30", timeout_s=120)
    assert drain.returncode == 0, drain.stdout + drain.stderr
    assert "Traceback" not in drain.stderr
    assert "drained 2 of 3" in drain.stdout and "1 quarantined" in drain.stdout
    got = read_to_end(kafka_bootstrap, topic)
    assert sorted(headers_dict(m)[H.MESSAGE_ID].decode() for m in got) == ["a", "b"]
    # Then status shows it with its reason
    info = json.loads(run_cli("spool", "status", "--spool-path", str(path), "--json", timeout_s=120).stdout)
    assert info["records"] == 1 and info["quarantined"] == 1
    assert any("MSG_SIZE_TOO_LARGE" in r for r in info["quarantine_reasons"])
    # and export gives its bytes back exactly
    out = tmp_path / "q.jsonl"
    assert run_cli("spool", "export", "--quarantined", "--spool-path", str(path), "-o", str(out), timeout_s=120).returncode == 0
    [row] = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["message_id"] == "huge" and base64.b64decode(row["value_b64"]) == huge
    # and purge removes it
    purge = run_cli("spool", "purge", "--quarantined", "--yes", "--spool-path", str(path), timeout_s=120)
    assert purge.returncode == 0 and "purged 1" in purge.stdout
    assert json.loads(run_cli("spool", "status", "--spool-path", str(path), "--json", timeout_s=120).stdout)["records"] == 0
