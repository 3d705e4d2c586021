"""Durable send mode (``durability="spool"``): every record is in the local spool (SQLite,
WAL) before the send call returns, and leaves it once acknowledged or routed.

A process that dies (even by SIGKILL) leaves its unacknowledged records as ``inflight`` rows;
the next producer on the same spool turns them into spooled rows and sends them again with
the same message ids, so consumers can drop the duplicates.

Writes: one transaction per ``send_message``, one per ``send_batch``. Deletes are batched like
consumer commits: rows are deleted up to the contiguous prefix of settled rows with one
statement per poller tick (a record still in flight holds the rows after it; rows settled far
past such a record are deleted by id once there are many of them).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence

from kafka_reliable.producer import tracking as T
from kafka_reliable.record import OutgoingRecord
from kafka_reliable.spool import INFLIGHT, Spool

#: Accepted values of ``durability``.
DURABILITY_MODES = ("memory", "spool")
#: Settled rows held behind an unsettled one before they are deleted one by one.
EXPLICIT_DELETE_AFTER = 50_000


class DurableLedger:
    """In-flight rows of one producer (``owner``) in the spool."""

    def __init__(self, spool: Spool, owner: str) -> None:
        self._spool = spool
        self.owner = owner
        self._lock = threading.Lock()
        #: message id -> its row, for records in flight.
        self._row_of: dict[str, int] = {}
        #: This producer's rows in flight, oldest first (row ids increase).
        self._rows: deque[int] = deque()
        #: Rows settled but not yet behind the prefix; and those already deleted by id.
        self._done: set[int] = set()
        self._deleted: set[int] = set()
        self._settled: deque[str] = deque()

    def write(self, records: Sequence[OutgoingRecord]) -> None:
        """Durable when it returns (one transaction for all of ``records``)."""
        with self._lock:
            ids = self._spool.add_rows(records, "in_flight", state=INFLIGHT, owner=self.owner)
            for r, row in zip(records, ids, strict=True):
                self._row_of[r.message_id or ""] = row
            self._rows.extend(ids)

    def on_final(self, mid: str, status: str) -> None:
        """The record needs nothing more from this process (any thread)."""
        if status != T.DUPLICATE:
            self._settled.append(mid)  # deque.append / popleft are atomic under the GIL

    def flush(self) -> int:
        """Delete the rows of settled records; return how many rows went."""
        q = self._settled
        if not q:
            return 0
        with self._lock:
            while q:
                row = self._row_of.pop(q.popleft(), None)
                if row is not None:
                    self._done.add(row)
            rows, done, last = self._rows, self._done, None
            while rows and rows[0] in done:
                last = rows.popleft()
                done.discard(last)
                self._deleted.discard(last)
            n = self._spool.delete_inflight_upto(self.owner, last) if last is not None else 0
            extra = [r for r in done if r not in self._deleted] if len(done) > EXPLICIT_DELETE_AFTER else []
            if extra:
                n += self._spool.delete(extra)
                self._deleted.update(extra)
        return n
