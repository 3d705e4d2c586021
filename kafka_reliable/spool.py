"""The local spool: records that could reach neither their topic nor a companion topic.

A SQLite file in WAL mode. Rows are in one of three states:

- ``spooled``: waiting to be sent again, oldest first, when the cluster answers (and at the
  next start after a crash);
- ``quarantined``: Kafka can never take the record (too big for every limit, …): kept with
  its reason for an operator (``kafka-reliable spool export|purge --quarantined``), never
  retried by itself, never deleted by a drain;
- ``inflight``: written only by releases before the write-ahead log (their durable mode);
  such rows are turned back into ``spooled`` rows when a producer opens the spool.

Records on their way in durable mode live in the write-ahead log beside the spool file
(``<spool>.inflight/``, ``kafka_reliable.wal``); a dead producer's unsettled records are moved
here as ``spooled`` rows by the next producer or ``kafka-reliable spool drain``.

Each row keeps the bytes exactly as they would have been produced, and the topic. A row that
cannot be decoded (corrupt bytes) is quarantined with its reason instead of blocking the rest.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from kafka_reliable.errors import SpoolError
from kafka_reliable.filelock import try_flock
from kafka_reliable.record import OutgoingRecord
from kafka_reliable.spool_rows import (
    UndecodableRow,
    _check_ours,
    _decoded_or_raw,
    _headers_of,
    _record,
    check_spool_path,
    decode_headers,
    encode_headers,
    export_row,
)

__all__ = [
    "INFLIGHT",
    "QUARANTINED",
    "SPOOLED",
    "Spool",
    "UndecodableRow",
    "check_spool_path",
    "decode_headers",
    "default_spool_path",
    "encode_headers",
    "export_row",
]

SPOOLED, QUARANTINED, INFLIGHT = "spooled", "quarantined", "inflight"

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
#: Columns added after the first release (an older spool file is upgraded when opened).
_ADDED_COLUMNS = {
    "state": "TEXT NOT NULL DEFAULT 'spooled'",
    "quarantine_reason": "TEXT",
    "quarantined_at_ms": "INTEGER",
    "owner": "TEXT",
}
_COLUMNS = "id, message_id, topic, key, value, headers, timestamp_ms, reason, quarantine_reason"


def default_spool_path() -> Path:
    """``$KAFKA_RELIABLE_SPOOL`` or ``$XDG_DATA_HOME/kafka-reliable/spool.sqlite3``."""
    env = os.environ.get("KAFKA_RELIABLE_SPOOL")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "kafka-reliable" / "spool.sqlite3"


class Spool:
    """A thread-safe SQLite spool. ``add`` is durable (against a process crash) when it returns.

    ``create=False`` opens an existing spool only (reading commands must not create files).
    ``durable``: the producer's durable mode will keep its write-ahead log beside this file
    (named in the error when the folder cannot be written).
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        create: bool = True,
        durable: bool = False,
    ) -> None:
        if path is not None and not str(path).strip():
            raise SpoolError("spool path is empty: give a file path (e.g. ./spool.sqlite3)")
        self.path = Path(path) if path is not None else default_spool_path()
        check_spool_path(self.path)
        if not create and not self.path.is_file():
            raise SpoolError(f"no spool at {self.path} (no such file)")
        self._closed = False
        hint = (
            ' (or pass durability="memory" to keep no local log of records in flight)'
            if durable
            else ""
        )
        db = None
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                if not os.access(self.path.parent, os.W_OK):
                    raise PermissionError(f"folder {self.path.parent} is not writable")
            db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
            _check_ours(db, self.path)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(_SCHEMA)
            self._db = db
            self._upgrade()
        except (OSError, sqlite3.Error) as exc:
            if db is not None:
                db.close()
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise SpoolError(
                f"cannot open spool {self.path}: {reason}; give a writable spool_path{hint}"
            ) from None
        except SpoolError:
            if db is not None:
                db.close()
            raise
        self._lock = threading.Lock()

    def _upgrade(self) -> None:
        have = {r[1] for r in self._db.execute("PRAGMA table_info(spool)")}
        for name, decl in _ADDED_COLUMNS.items():
            if name not in have:
                self._db.execute(f"ALTER TABLE spool ADD COLUMN {name} {decl}")
        self._db.execute("CREATE INDEX IF NOT EXISTS spool_state ON spool(state, id)")
        self._db.execute("CREATE INDEX IF NOT EXISTS spool_mid ON spool(message_id)")

    # -- writing ------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise SpoolError(f"spool {self.path} is closed")

    def _rollback(self) -> None:
        """Roll back if a transaction is still open (SQLite has already rolled back a failed
        COMMIT, e.g. on a full disk: a second ROLLBACK would hide the real error)."""
        if self._db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")

    def _write(self, sql: str, rows: Any = None, many: bool = True) -> int:
        self._check_open()
        try:
            with self._lock:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    cur = (
                        self._db.executemany(sql, rows or ())
                        if many
                        else self._db.execute(sql, rows or ())
                    )
                    n = cur.rowcount
                    # The cursor goes under the lock: freed later (when this frame ends) it would
                    # reset its statement while another thread steps the same cached statement
                    # (SQLITE_MISUSE, seen under load when the writer and close() both spool).
                    cur.close()
                    del cur
                    self._db.execute("COMMIT")
                except BaseException:
                    self._rollback()
                    raise
                return n
        except sqlite3.Error as exc:
            raise SpoolError(f"cannot write to spool {self.path}: {exc}") from exc

    def add(
        self,
        records: Iterable[OutgoingRecord],
        reason: str,
        *,
        state: str = SPOOLED,
        owner: str | None = None,
    ) -> int:
        """Append records (one transaction); return how many."""
        now = int(time.time() * 1000)
        q_at = now if state == QUARANTINED else None
        rows = [
            (
                r.message_id,
                r.topic,
                r.key,
                r.value,
                encode_headers(_headers_of(r.headers)),
                r.timestamp_ms,
                reason,
                now,
                state,
                owner,
                r.quarantine_reason,
                q_at,
            )
            for r in records
        ]
        if not rows:
            return 0
        self._write(
            "INSERT INTO spool(message_id, topic, key, value, headers, timestamp_ms, reason,"
            " spooled_at_ms,"
            " state, owner, quarantine_reason, quarantined_at_ms) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
        return len(rows)

    def delete(self, row_ids: Iterable[int]) -> int:
        """Delete rows by id (each at most once); return how many existed."""
        ids = [(i,) for i in row_ids]
        return self._write("DELETE FROM spool WHERE id = ?", ids) if ids else 0

    def quarantine(self, row_id: int, reason: str) -> None:
        """Keep a row that Kafka can never take, out of the drain, with its reason."""
        self._write(
            "UPDATE spool SET state = ?, quarantine_reason = ?, quarantined_at_ms = ? WHERE id = ?",
            [(QUARANTINED, reason[:500], int(time.time() * 1000), row_id)],
        )

    def recover_inflight(self, owner: str) -> int:
        """Rows another (dead) process left in flight become spooled rows, to be sent again."""
        return self._write(
            "UPDATE spool SET state = 'spooled', reason = 'unacknowledged_at_exit'"
            " WHERE state = 'inflight' AND (owner IS NULL OR owner != ?)",
            (owner,),
            many=False,
        )

    def purge(self, *, quarantined_only: bool = True) -> int:
        """Delete quarantined rows (or every row); return how many."""
        where = " WHERE state = 'quarantined'" if quarantined_only else ""
        return self._write("DELETE FROM spool" + where, None, many=False)

    # -- reading ------------------------------------------------------------------------

    def _read(self, sql: str, args: Any = ()) -> list[Any]:
        self._check_open()
        try:
            with self._lock:
                return self._db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise SpoolError(f"cannot read spool {self.path}: {exc}") from exc

    def oldest(self, limit: int = 1000, after_id: int = 0) -> list[OutgoingRecord]:
        """Spooled rows (not quarantined, not in flight) oldest first, after ``after_id``. A row
        that cannot be decoded is quarantined with its reason and skipped."""
        rows = self._read(
            f"SELECT {_COLUMNS} FROM spool WHERE state = 'spooled' AND id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        )
        out = []
        for r in rows:
            try:
                out.append(_record(r))
            except UndecodableRow as exc:
                self.quarantine(r[0], str(exc))
        return out

    def quarantined(self, limit: int = 10_000) -> list[OutgoingRecord]:
        rows = self._read(
            f"SELECT {_COLUMNS} FROM spool WHERE state = 'quarantined' ORDER BY id LIMIT ?",
            (limit,),
        )
        return [_decoded_or_raw(r) for r in rows]

    def drain_lock(self) -> contextlib.AbstractContextManager[bool]:
        """True while this process is the one draining the spool (a file lock: one drain at a
        time across every process on this spool, so no row is sent twice at once)."""
        return try_flock(f"{self.path}.drain.lock")

    def iter_all(
        self, *, quarantined_only: bool = False, page: int = 500
    ) -> Iterator[OutgoingRecord]:
        """Every row (or the quarantined ones) oldest first, a page at a time."""
        last = 0
        cond = "state = 'quarantined'" if quarantined_only else "1"
        while True:
            rows = self._read(
                f"SELECT {_COLUMNS} FROM spool WHERE {cond} AND id > ? ORDER BY id LIMIT ?",
                (last, page),
            )
            if not rows:
                return
            for r in rows:
                yield _decoded_or_raw(r)
            last = rows[-1][0]

    def count(self, *, include_quarantined: bool = True) -> int:
        """Rows waiting to be drained (and, by default, quarantined ones); never in-flight rows."""
        states = "('spooled','quarantined')" if include_quarantined else "('spooled')"
        return int(self._read(f"SELECT COUNT(*) FROM spool WHERE state IN {states}")[0][0])

    def summary(self) -> dict[str, object]:
        """Counts by topic, reason and state, and the oldest spooled time (for operators)."""
        self._check_open()
        with self._lock:
            db = self._db
            total, oldest = db.execute(
                "SELECT COUNT(*), MIN(spooled_at_ms) FROM spool WHERE state != 'inflight'"
            ).fetchone()
            by_topic = dict(
                db.execute(
                    "SELECT topic, COUNT(*) FROM spool WHERE state != 'inflight' GROUP BY topic"
                ).fetchall()
            )
            by_reason = dict(
                db.execute(
                    "SELECT reason, COUNT(*) FROM spool WHERE state = 'spooled' GROUP BY reason"
                ).fetchall()
            )
            by_state = dict(
                db.execute("SELECT state, COUNT(*) FROM spool GROUP BY state").fetchall()
            )
            q_reasons = dict(
                db.execute(
                    "SELECT quarantine_reason, COUNT(*) FROM spool WHERE state = 'quarantined'"
                    " GROUP BY quarantine_reason"
                ).fetchall()
            )
        return {
            "path": str(self.path),
            "records": int(total),
            "oldest_spooled_at_ms": oldest,
            "by_topic": by_topic,
            "by_reason": by_reason,
            "quarantined": int(by_state.get(QUARANTINED, 0)),
            "quarantine_reasons": q_reasons,
            "in_flight": int(by_state.get(INFLIGHT, 0)),
        }

    def export(self, out: IO[str], *, quarantined_only: bool = False) -> int:
        """Write rows as JSON lines (bytes as base64); return how many."""
        n = 0
        for r in self.iter_all(quarantined_only=quarantined_only):
            out.write(json.dumps(export_row(r)) + "\n")
            n += 1
        return n

    def close(self) -> None:
        if self._closed:
            return
        with self._lock:
            self._closed = True
            self._db.close()
