"""Bounded message status and cheap statistics for the producer.

``MessageTracker`` owns its state; other parts change it through its methods. The send path
and the delivery reports take three C-level entry points once (``store``, ``ack``,
``take_watcher``) so the fast path costs one dict store and one deque append per record.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from kafka_reliable.latency import LatencyRing

PENDING = "pending"
SENT = "sent"
RETRYING = "retrying"
DLQ = "dlq"
SPOOLED = "spooled"
DUPLICATE = "duplicate"

#: Statuses after which a record needs nothing more from this process.
TERMINAL = frozenset({SENT, RETRYING, DLQ, SPOOLED, DUPLICATE})

Watcher = Callable[[str, str, str | None], None]


class _Batch:
    __slots__ = ("remaining", "done")

    def __init__(self, n: int) -> None:
        self.remaining = n
        self.done = threading.Event()
        if n == 0:
            self.done.set()


class MessageTracker:
    """Status per message id (the newest ``capacity`` ids) and counters.

    Updated from the send path and from delivery callbacks (any thread that polls); one lock,
    held for a few dict operations. ``final_hook(mid)`` hears every record that settles (the
    durable ledger's settlement queue); ``ack_sink({topic: [latency_s, ...]})`` receives each
    fold of fast-path acknowledgements (the Prometheus metrics).
    """

    def __init__(
        self,
        capacity: int = 100_000,
        latency_window: int = 10_000,
        *,
        final_hook: Callable[[str], None] | None = None,
        ack_sink: Callable[[dict[str, list[float | None]]], None] | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"status capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._lock = threading.Lock()
        # A plain dict keeps first-insertion order (a status update keeps its place), so the
        # oldest ids are at its front; they are evicted in bulk (``_evict``), never one by one.
        self._status: dict[str, str] = {}
        self._batch_of: dict[str, _Batch] = {}
        self._latency = LatencyRing(latency_window)
        self._counts: dict[str, int] = {
            "sent": 0,
            "failed": 0,
            "retried": 0,
            "dead_lettered": 0,
            "spooled": 0,
            "duplicates": 0,
            "successful_retries": 0,
            "drained": 0,
        }
        self._dlq_by_topic: dict[str, int] = {}
        self._latency_sum_ms = 0.0
        self._latency_n = 0
        self._fed: tuple[int, int, float, int] = (0, 0, 0.0, 0)
        #: ``(topic, latency_s)`` of records acknowledged on the fast path, folded in bulk.
        self._acks: deque[tuple[str, float | None]] = deque()
        self._watchers: dict[str, Watcher] = {}
        self.final_hook = final_hook
        self._ack_sink = ack_sink
        #: The fast path's entry points (C-level: no Python frame per record):
        #: ``store(mid, status)``, ``ack((topic, latency_s))``, ``take_watcher(mid, None)``.
        self.store: Callable[[str, str], None] = self._status.__setitem__
        self.ack: Callable[[tuple[str, float | None]], None] = self._acks.append
        self.take_watcher: Callable[[str, None], Watcher | None] = self._watchers.pop
        #: ``watch_count()``: records with a watcher (C-level, checked per fast-path report).
        self.watch_count: Callable[[], int] = self._watchers.__len__

    @property
    def watching(self) -> bool:
        """Whether any record has a watcher (the fast path checks before taking one)."""
        return bool(self._watchers)

    def fold(self) -> int:
        """Fold fast-path acknowledgements into counters, latency and metrics; evict old ids.

        Status was already set per record when its report arrived; this is the bookkeeping
        that would cost a lock per record. Returns how many were folded.
        """
        q = self._acks
        if not q:
            if len(self._status) > self.capacity:
                self._evict()
            return 0
        by_topic: dict[str, list[float | None]] = {}
        lats: list[float] = []
        n = 0
        while q:
            try:
                topic, lat = q.popleft()
            except IndexError:
                break
            n += 1
            by_topic.setdefault(topic, []).append(lat)
            if lat is not None:
                lats.append(lat * 1000.0)
        with self._lock:
            self._latency.add_many(lats)
            self._counts["sent"] += n
            self._latency_sum_ms += sum(lats)
            self._latency_n += len(lats)
        if len(self._status) > self.capacity:
            self._evict()
        if self._ack_sink is not None and by_topic:
            self._ack_sink(by_topic)
        return n

    # -- send path --------------------------------------------------------------------

    def add(self, mid: str, status: str = PENDING) -> None:
        """Track a new id. A single dict store (atomic under the GIL); eviction takes the lock."""
        st = self._status
        st[mid] = status
        if len(st) > self.capacity:
            self._evict()

    def forget(self, mid: str) -> None:
        """A record the caller was told was not sent (its call raised)."""
        self._status.pop(mid, None)
        self._watchers.pop(mid, None)

    def _evict(self) -> None:
        """Drop the oldest ids beyond ``capacity`` (their keys listed in one C-level pass: no
        thread can change the dict while ``list`` runs)."""
        st = self._status
        with self._lock:
            excess = len(st) - self.capacity
            if excess > 0:
                for mid in list(itertools.islice(st, excess)):
                    st.pop(mid, None)

    def add_batch(self, mids: Iterable[str]) -> _Batch:
        ids = list(mids)
        batch = _Batch(len(ids))
        with self._lock:
            for mid in ids:
                self._batch_of[mid] = batch
        return batch

    # -- outcomes (any thread) ------------------------------------------------------------

    def watch(self, mid: str, fn: Watcher) -> None:
        """``fn(mid, status, error_class)`` once, when this record's status becomes final
        (from a producer thread; keep it to a hand-off); a record already final is reported
        at once. Leaves the fast path on."""
        self._watchers[mid] = fn
        status = self._status.get(mid)
        if status in TERMINAL and self._watchers.pop(mid, None) is not None:
            fn(mid, status, None)

    def unwatch(self, mid: str) -> None:
        self._watchers.pop(mid, None)

    def _set_locked(self, mid: str, status: str, error_class: str | None = None) -> None:
        self._status[mid] = status
        if status in TERMINAL:
            if self.final_hook is not None:
                self.final_hook(mid)
            if self._watchers:
                w = self._watchers.pop(mid, None)
                if w is not None:
                    w(mid, status, error_class)
            if self._batch_of:
                batch = self._batch_of.pop(mid, None)
                if batch is not None:
                    batch.remaining -= 1
                    if batch.remaining <= 0:
                        batch.done.set()

    def settle(self, mid: str | None, status: str, error_class: str | None = None) -> None:
        """Record a new status; release a waiting batch when its last record settles."""
        if mid is None:
            return
        with self._lock:
            self._set_locked(mid, status, error_class)
        if len(self._status) > self.capacity:
            self._evict()

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n

    def routed(self, topic: str, status: str) -> None:
        """A failed record reached ``.retry`` (RETRYING) or ``.dlq`` (DLQ)."""
        with self._lock:
            if status == RETRYING:
                self._counts["retried"] += 1
            else:
                self._counts["dead_lettered"] += 1
                self._dlq_by_topic[topic] = self._dlq_by_topic.get(topic, 0) + 1

    def delivered(self, mid: str | None, latency_ms: float | None, retried: bool) -> None:
        """One acknowledged record: counters, latency and status under one lock."""
        with self._lock:
            c = self._counts
            c["sent"] += 1
            if retried:
                c["successful_retries"] += 1
            if latency_ms is not None:
                self._latency.add(latency_ms)
                self._latency_sum_ms += latency_ms
                self._latency_n += 1
            if mid is not None:
                self._set_locked(mid, SENT)

    def take_delivery_deltas(self) -> tuple[int, int, float, int]:
        """``(ok, failed, latency_sum_ms, latency_n)`` since the last call (health feed)."""
        self.fold()
        with self._lock:
            ok, failed = self._counts["sent"], self._counts["failed"]
            out = (
                ok - self._fed[0],
                failed - self._fed[1],
                self._latency_sum_ms - self._fed[2],
                self._latency_n - self._fed[3],
            )
            self._fed = (ok, failed, self._latency_sum_ms, self._latency_n)
        return out

    # -- reads ----------------------------------------------------------------------------

    def status(self, mid: str) -> str | None:
        return self._status.get(mid)

    def counter(self, name: str) -> int:
        return self._counts[name]

    def dlq_by_topic(self) -> dict[str, int]:
        """Records this producer dead-lettered, per source topic (a copy)."""
        with self._lock:
            return dict(self._dlq_by_topic)

    def pending(self) -> list[str]:
        items = list(self._status.items())  # one C-level copy: safe against concurrent inserts
        return [m for m, s in items if s == PENDING]

    def snapshot(self) -> dict[str, Any]:
        self.fold()
        with self._lock:
            counts = dict(self._counts)
            lat = self._latency.snapshot()
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
