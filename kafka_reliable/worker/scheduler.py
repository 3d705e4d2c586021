"""Due-time scheduling and offset bookkeeping for the retry worker (docs/architecture.md). Pure.

``DueHeap`` holds records read ahead from ``.retry`` partitions, ordered by due time, so a
record due in 30 s never blocks one due in 100 ms behind it. ``OffsetTracker`` says, per
partition, up to where the offsets may be committed: only the contiguous prefix of
finished offsets, so a crash re-reads and never skips.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")

#: A partition of a topic: ``(topic, partition)``.
TP = tuple[str, int]


class DueHeap(Generic[T]):
    """Items ordered by due time (epoch ms); ties keep arrival order.

    ``max_pending`` is the look-ahead bound: ``full`` tells the caller to pause fetching;
    ``count(tp)`` lets it share the bound between partitions.
    ``push`` never refuses (a fetch already in hand must not be dropped); the caller keeps
    the overshoot small by fetching no more than ``room`` records at a time.
    """

    def __init__(self, *, max_pending: int) -> None:
        if max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, got {max_pending}")
        self.max_pending = max_pending
        self._heap: list[tuple[int, int, TP, T]] = []
        self._seq = itertools.count()
        self._per_tp: dict[TP, int] = {}

    def __len__(self) -> int:
        return len(self._heap)

    @property
    def full(self) -> bool:
        return len(self._heap) >= self.max_pending

    @property
    def room(self) -> int:
        """How many more items fit under the bound."""
        return max(0, self.max_pending - len(self._heap))

    def count(self, tp: TP) -> int:
        """Items of one partition."""
        return self._per_tp.get(tp, 0)

    def push(self, due_ms: int, tp: TP, item: T) -> None:
        heapq.heappush(self._heap, (due_ms, next(self._seq), tp, item))
        self._per_tp[tp] = self._per_tp.get(tp, 0) + 1

    def next_due_ms(self) -> int | None:
        """Due time of the earliest item, or None when empty."""
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now_ms: int, limit: int | None = None) -> list[tuple[int, T]]:
        """Remove and return ``(due_ms, item)`` of every item with ``due_ms <= now_ms``."""
        out: list[tuple[int, T]] = []
        heap, per_tp = self._heap, self._per_tp
        while heap and heap[0][0] <= now_ms and (limit is None or len(out) < limit):
            due, _, tp, item = heapq.heappop(heap)
            per_tp[tp] -= 1
            out.append((due, item))
        return out

    def drop_partitions(self, tps: Collection[TP]) -> int:
        """Forget the items of these partitions (revoked); return how many were dropped."""
        if not tps or not self._heap:
            return 0
        wanted = set(tps)
        kept = [e for e in self._heap if e[2] not in wanted]
        dropped = len(self._heap) - len(kept)
        for tp in wanted:
            self._per_tp.pop(tp, None)
        if dropped:
            heapq.heapify(kept)
            self._heap = kept
        return dropped

    def clear(self) -> int:
        n = len(self._heap)
        self._heap = []
        self._per_tp.clear()
        return n


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
