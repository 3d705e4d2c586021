"""Offset bookkeeping (pure): per partition, up to where offsets may be committed.

Only the contiguous prefix of finished offsets is committable, so a crash re-reads and never
skips. Used by the retry worker and the ReliableConsumer.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field

from kafka_reliable.scheduling.heap import TP


@dataclass(slots=True)
class _PartitionState:
    outstanding: deque[int] = field(default_factory=deque)
    done: set[int] = field(default_factory=set)
    last_seen: int = -1
    committed: int | None = None


class OffsetTracker:
    """Per partition: offsets read, offsets finished, and the commit position.

    Offsets of one partition must be ``track``-ed in increasing order (the order a consumer
    delivers them); gaps (compaction, transaction markers) are fine. The commit position of a
    partition is its lowest unfinished offset, or the offset after the last one read when
    everything read is finished.
    """

    def __init__(self) -> None:
        self._parts: dict[TP, _PartitionState] = {}

    def track(self, tp: TP, offset: int) -> bool:
        """Start tracking an offset; False (and nothing tracked) when it is not above the last
        one of its partition, i.e. a re-delivery the caller should skip."""
        st = self._parts.get(tp)
        if st is None:
            st = self._parts[tp] = _PartitionState()
        if offset <= st.last_seen:
            return False
        st.outstanding.append(offset)
        st.last_seen = offset
        return True

    def finish(self, tp: TP, offset: int) -> None:
        """Mark an offset finished (its outcome was acknowledged). Unknown partitions are ignored
        (the partition was revoked meanwhile)."""
        st = self._parts.get(tp)
        if st is None:
            return
        if st.outstanding and st.outstanding[0] == offset:
            st.outstanding.popleft()
            while st.outstanding and st.outstanding[0] in st.done:
                st.done.discard(st.outstanding.popleft())
        elif offset > (st.committed if st.committed is not None else -1):
            st.done.add(offset)

    def position(self, tp: TP) -> int | None:
        """The offset to commit for ``tp`` (next to read after a restart), or None if unknown."""
        st = self._parts.get(tp)
        if st is None or st.last_seen < 0:
            return None
        return st.outstanding[0] if st.outstanding else st.last_seen + 1

    def committable(self) -> dict[TP, int]:
        """Partitions whose commit position moved since the last ``mark_committed``."""
        out: dict[TP, int] = {}
        for tp, st in self._parts.items():
            pos = self.position(tp)
            if pos is not None and pos != st.committed:
                out[tp] = pos
        return out

    def mark_committed(self, offsets: dict[TP, int]) -> None:
        for tp, off in offsets.items():
            st = self._parts.get(tp)
            if st is not None:
                st.committed = off

    def forget_committed(self, tps: Collection[TP]) -> None:
        """A commit of these partitions failed: ``committable`` offers their position again."""
        for tp in tps:
            st = self._parts.get(tp)
            if st is not None:
                st.committed = None

    def pending(self, tp: TP | None = None) -> int:
        """Unfinished offsets of one partition, or of all."""
        if tp is not None:
            st = self._parts.get(tp)
            return len(st.outstanding) if st else 0
        return sum(len(st.outstanding) for st in self._parts.values())

    def drop_partitions(self, tps: Collection[TP]) -> None:
        for tp in tps:
            self._parts.pop(tp, None)

    def partitions(self) -> Iterator[TP]:
        return iter(list(self._parts))
