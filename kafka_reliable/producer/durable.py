"""Durable send mode (``durability="spool"``): every record is in the local spool (SQLite,
WAL) before the send call returns, and leaves it once acknowledged or routed.

A process that dies (even by SIGKILL) leaves its unacknowledged records as ``inflight`` rows;
the next producer on the same spool turns them into spooled rows and sends them again with
the same message ids, so consumers can drop the duplicates. Deletes are batched: the poller
removes settled rows in one transaction per tick.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from kafka_reliable.producer import tracking as T
from kafka_reliable.record import OutgoingRecord
from kafka_reliable.spool import INFLIGHT, Spool

#: Accepted values of ``durability``.
DURABILITY_MODES = ("memory", "spool")


class DurableLedger:
    """In-flight rows of one producer (``owner``) in the spool."""

    def __init__(self, spool: Spool, owner: str) -> None:
        self._spool = spool
        self.owner = owner
        self._settled: deque[str] = deque()

    def write(self, records: Sequence[OutgoingRecord]) -> None:
        """Durable when it returns (one transaction for all of ``records``)."""
        self._spool.add(records, "in_flight", state=INFLIGHT, owner=self.owner)

    def on_final(self, mid: str, status: str) -> None:
        """Tracker listener: the record needs nothing more from this process."""
        if status != T.DUPLICATE:
            self._settled.append(mid)  # deque.append / popleft are atomic under the GIL

    def flush(self) -> int:
        """Delete the rows of settled records (one transaction); return how many."""
        q, mids = self._settled, []
        while q:
            mids.append(q.popleft())
        return self._spool.settle_inflight(self.owner, mids) if mids else 0
