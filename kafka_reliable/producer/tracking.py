"""Bounded message status and cheap statistics for the producer."""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from typing import Any

PENDING = "pending"
SENT = "sent"
RETRYING = "retrying"
DLQ = "dlq"
SPOOLED = "spooled"
DUPLICATE = "duplicate"

#: Statuses after which a record needs nothing more from this process.
TERMINAL = frozenset({SENT, RETRYING, DLQ, SPOOLED, DUPLICATE})


class LatencyWindow:
    """The last ``size`` delivery latencies in a ring; percentiles computed on demand."""

    def __init__(self, size: int = 10_000) -> None:
        self._buf = [0.0] * size
        self._size = size
        self._n = 0

    def add(self, latency_ms: float) -> None:
        self._buf[self._n % self._size] = latency_ms
        self._n += 1

    def snapshot(self) -> dict[str, float]:
        filled = min(self._n, self._size)
        if filled == 0:
            return {"avg_ms": 0.0, "p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0, "samples": 0}
        data = sorted(self._buf[:filled])

        def pct(p: float) -> float:
            return data[min(filled - 1, int(p * filled))]

        return {
            "avg_ms": sum(data) / filled,
            "p50_ms": pct(0.50),
            "p95_ms": pct(0.95),
            "p99_ms": pct(0.99),
            "max_ms": data[-1],
            "samples": filled,
        }


class _Batch:
    __slots__ = ("remaining", "done")

    def __init__(self, n: int) -> None:
        self.remaining = n
        self.done = threading.Event()
        if n == 0:
            self.done.set()


class MessageTracker:
    """Status per message id (the newest ``capacity`` ids) and counters.

    Updated from the send path and from delivery callbacks (any thread that polls);
    one lock, held for a few dict operations.
    """

    def __init__(self, capacity: int = 100_000, latency_window: int = 10_000,
                 final_hook: Callable[[str], None] | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"status capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.lock = threading.Lock()
        # OrderedDict: popitem(last=False) evicts the oldest in O(1); a plain dict's
        # next(iter(d)) degrades to O(n) after many deletions at its front.
        self._status: OrderedDict[str, str] = OrderedDict()
        self._batch_of: dict[str, _Batch] = {}
        self.latency = LatencyWindow(latency_window)
        self.counts: dict[str, int] = {
            "sent": 0, "failed": 0, "retried": 0, "dead_lettered": 0, "spooled": 0,
            "duplicates": 0, "successful_retries": 0, "drained": 0,
        }
        self.dlq_by_topic: dict[str, int] = {}
        self.latency_sum_ms = 0.0
        self.latency_n = 0
        self._fed: tuple[int, int, float, int] = (0, 0, 0.0, 0)
        #: ``listener(message_id, status)`` once per record when its status becomes final
        #: (called under the tracker's lock: keep it to an append or a hand-off).
        self._listeners: list[Callable[[str, str], None]] = []
        #: ``(topic, latency_s)`` of records acknowledged on the fast path, folded into the
        #: counters in bulk (``fold``) by the poller and before every read.
        self.acks: deque[tuple[str, float | None]] = deque()
        #: ``final_hook(mid)`` for every record that settles, fast path included (the durable
        #: ledger's settlement queue: a C-level append); unlike listeners it leaves the fast path on.
        self.final_hook: Callable[[str], None] | None = final_hook
        #: Per-record outcome callbacks (``watch``), popped when the record settles.
        self.watchers: dict[str, Callable[[str, str, str | None], None]] = {}
        #: ``sink({topic: [latency_s, ...]})`` receives each fold (the Prometheus metrics).
        self.ack_sink: Callable[[dict[str, list[float | None]]], None] | None = None

    @property
    def statuses(self) -> OrderedDict[str, str]:
        """The status map itself, for the send path's single-store fast path."""
        return self._status

    @property
    def has_listeners(self) -> bool:
        return bool(self._listeners)

    def fold(self) -> int:
        """Fold fast-path acknowledgements into counters, latency and metrics; evict old ids.

        Status was already set per record when its report arrived; this is the bookkeeping
        that would cost a lock per record. Returns how many were folded.
        """
        q = self.acks
        if not q:
            if len(self._status) > self.capacity:
                self._evict()
            return 0
        by_topic: dict[str, list[float | None]] = {}
        n = 0
        lat_sum = 0.0
        lat_n = 0
        window = self.latency
        with self.lock:
            while q:
                try:
                    topic, lat = q.popleft()
                except IndexError:
                    break
                n += 1
                by_topic.setdefault(topic, []).append(lat)
                if lat is not None:
                    ms = lat * 1000.0
                    window.add(ms)
                    lat_sum += ms
                    lat_n += 1
            self.counts["sent"] += n
            self.latency_sum_ms += lat_sum
            self.latency_n += lat_n
        if len(self._status) > self.capacity:
            self._evict()
        sink = self.ack_sink
        if sink is not None and by_topic:
            sink(by_topic)
        return n

    def add_listener(self, listener: Callable[[str, str], None]) -> None:
        with self.lock:
            self._listeners = [*self._listeners, listener]

    # -- send path --------------------------------------------------------------------

    def add(self, mid: str, status: str = PENDING) -> None:
        """Track a new id. A single dict store (atomic under the GIL); eviction takes the lock."""
        st = self._status
        st[mid] = status
        if len(st) > self.capacity:
            self._evict()

    def _evict(self) -> None:
        st = self._status
        with self.lock:
            while len(st) > self.capacity:
                st.popitem(last=False)

    def add_batch(self, mids: Iterable[str]) -> _Batch:
        ids = list(mids)
        batch = _Batch(len(ids))
        with self.lock:
            for mid in ids:
                self._batch_of[mid] = batch
        return batch

    # -- outcomes (any thread) ------------------------------------------------------------

    def watch(self, mid: str, fn: Callable[[str, str, str | None], None]) -> None:
        """``fn(mid, status, error_class)`` once, when this record's status becomes final
        (from a producer thread; keep it to a hand-off). Leaves the fast path on."""
        self.watchers[mid] = fn

    def _set_locked(self, mid: str, status: str, error_class: str | None = None) -> None:
        st = self._status
        st[mid] = status
        if status in TERMINAL:
            if self.final_hook is not None:
                self.final_hook(mid)
            if self.watchers:
                w = self.watchers.pop(mid, None)
                if w is not None:
                    w(mid, status, error_class)
            if self._batch_of:
                batch = self._batch_of.pop(mid, None)
                if batch is not None:
                    batch.remaining -= 1
                    if batch.remaining <= 0:
                        batch.done.set()
            for listener in self._listeners:
                listener(mid, status)

    def settle(self, mid: str | None, status: str, error_class: str | None = None) -> None:
        """Record a new status; release a waiting batch when its last record settles."""
        if mid is None:
            return
        with self.lock:
            self._set_locked(mid, status, error_class)
        if len(self._status) > self.capacity:
            self._evict()

    def count(self, name: str, n: int = 1) -> None:
        with self.lock:
            self.counts[name] += n

    def delivered(self, mid: str | None, latency_ms: float | None, retried: bool) -> None:
        """One acknowledged record: counters, latency and status under one lock."""
        with self.lock:
            c = self.counts
            c["sent"] += 1
            if retried:
                c["successful_retries"] += 1
            if latency_ms is not None:
                self.latency.add(latency_ms)
                self.latency_sum_ms += latency_ms
                self.latency_n += 1
            if mid is not None:
                self._set_locked(mid, SENT)

    def take_delivery_deltas(self) -> tuple[int, int, float, int]:
        """``(ok, failed, latency_sum_ms, latency_n)`` since the last call (health feed)."""
        self.fold()
        with self.lock:
            ok, failed = self.counts["sent"], self.counts["failed"]
            out = (ok - self._fed[0], failed - self._fed[1], self.latency_sum_ms - self._fed[2],
                   self.latency_n - self._fed[3])
            self._fed = (ok, failed, self.latency_sum_ms, self.latency_n)
        return out

    # -- reads ----------------------------------------------------------------------------

    def status(self, mid: str) -> str | None:
        return self._status.get(mid)

    def pending(self) -> list[str]:
        items = list(self._status.items())  # one C-level copy: safe against concurrent inserts
        return [m for m, s in items if s == PENDING]

    def snapshot(self) -> dict[str, Any]:
        self.fold()
        with self.lock:
            counts = dict(self.counts)
            lat = self.latency.snapshot()
        pending = list(self._status.values()).count(PENDING)
        done = counts["sent"] + counts["failed"]
        return {
            "messages_sent": counts["sent"],
            "messages_failed": counts["failed"],
            "error_rate": counts["failed"] / done if done else 0.0,
            "messages_pending": pending,
            "messages_retried": counts["retried"],
            "messages_dead_lettered": counts["dead_lettered"],
            "messages_spooled": counts["spooled"],
            "messages_drained_from_spool": counts["drained"],
            "duplicates": counts["duplicates"],
            "latency_stats": lat,
            "retry_stats": {
                "total_retries": counts["retried"],
                "successful_retries": counts["successful_retries"],
            },
        }
