"""Spool rows as bytes and back: the header codec, a row decoded into an ``OutgoingRecord``
(or, when its bytes are corrupt, shown as far as possible and quarantined by the spool), a
row as JSON for export, and the check that a path is (or can become) a spool of ours."""

from __future__ import annotations

import base64
import sqlite3
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kafka_reliable.errors import SpoolError
from kafka_reliable.record import OutgoingRecord


def encode_headers(headers: Sequence[tuple[str, bytes | None]] | None) -> bytes:
    """Length-prefixed binary: exact bytes back, None values kept as None."""
    parts = [struct.pack(">I", len(headers or ()))]
    for k, v in headers or ():
        kb = k.encode("utf-8")
        parts.append(struct.pack(">I", len(kb)) + kb)
        parts.append(struct.pack(">i", -1) if v is None else struct.pack(">i", len(v)) + bytes(v))
    return b"".join(parts)


def decode_headers(raw: bytes) -> list[tuple[str, bytes | None]]:
    (n,) = struct.unpack_from(">I", raw, 0)
    pos = 4
    out: list[tuple[str, bytes | None]] = []
    for _ in range(n):
        (kl,) = struct.unpack_from(">I", raw, pos)
        pos += 4
        k = raw[pos : pos + kl].decode("utf-8")
        pos += kl
        (vl,) = struct.unpack_from(">i", raw, pos)
        pos += 4
        if vl < 0:
            out.append((k, None))
        else:
            out.append((k, raw[pos : pos + vl]))
            pos += vl
    return out


class UndecodableRow(SpoolError):
    """A spool row whose stored bytes cannot be decoded (corrupt file or foreign writer)."""


def _record(row: Sequence[Any]) -> OutgoingRecord:
    try:
        headers = decode_headers(row[5])
        if not isinstance(row[2], str) or not (row[4] is None or isinstance(row[4], bytes)):
            raise ValueError("topic or value of the wrong type")
    except (struct.error, UnicodeDecodeError, ValueError, TypeError) as exc:
        raise UndecodableRow(f"row {row[0]}: undecodable ({exc})") from None
    return OutgoingRecord(
        message_id=row[1],
        topic=row[2],
        key=row[3],
        value=row[4],
        headers=headers,
        timestamp_ms=row[6],
        row_id=row[0],
        spool_reason=row[7],
        quarantine_reason=row[8],
    )


def _raw_record(row: Sequence[Any], problem: str) -> OutgoingRecord:
    """A row that cannot be decoded, as far as it can be shown (headers left out)."""
    value = row[4] if isinstance(row[4], bytes) else None
    return OutgoingRecord(
        message_id=row[1],
        topic=str(row[2]),
        key=row[3] if isinstance(row[3], bytes) else None,
        value=value,
        headers=[],
        timestamp_ms=row[6],
        row_id=row[0],
        spool_reason=row[7],
        quarantine_reason=row[8] or problem,
    )


def check_spool_path(path: Path) -> None:
    """Refuse, in one line, a path that is not (and cannot become) a spool file of ours."""
    text = str(path)
    if not text.strip():
        raise SpoolError("spool path is empty: give a file path (e.g. ./spool.sqlite3)")
    if text == ":memory:":
        raise SpoolError(
            "spool path ':memory:' is not a file: records kept there die with the process; "
            "give a file path"
        )
    if path.is_dir():
        raise SpoolError(
            f"spool path {path} is a directory, not a spool file (give a file inside it, "
            f"e.g. {path / 'spool.sqlite3'})"
        )
    if path.is_file() and path.stat().st_size == 0:
        raise SpoolError(
            f"{path} is an empty file, not a kafka-reliable spool "
            "(remove it or choose another path)"
        )


def _check_ours(db: sqlite3.Connection, path: Path) -> None:
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    tables.discard("sqlite_sequence")
    if tables and "spool" not in tables:
        raise SpoolError(
            f"{path} is not a kafka-reliable spool (an SQLite file with tables "
            f"{', '.join(sorted(tables))}); choose another spool path"
        )
    if "spool" in tables:
        have = {r[1] for r in db.execute("PRAGMA table_info(spool)")}
        if not {"message_id", "topic", "key", "value", "headers", "reason"} <= have:
            raise SpoolError(
                f"{path} has a 'spool' table that is not kafka-reliable's; "
                "choose another spool path"
            )


def _headers_of(h: Any) -> list[tuple[str, bytes | None]]:
    return list(h.items()) if isinstance(h, dict) else list(h or ())


def _decoded_or_raw(row: Sequence[Any]) -> OutgoingRecord:
    try:
        return _record(row)
    except UndecodableRow as exc:
        return _raw_record(row, str(exc))


def _b64(b: bytes | None) -> str | None:
    return None if b is None else base64.b64encode(b).decode()


def export_row(r: OutgoingRecord) -> dict[str, Any]:
    """One spool row as JSON-safe data: bytes in base64, nothing dropped."""
    return {
        "row_id": r.row_id,
        "message_id": r.message_id,
        "topic": r.topic,
        "key_b64": _b64(r.key),
        "value_b64": _b64(r.value),
        "headers": [[k, _b64(v)] for k, v in r.headers],
        "timestamp_ms": r.timestamp_ms,
        "reason": r.spool_reason,
        "quarantine_reason": r.quarantine_reason,
    }
