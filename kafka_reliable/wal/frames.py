"""The write-ahead log's frames: length-prefixed, CRC-checked, little-endian.

Every frame is ``[u32 payload length][u32 crc32(payload)][payload]``; a length of zero marks
the end of the written part of a (preallocated, zero-filled) segment. A record frame holds
exactly what was produced; a settlement frame holds runs of settled sequence numbers.

Record payload: ``kind u8, seq u64, timestamp_ms i64, partition i32, topic u16, message id
u16, key i32 (-1: None), value i32 (-1: None), headers u32`` lengths, then the bytes in that
order. ``kind`` says where the headers are: written out (``spool.encode_headers`` format),
the message-id header alone (rebuilt from the id: nothing more to write on the fast path),
or none.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from kafka_reliable.headers import MESSAGE_ID
from kafka_reliable.spool_rows import decode_headers, encode_headers

#: Frame header: payload length, CRC-32 of the payload.
HEAD = struct.Struct("<II")
#: Record payload header (see the module docstring).
RECORD = struct.Struct("<BQqiHHiiI")
HEAD_SIZE = HEAD.size
RECORD_SIZE = RECORD.size

KIND_HEADERS, KIND_ID_HEADER, KIND_NO_HEADERS = 1, 2, 3
KIND_SETTLED = 9
#: A frame longer than this is corrupt (Kafka itself refuses records far smaller).
MAX_FRAME = 1 << 30

crc32 = zlib.crc32


class WalRecord(NamedTuple):
    """One record read back from a segment, as it was produced."""

    seq: int
    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]
    timestamp_ms: int
    partition: int
    message_id: str


def record_payload(
    seq: int,
    topic: bytes,
    mid: bytes,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes | None]] | None,
    ts_ms: int,
    partition: int = -1,
) -> bytes:
    """One record's payload (``headers`` None: the id header alone; ``[]``: none)."""
    if headers is None:
        kind, hb = KIND_ID_HEADER, b""
    elif not headers:
        kind, hb = KIND_NO_HEADERS, b""
    else:
        kind, hb = KIND_HEADERS, encode_headers(headers)
    return b"".join(
        (
            RECORD.pack(
                kind,
                seq,
                ts_ms,
                partition,
                len(topic),
                len(mid),
                -1 if key is None else len(key),
                -1 if value is None else len(value),
                len(hb),
            ),
            topic,
            mid,
            key or b"",
            value or b"",
            hb,
        )
    )


def frame(payload: bytes) -> bytes:
    return HEAD.pack(len(payload), crc32(payload)) + payload


def settled_payload(runs: Sequence[tuple[int, int]]) -> bytes:
    """Runs ``(first seq, count)`` of records settled since the last frame."""
    return bytes((KIND_SETTLED,)) + b"".join(struct.pack("<QI", a, n) for a, n in runs)


def decode_record(p: bytes | memoryview) -> WalRecord:
    kind, seq, ts, part, tl, ml, kl, vl, hl = RECORD.unpack_from(p, 0)
    pos = RECORD_SIZE
    topic = bytes(p[pos : pos + tl]).decode("utf-8")
    pos += tl
    mid = bytes(p[pos : pos + ml]).decode("utf-8")
    pos += ml
    key = None if kl < 0 else bytes(p[pos : pos + kl])
    pos += max(kl, 0)
    value = None if vl < 0 else bytes(p[pos : pos + vl])
    pos += max(vl, 0)
    if kind == KIND_HEADERS:
        headers = decode_headers(bytes(p[pos : pos + hl]))
    elif kind == KIND_ID_HEADER:
        headers = [(MESSAGE_ID, mid.encode())]
    else:
        headers = []
    return WalRecord(seq, topic, key, value, headers, ts, part, mid)


def decode_runs(p: bytes | memoryview) -> list[tuple[int, int]]:
    return [struct.unpack_from("<QI", p, i) for i in range(1, len(p) - 11, 12)]


class Scan(NamedTuple):
    """What a scan of one file found: frames' payloads, where it stopped and why."""

    payloads: list[bytes]
    end: int
    problem: str | None


def scan(data: bytes | memoryview) -> Scan:
    """Frames from the start until the zero end mark, the end of data, or the first torn or
    corrupt frame (reported in ``problem``; nothing after it is trusted)."""
    out: list[bytes] = []
    pos, size = 0, len(data)
    while pos + HEAD_SIZE <= size:
        n, crc = HEAD.unpack_from(data, pos)
        if n == 0 and crc == 0:
            return Scan(out, pos, None)
        if n > MAX_FRAME or pos + HEAD_SIZE + n > size:
            return Scan(
                out,
                pos,
                f"torn frame at byte {pos} (declares {n} bytes, {size - pos - HEAD_SIZE} left)",
            )
        payload = bytes(data[pos + HEAD_SIZE : pos + HEAD_SIZE + n])
        if crc32(payload) != crc:
            return Scan(out, pos, f"corrupt frame at byte {pos} (CRC mismatch)")
        out.append(payload)
        pos += HEAD_SIZE + n
    tail = bytes(data[pos:size])
    return Scan(out, pos, None if not tail.strip(b"\0") else f"torn frame header at byte {pos}")


def iter_records(payloads: Sequence[bytes]) -> Iterator[WalRecord]:
    for p in payloads:
        if p and p[0] in (KIND_HEADERS, KIND_ID_HEADER, KIND_NO_HEADERS):
            yield decode_record(p)


def runs_of(seqs: list[int]) -> list[tuple[int, int]]:
    """Sorted sequence numbers as ``(first, count)`` runs (one run when they are contiguous,
    the common case: acknowledgements arrive mostly in order)."""
    if seqs[-1] - seqs[0] + 1 == len(seqs):
        return [(seqs[0], len(seqs))]
    runs: list[tuple[int, int]] = []
    start = prev = seqs[0]
    for s in seqs[1:]:
        if s != prev + 1:
            runs.append((start, prev - start + 1))
            start = s
        prev = s
    runs.append((start, prev - start + 1))
    return runs
