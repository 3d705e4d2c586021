"""The write-ahead log on its own (files only, no broker): frames written and read back, torn
and corrupt tails, settlements, segment deletion, the size limit, owner liveness and take-over
from a SIGKILLed process, a file-size limit hit mid-stream."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kafka_reliable.errors import SpoolFullError
from kafka_reliable.wal import WriteAheadLog, inspect, take_over
from kafka_reliable.wal.owners import read_unsettled

ROOT = Path(__file__).resolve().parents[2]


def _wal(tmp_path: Path, owner: str = "o1", **kw: object) -> WriteAheadLog:
    return WriteAheadLog(tmp_path / "s.db.inflight", owner, **kw)  # type: ignore[arg-type]


def test_records_read_back_exactly_and_settled_ones_are_left_out(tmp_path: Path) -> None:
    # Given records of every kind: id header only, explicit headers, none, no key, batches
    w = _wal(tmp_path)
    w.append_plain("t", b"k1", b"v1", "m-1")
    w.append("t2", None, b"v2", "m-2", [("h", b"x"), ("n", None)], 1234)
    w.append("t", b"k3", b"", "m-3", [], 99)
    w.append_many("t", [(b"k4", b"v4", "m-4", None), (None, b"v5", "m-5", [("a", b"b")])], 77)
    # When two are settled
    assert w.settle(["m-2", "m-4", "unknown-id"]) == 2
    records, problems, _ = read_unsettled(w.folder)
    # Then the other three come back byte for byte, oldest first
    assert problems == []
    assert [(r.message_id, r.topic, r.key, r.value) for r in records] == [
        ("m-1", "t", b"k1", b"v1"), ("m-3", "t", b"k3", b""), ("m-5", "t", None, b"v5")]
    assert records[0].headers == [("kafka_reliable.message.id", b"m-1")]
    assert records[1].headers == [] and records[1].timestamp_ms == 99
    assert records[2].headers == [("a", b"b")]
    w.close()


def test_a_torn_tail_is_recovered_up_to_the_tear_and_reported(tmp_path: Path) -> None:
    w = _wal(tmp_path)
    for i in range(10):
        w.append_plain("t", None, b"x" * 50, f"m-{i}")
    seg = next(w.folder.glob("seg-*.wal"))
    pos = w.stats()["written_bytes"]
    folder = w.folder
    w.close()  # records unsettled: the folder stays
    # a power loss tore the last frame: its last 20 bytes never reached the disk
    with open(seg, "r+b") as f:
        f.seek(pos - 20)
        f.write(b"\0" * 20)
    records, problems, _ = read_unsettled(folder)
    assert [r.message_id for r in records] == [f"m-{i}" for i in range(9)]
    assert len(problems) == 1 and "corrupt frame" in problems[0] or "torn" in problems[0]


def test_a_corrupt_frame_in_the_middle_stops_the_scan_there(tmp_path: Path) -> None:
    w = _wal(tmp_path)
    for i in range(5):
        w.append_plain("t", None, b"y" * 40, f"m-{i}")
    seg = next(w.folder.glob("seg-*.wal"))
    folder = w.folder
    w.close()
    data = bytearray(seg.read_bytes())
    frame_len = (w.stats()["written_bytes"]) // 5
    data[2 * frame_len + 20] ^= 0xFF  # flip a byte inside the third frame
    seg.write_bytes(bytes(data))
    records, problems, _ = read_unsettled(folder)
    assert [r.message_id for r in records] == ["m-0", "m-1"]
    assert "CRC mismatch" in problems[0]


def test_settled_segments_are_deleted_and_disk_use_returns_to_zero(tmp_path: Path) -> None:
    w = _wal(tmp_path, segment_bytes=1 << 16)
    mids = [f"m-{i}" for i in range(2000)]
    for m in mids:
        w.append_plain("t", b"k", b"z" * 100, m)
    assert w.stats()["segments"] > 3
    w.settle(mids[:1000])
    assert w.stats()["segments"] < 3 + 1  # the early segments are gone
    w.settle(mids[1000:])
    w._last_append = 0.0  # idle: the last segment goes too  # noqa: SLF001 - the idle clock
    w.tick()
    assert w.stats()["segments"] == 0 and not list(w.folder.glob("seg-*"))
    assert w.close() == 0 and not w.folder.exists()


def test_the_size_limit_refuses_the_record_and_keeps_every_accepted_one(tmp_path: Path) -> None:
    w = _wal(tmp_path, segment_bytes=1 << 16, max_bytes=3 << 16)
    accepted = []
    with pytest.raises(SpoolFullError, match="spool_max_bytes"):
        for i in range(100_000):
            w.append_plain("t", None, b"q" * 200, f"m-{i}")
            accepted.append(f"m-{i}")
    records, problems, _ = read_unsettled(w.folder)
    assert [r.message_id for r in records] == accepted and not problems
    # once records settle, the log takes records again
    w.settle(accepted)
    w.append_plain("t", None, b"q", "after")
    w.close()


def test_a_live_owner_is_never_taken_over(tmp_path: Path) -> None:
    live = _wal(tmp_path, "live")
    live.append_plain("t", None, b"v", "m-1")
    taken: list[object] = []
    n, _ = take_over(tmp_path / "s.db.inflight", taken.extend)
    assert n == 0 and taken == [] and live.folder.exists()
    assert [(o.owner, o.alive, len(o.records)) for o in inspect(tmp_path / "s.db.inflight")] == [("live", True, 1)]
    live.close()  # closed with a record unsettled: now it is a dead owner's log
    n, _ = take_over(tmp_path / "s.db.inflight", taken.extend)
    assert n == 1 and not live.folder.exists()


_CHILD = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    from kafka_reliable.wal import WriteAheadLog
    w = WriteAheadLog(Path(sys.argv[1]), "child")
    for i in range(100):
        w.append_plain("t", None, b"v%d" % i, f"m-{i}")
    w.settle([f"m-{i}" for i in range(40)])
    print("ready", flush=True)
    sys.stdin.read()
""")


def test_a_sigkilled_owner_is_taken_over_with_exactly_its_unsettled_records(tmp_path: Path) -> None:
    root = tmp_path / "s.db.inflight"
    p = subprocess.Popen([sys.executable, "-c", _CHILD, str(root)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert p.stdout is not None and p.stdout.readline().strip() == b"ready"
    assert [o.alive for o in inspect(root)] == [True]
    p.send_signal(signal.SIGKILL)
    p.wait(10)
    taken: list[object] = []
    n, problems = take_over(root, taken.extend)
    assert n == 60 and not problems
    assert [r.message_id for r in taken] == [f"m-{i}" for i in range(40, 100)]  # type: ignore[attr-defined]
    assert not (root / "child").exists()


_FSIZE_CHILD = textwrap.dedent("""
    import resource, sys
    from pathlib import Path
    from kafka_reliable.errors import SpoolFullError
    from kafka_reliable.wal import WriteAheadLog
    resource.setrlimit(resource.RLIMIT_FSIZE, (3 << 16, 3 << 16))
    w = WriteAheadLog(Path(sys.argv[1]), "child", segment_bytes=1 << 16)
    n = 0
    for i in range(1000):  # small records fill segments below the file-size limit
        w.append_plain("t", None, b"f" * 300, f"m-{i}")
        n += 1
    try:  # a record whose segment would pass the limit: the file cannot grow
        w.append_plain("t", None, b"B" * (4 << 16), "big")
    except SpoolFullError as exc:
        print("refused", str(exc).split(";")[0], flush=True)
    w.append_plain("t", None, b"after", "after")  # the log goes on once the write fits
    print(n + 1, flush=True)
    sys.stdin.read()
""")


def test_a_file_size_limit_mid_stream_refuses_the_send_and_loses_nothing(tmp_path: Path) -> None:
    root = tmp_path / "s.db.inflight"
    p = subprocess.Popen([sys.executable, "-c", _FSIZE_CHILD, str(root)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert p.stdout is not None
    try:
        refused = p.stdout.readline().decode()
        accepted = int(p.stdout.readline() or b"-1")
    finally:
        p.kill()
        _, err = p.communicate(timeout=10)
    assert "refused cannot grow the write-ahead log" in refused, err.decode()[-2000:]
    records, problems, _ = read_unsettled(root / "child")
    assert len(records) == accepted == 1001 and not problems
    assert "big" not in {r.message_id for r in records} and records[-1].message_id == "after"


@pytest.mark.parametrize("policy", ["always", "interval"])
def test_fsync_policies_write_the_same_frames(tmp_path: Path, policy: str) -> None:
    w = _wal(tmp_path, fsync=policy, fsync_interval_ms=5)
    for i in range(50):
        w.append_plain("t", None, b"s", f"m-{i}")
    w.sync()
    records, _, _ = read_unsettled(w.folder)
    assert len(records) == 50
    w.close()
