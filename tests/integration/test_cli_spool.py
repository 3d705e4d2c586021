"""``kafka-reliable spool status|drain`` on a real spool file and the real broker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from kafka_reliable import headers as H
from kafka_reliable.record import OutgoingRecord
from kafka_reliable.spool import Spool
from tests.kafka_helpers import consume_all, headers_dict


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kafka_reliable", *args], capture_output=True, text=True, timeout=120)


def test_spool_status_and_drain(kafka_bootstrap: str, new_topic, tmp_path: Path) -> None:
    # Given a spool left behind with 50 records for one topic
    topic = new_topic(partitions=2)
    path = tmp_path / "spool.sqlite3"
    spool = Spool(path)
    spool.add((OutgoingRecord(f"m{i}", topic, f"k{i}".encode(), f"v{i}".encode(), [(H.MESSAGE_ID, f"m{i}".encode())])
               for i in range(50)), "cluster_unreachable")
    spool.close()
    # When the operator looks
    status = _cli("spool", "status", "--spool-path", str(path), "--json")
    # Then
    assert status.returncode == 0, status.stderr
    info = json.loads(status.stdout)
    assert info["records"] == 50 and info["by_topic"] == {topic: 50} and info["by_reason"] == {"cluster_unreachable": 50}
    # When the operator drains it
    drain = _cli("spool", "drain", "--spool-path", str(path), "--bootstrap-servers", kafka_bootstrap)
    # Then every record is on its topic once and the spool is empty
    assert drain.returncode == 0, drain.stdout + drain.stderr
    assert "drained 50 of 50" in drain.stdout
    got = consume_all(kafka_bootstrap, topic, idle_s=2)  # read until quiet: duplicates would show
    assert sorted(headers_dict(m)[H.MESSAGE_ID].decode() for m in got) == sorted(f"m{i}" for i in range(50))
    assert len(got) == 50
    assert json.loads(_cli("spool", "status", "--spool-path", str(path), "--json").stdout)["records"] == 0
