"""Retry records this consumer wrote and has not read back yet: when one falls due unread, the
source partitions are paused for a moment. Pure.

librdkafka hands records over in the order it fetched them, so a retry record fetched behind
thousands of prefetched source records would be handed over late. Pausing the source
partitions drops their prefetched records (they are fetched again on resume, from the position
the application reached), so the due retry record is next.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection

from kafka_reliable.scheduling import TP

#: Pause the source this long before an unread retry record falls due.
LEAD_MS = 5
#: Give up on a record not read this long after its due time (it was revoked or compacted).
GIVE_UP_MS = 10_000


class ExpectedRetries:
    """``(due, partition, offset)`` of retry records written by this consumer, until read back."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, TP, int]] = []
        self._read: dict[TP, int] = {}

    def __len__(self) -> int:
        return len(self._heap)

    def written(self, tp: TP, offset: int, due_ms: int) -> None:
        if offset > self._read.get(tp, -1):
            heapq.heappush(self._heap, (due_ms, tp, offset))

    def read(self, tp: TP, offset: int) -> None:
        if offset > self._read.get(tp, -1):
            self._read[tp] = offset

    def hurry(self, now_ms: int, owned: Collection[TP]) -> bool:
        """Whether a retry record of an owned partition is (nearly) due and still unread."""
        heap = self._heap
        while heap:
            due, tp, offset = heap[0]
            if tp not in owned or offset <= self._read.get(tp, -1) or due < now_ms - GIVE_UP_MS:
                heapq.heappop(heap)
                continue
            return due <= now_ms + LEAD_MS
        return False

    def drop(self, tps: Collection[TP]) -> None:
        for tp in tps:
            self._read.pop(tp, None)
        kept = [e for e in self._heap if e[1] not in tps]
        if len(kept) != len(self._heap):
            heapq.heapify(kept)
            self._heap = kept
