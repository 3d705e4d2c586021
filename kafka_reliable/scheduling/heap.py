"""The due-time heap (pure): records read ahead, ordered by due time.

A record due in 30 s never blocks one due in 100 ms behind it. Used by the retry worker and
the ReliableConsumer (its group's retry topic).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Collection
from typing import Generic, TypeVar

from kafka_reliable.errors import ConfigurationError

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
            raise ConfigurationError(f"max_pending must be >= 1, got {max_pending}")
        self.max_pending = max_pending
        self._heap: list[tuple[int, int, TP, T]] = []
        #: The heap list itself, for a hot loop's "anything due?" (``entries[0][0]`` is the
        #: earliest due time); read only.
        self.entries = self._heap
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
            self._heap[:] = kept
        return dropped

    def clear(self) -> int:
        n = len(self._heap)
        self._heap.clear()
        self._per_tp.clear()
        return n
