"""A sliding window of delivery outcomes in time slices: O(1) to add, cheap to read."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

#: Slices per window: the window slides in steps of ``window_s / WINDOW_SLICES``.
WINDOW_SLICES = 60


class SlidingWindow:
    """Counts ok/failed outcomes (and latency sums) over the last ``window_s`` seconds.

    The window is cut into slices; only slices that saw traffic are stored, so adding is
    O(1) amortised and memory is bounded by the slice count. Counts are kept as running
    totals (exact, integers); latency is summed on read to avoid float drift.
    """

    __slots__ = ("_clock", "_inv_slice_s", "_slices", "_lock", "_buckets", "_ok", "_failed")

    def __init__(
        self, *, window_s: float, clock: Callable[[], float], slices: int = WINDOW_SLICES
    ) -> None:
        if window_s <= 0:
            raise ValueError(f"window_s must be > 0, got {window_s!r}")
        self._clock = clock
        self._slices = slices
        self._inv_slice_s = slices / window_s
        self._lock = threading.Lock()
        # each bucket: [slice_index, ok, failed, latency_sum_ms, latency_n]
        self._buckets: deque[list[float]] = deque()
        self._ok = 0
        self._failed = 0

    def _expire(self, current: int) -> None:
        oldest = current - self._slices
        buckets = self._buckets
        while buckets and buckets[0][0] <= oldest:
            b = buckets.popleft()
            self._ok -= int(b[1])
            self._failed -= int(b[2])

    def _current_bucket(self) -> list[float]:
        """The bucket of the current slice, opened (and old ones expired) if needed; lock held."""
        current = int(self._clock() * self._inv_slice_s)
        buckets = self._buckets
        if not buckets or buckets[-1][0] != current:
            self._expire(current)
            buckets.append([current, 0, 0, 0.0, 0])
        return buckets[-1]

    def add(self, ok: bool, latency_ms: float | None = None) -> tuple[int, int]:
        """Record one outcome; return the window's ``(ok, failed)`` totals after it."""
        self.add_many(
            1 if ok else 0, 0 if ok else 1, latency_ms or 0.0, 0 if latency_ms is None else 1
        )
        return self._ok, self._failed

    def add_many(
        self, ok: int, failed: int, latency_sum_ms: float = 0.0, latency_n: int = 0
    ) -> None:
        """Record many outcomes at once (a producer feeding aggregated counts once per tick)."""
        if not (ok or failed or latency_n):
            return
        with self._lock:
            b = self._current_bucket()
            b[1] += ok
            b[2] += failed
            b[3] += latency_sum_ms
            b[4] += latency_n
            self._ok += ok
            self._failed += failed

    def totals(self) -> tuple[int, int]:
        """``(ok, failed)`` over the window."""
        with self._lock:
            self._expire(int(self._clock() * self._inv_slice_s))
            return self._ok, self._failed

    def avg_latency_ms(self) -> float:
        """Mean latency over the window (0.0 when no latency was recorded)."""
        with self._lock:
            self._expire(int(self._clock() * self._inv_slice_s))
            total = sum(b[3] for b in self._buckets)
            n = sum(b[4] for b in self._buckets)
        return total / n if n else 0.0

    def clear(self) -> None:
        with self._lock:
            self._buckets.clear()
            self._ok = 0
            self._failed = 0
