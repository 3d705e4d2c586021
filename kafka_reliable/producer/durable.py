"""Durable send mode (``durability="spool"``, the default): every record is in the producer's
write-ahead log (``kafka_reliable.wal``) before the send call returns, and is settled there
once acknowledged, routed to ``.retry`` / ``.dlq``, spooled or refused.

A process that dies (SIGKILL, OOM kill) leaves its unsettled records in its log folder; the
next producer (or ``kafka-reliable spool drain``) on the same spool takes over the folders of
dead owners only, moves their unsettled records into the spool and sends them again with the
same message ids, so consumers can drop the duplicates.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path

from kafka_reliable.record import OutgoingRecord
from kafka_reliable.spool import Spool
from kafka_reliable.wal import WalRecord, WriteAheadLog, take_over, wal_root

#: Accepted values of ``durability``.
DURABILITY_MODES = ("memory", "spool")


def adopt_dead_owners(spool: Spool, *, skip: str | None = None) -> tuple[int, list[str]]:
    """Move the unsettled records of dead producers' logs into the spool (then delete those
    logs); return (records moved, problems found such as torn frames)."""

    def sink(records: list[WalRecord]) -> None:
        spool.add(
            [
                OutgoingRecord(r.message_id, r.topic, r.key, r.value, r.headers, r.timestamp_ms)
                for r in records
            ],
            "unacknowledged_at_exit",
        )

    return take_over(wal_root(spool.path), sink, skip=skip)


class DurableLedger:
    """The producer's side of its write-ahead log: appends from the send path, settlements
    collected from any thread and written in bulk by the poller (``flush``)."""

    def __init__(
        self,
        spool_path: Path,
        owner: str,
        *,
        with_id_header: bool,
        max_bytes: int,
        fsync: str,
        fsync_interval_ms: int,
    ) -> None:
        self.wal = WriteAheadLog(
            wal_root(spool_path),
            owner,
            max_bytes=max_bytes,
            fsync=fsync,
            fsync_interval_ms=fsync_interval_ms,
        )
        if not with_id_header:
            self.wal.plain_kind = 3
        self._settled: deque[str] = deque()
        #: ``on_final(mid)``: the record needs nothing more from this process (any thread).
        self.on_final = self._settled.append
        #: ``append_plain(topic, key, value, mid)``: the fast path's one write.
        self.append_plain = self.wal.append_plain
        #: ``append(topic, key, value, mid, headers, ts_ms)``.
        self.append = self.wal.append
        self.append_many = self.wal.append_many

    def abandon(self, mid: str) -> None:
        """Written but never handed to librdkafka (the call raised): nothing to resend."""
        self._settled.append(mid)

    def flush(self) -> int:
        """Record the settlements collected since the last call; return how many."""
        q = self._settled
        self.wal.tick()
        if not q:
            return 0
        mids = []
        pop = q.popleft
        try:
            while True:
                mids.append(pop())
        except IndexError:
            pass
        return self.wal.settle(mids)

    def stats(self) -> dict[str, object]:
        return self.wal.stats()

    def close(self) -> int:
        self.flush()
        return self.wal.close()
