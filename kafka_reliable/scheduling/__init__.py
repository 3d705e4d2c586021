"""Due-time scheduling shared by the retry worker and the ReliableConsumer.

- :class:`DueHeap`: records read ahead, ordered by due time (pure).
- :class:`OffsetTracker`: the contiguous prefix of finished offsets per partition (pure).
- :class:`Owned`: the owned partitions' heap, tracker and generations, their commits, and
  pause/resume (a resume seeks, so the fetch starts at once).
"""

from __future__ import annotations

from kafka_reliable.scheduling.heap import TP, DueHeap
from kafka_reliable.scheduling.offsets import OffsetTracker
from kafka_reliable.scheduling.owned import Owned, fetch_now, names

__all__ = ["TP", "DueHeap", "OffsetTracker", "Owned", "fetch_now", "names"]
