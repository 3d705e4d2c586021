"""The local spool: records that could reach neither their topic nor a companion topic.

A SQLite file in WAL mode. Records are drained oldest first when the cluster answers
again, and at the next start after a crash. Each row keeps the bytes exactly as they
would have been produced, and the topic they are for.
"""

from __future__ import annotations

import os
import sqlite3
import struct
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from kafka_reliable.errors import SpoolError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT,
    topic TEXT NOT NULL,
    key BLOB,
    value BLOB,
    headers BLOB NOT NULL,
    timestamp_ms INTEGER,
    reason TEXT NOT NULL,
    spooled_at_ms INTEGER NOT NULL
)
"""


def default_spool_path() -> Path:
    """``$KAFKA_RELIABLE_SPOOL`` or ``$XDG_DATA_HOME/kafka-reliable/spool.sqlite3``."""
    env = os.environ.get("KAFKA_RELIABLE_SPOOL")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "kafka-reliable" / "spool.sqlite3"


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


@dataclass(frozen=True, slots=True)
class SpooledRecord:
    row_id: int
    message_id: str | None
    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]
    timestamp_ms: int | None
    reason: str


class Spool:
    """A thread-safe SQLite spool. ``add`` is durable when it returns."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_spool_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise SpoolError(f"cannot open spool {self.path}: {exc}") from exc
        self._lock = threading.Lock()

    def add(
        self,
        records: Iterable[tuple[str | None, str, bytes | None, bytes | None, Sequence[tuple[str, bytes | None]] | None, int | None]],
        reason: str,
    ) -> int:
        """Append ``(message_id, topic, key, value, headers, timestamp_ms)`` rows; return how many."""
        now = int(time.time() * 1000)
        rows = [(mid, t, k, v, encode_headers(h), ts, reason, now) for mid, t, k, v, h, ts in records]
        if not rows:
            return 0
        try:
            with self._lock:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(
                    "INSERT INTO spool(message_id, topic, key, value, headers, timestamp_ms, reason, spooled_at_ms)"
                    " VALUES (?,?,?,?,?,?,?,?)",
                    rows,
                )
                self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise SpoolError(f"cannot write to spool {self.path}: {exc}") from exc
        return len(rows)

    def oldest(self, limit: int = 1000) -> list[SpooledRecord]:
        with self._lock:
            cur = self._db.execute(
                "SELECT id, message_id, topic, key, value, headers, timestamp_ms, reason FROM spool ORDER BY id LIMIT ?",
                (limit,),
            )
            rows = cur.fetchall()
        return [SpooledRecord(r[0], r[1], r[2], r[3], r[4], decode_headers(r[5]), r[6], r[7]) for r in rows]

    def delete(self, row_ids: Iterable[int]) -> None:
        ids = [(i,) for i in row_ids]
        if not ids:
            return
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("DELETE FROM spool WHERE id = ?", ids)
            self._db.execute("COMMIT")

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM spool").fetchone()[0])

    def summary(self) -> dict[str, object]:
        """Counts by topic and by reason, and the oldest spooled time (for operators)."""
        with self._lock:
            total, oldest = self._db.execute("SELECT COUNT(*), MIN(spooled_at_ms) FROM spool").fetchone()
            by_topic = dict(self._db.execute("SELECT topic, COUNT(*) FROM spool GROUP BY topic").fetchall())
            by_reason = dict(self._db.execute("SELECT reason, COUNT(*) FROM spool GROUP BY reason").fetchall())
        return {"path": str(self.path), "records": int(total), "oldest_spooled_at_ms": oldest,
                "by_topic": by_topic, "by_reason": by_reason}

    def close(self) -> None:
        with self._lock:
            self._db.close()
