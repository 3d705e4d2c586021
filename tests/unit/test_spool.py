"""The SQLite spool keeps bytes exactly and hands them back oldest first."""

from __future__ import annotations

import threading
from pathlib import Path

from kafka_reliable.record import OutgoingRecord
from kafka_reliable.spool import Spool, decode_headers, encode_headers


def test_header_codec_round_trip() -> None:
    hs = [("a", b"\x00\x01"), ("b", None), ("ü", b""), ("a", b"dup")]
    assert decode_headers(encode_headers(hs)) == hs


def test_spool_order_bytes_and_delete(tmp_path: Path) -> None:
    # Given
    s = Spool(tmp_path / "s.db")
    s.add([OutgoingRecord("m1", "t", b"k", b"\xff" * 10, [("h", b"1")], 123), OutgoingRecord("m2", "t", None, None, [], None)], "test")
    # When
    recs = s.oldest(10)
    # Then
    assert [r.message_id for r in recs] == ["m1", "m2"]
    assert recs[0].value == b"\xff" * 10 and recs[0].headers == [("h", b"1")] and recs[0].timestamp_ms == 123
    assert recs[1].key is None and recs[1].value is None
    s.delete([recs[0].row_id])
    assert s.count() == 1
    s.close()
    assert Spool(tmp_path / "s.db").count() == 1  # durable across reopen


def test_spool_is_thread_safe(tmp_path: Path) -> None:
    s = Spool(tmp_path / "s.db")

    def work(n: int) -> None:
        for i in range(100):
            s.add([OutgoingRecord(f"{n}-{i}", "t", None, b"v")], "x")

    ts = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert s.count() == 400
