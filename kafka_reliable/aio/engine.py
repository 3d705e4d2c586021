"""The consumer's engine with its handler calls on an event loop (``run_async``).

The sync :class:`~kafka_reliable.consumer.engine.Engine` does everything on one thread and
calls the handler in between. Here the same thread still reads, routes, parks, schedules
retries and commits, but each record's handler call is a :class:`Work` handed to the loop
(:class:`~kafka_reliable.aio.consumer.Runner`), which runs the works of one *serial* (a source
partition; with ``ordering="key"`` a partition and key) one after the other and different
serials concurrently. Outcomes come back through a queue and finish the record exactly as the
sync engine would after its handler call: offset finished (commits stay contiguous: the
``OffsetTracker`` only commits the finished prefix), or routed to the group's retry topic/DLQ.

``ordering="key"``: when a record of a key fails, the runner holds that serial and hands the
records queued behind it back unrun; the engine routes the failure first (the key is then
blocked) and passes them through the key check again, so they are parked behind the failed
record exactly as the sync engine would park them.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, Message, TopicPartition

from kafka_reliable.consumer.engine import Engine, wall_ms
from kafka_reliable.consumer.keyorder import KeyLane
from kafka_reliable.consumer.pending import Pending
from kafka_reliable.consumer.record import ConsumerRecord, exception_name, message_id
from kafka_reliable.consumer.routes import Origin
from kafka_reliable.headers import user_headers
from kafka_reliable.worker.scheduler import TP

#: How long the engine waits for an outcome when it may not read more (all slots taken).
OUTCOME_WAIT_S = 0.05


@dataclass(slots=True, eq=False)
class Work:
    """One handler call: what to call it with, and (set on the loop) how it went."""

    rec: ConsumerRecord
    tp: TP
    offset: int
    gen: int
    serial: Hashable | None
    #: ``ordering="key"`` source record: a failure holds its serial (see the module docstring).
    holds_on_failure: bool = False
    origin: Origin | None = None
    key: bytes | None = None
    raw: bytes | None = None
    lane: KeyLane[Pending] | None = None
    pending: Pending | None = None
    failed: Exception | None = None
    #: ``(exception name, seconds)`` of each failed attempt; seconds of the successful one.
    failures: list[tuple[str, float]] = field(default_factory=list)
    ok_s: float | None = None
    #: Not run: stopping, revoked, or handed back by a held serial.
    skipped: bool = False
    returned: bool = False


#: Sent to the runner after a held serial's failure was routed: the serial may run again.
Release = tuple[str, Hashable]


class AsyncEngine(Engine):
    """``Engine`` whose handler calls are works for an event loop (``submit`` sends a batch)."""

    def __init__(self, *, submit: Callable[[list[Work | Release]], None], concurrency: int, **kw: Any) -> None:
        super().__init__(handler=_never_called, **kw)
        self._submit = submit
        self.max_open = max(concurrency * 4, self.s.max_poll_records)
        self.outcomes: collections.deque[Work] = collections.deque()
        self.wake = threading.Event()
        self._outbox: list[Work | Release] = []
        self._open = 0
        self._open_by_tp: collections.Counter[TP] = collections.Counter()
        self.revoking: set[TP] = set()
        self.stopping = False

    # ---- the loop side's questions and answers (any thread) ------------------------------
    def stale(self, w: Work) -> bool:
        """Whether a work must not start: its partition was revoked, or the engine stops."""
        return self.stopping or w.tp in self.revoking or self.gens.get(w.tp) != w.gen

    def done(self, w: Work) -> None:
        self.outcomes.append(w)
        self.wake.set()

    # ---- the loop -----------------------------------------------------------------------
    def step(self) -> None:
        super().step()
        self._take_outcomes()

    def _poll(self) -> None:
        self._take_outcomes()
        if self._open >= self.max_open:  # every slot taken: wait for an outcome, read nothing
            self.wake.wait(OUTCOME_WAIT_S)
            self.wake.clear()
            self._take_outcomes()
            return
        super()._poll()

    def _hand(self, w: Work) -> None:
        self._open += 1
        self._open_by_tp[w.tp] += 1
        self._outbox.append(w)

    def _flush_outbox(self) -> None:
        if self._outbox:
            batch, self._outbox = self._outbox, []
            self._submit(batch)

    # ---- beginnings: the sync engine's steps up to the handler call -----------------------
    def _on_source(self, m: Message, tp: TP, gen: int, lane: KeyLane[Pending] | None) -> None:
        offset = m.offset() or 0
        if not self.tracker.track(tp, offset):
            return
        key, raw = m.key(), m.value()
        hdrs = m.headers() or []
        ts_type, ts = m.timestamp()
        origin = Origin(topic=tp[0], partition=tp[1], offset=offset, timestamp_ms=ts if ts_type and ts > 0 else None,
                        message_id=message_id(hdrs, tp[0], tp[1], offset), headers=hdrs)  # type: ignore[arg-type]
        if lane is not None and key is not None and lane.blocked(key):
            self._park(lane, key, origin, tp, gen, raw)
            return
        try:
            value = self.deser(raw, tp[0])
        except Exception as exc:  # noqa: BLE001 - any deserializer failure makes a poison record
            self._poison(origin, tp, offset, gen, key, raw, f"cannot deserialize {tp[0]}[{tp[1]}]@{offset}: "
                         f"{exception_name(exc)}: {exc}")
            return
        rec = ConsumerRecord(tp[0], tp[1], offset, key, value, user_headers(hdrs), ts if ts > 0 else 0,  # type: ignore[arg-type]
                             origin.message_id, 0, raw, self.s.group_id, (tp[0], tp[1], offset))
        keyed = self.s.key_ordering
        self._hand(Work(rec, tp, offset, gen, (tp, gen, key) if keyed else (tp, gen),
                        holds_on_failure=keyed and lane is not None and key is not None,
                        origin=origin, key=key, raw=raw, lane=lane))

    def _run_retry(self, p: Pending) -> None:
        origin = p.origin()
        lane = self.lanes.lane(p.tp) if p.key is not None and p.ident is not None else None
        try:
            value = self.deser(p.value, p.source_topic)
        except Exception as exc:  # noqa: BLE001 - any deserializer failure makes a poison record
            self._release(lane, p)
            self._poison(origin, p.tp, p.offset, p.gen, p.key, p.value,
                         f"cannot deserialize {p.tp[0]}[{p.tp[1]}]@{p.offset}: {exception_name(exc)}: {exc}")
            return
        f = p.failure
        rec = ConsumerRecord(origin.topic, origin.partition, f.original_offset if f.original_offset is not None else -1,
                             p.key, value, user_headers(p.headers), f.original_timestamp_ms or p.timestamp_ms,
                             p.message_id, f.attempt, p.value, self.s.group_id, (p.tp[0], p.tp[1], p.offset),
                             None if p.parked else f"{f.error_class}: {f.error_message}", p.due_ms)
        # a key's retries are already one at a time (KeyLane); others need no order
        self._hand(Work(rec, p.tp, p.offset, p.gen, None, origin=origin, lane=lane, pending=p))

    # ---- outcomes: the sync engine's steps after the handler call --------------------------
    def _take_outcomes(self) -> None:
        while self.outcomes:
            self._outcome(self.outcomes.popleft())
        self._flush_outbox()

    def _outcome(self, w: Work) -> None:
        self._open -= 1
        self._open_by_tp[w.tp] -= 1
        if self._open_by_tp[w.tp] <= 0:
            del self._open_by_tp[w.tp]
        if self.gens.get(w.tp) != w.gen:  # revoked meanwhile: the next owner reads it again
            if w.holds_on_failure and w.failed is not None:
                self._outbox.append(("release", w.serial))
            return
        if w.returned:
            self._again(w)
            return
        self._account(w)
        if w.skipped:
            return  # not finished: read again after a restart
        if w.pending is not None:
            self._retry_outcome(w, w.pending)
        elif w.failed is None:
            self.tracker.finish(w.tp, w.offset)
        else:
            assert w.origin is not None
            route = self._failure_route(w.origin, w.failed)
            if route.to_retry and w.lane is not None and w.key is not None:
                w.lane.expect(w.key, (w.tp[1], w.offset))
            self._send(route, w.tp, w.offset, w.gen, w.key, w.raw, w.tp[0])
            if w.holds_on_failure:
                self._outbox.append(("release", w.serial))

    def _retry_outcome(self, w: Work, p: Pending) -> None:
        if w.failed is None:
            self.tracker.finish(p.tp, p.offset)
            if p.failure.attempt > 0:
                self.stats.counts["successful_retries"] += 1
            self._release(w.lane, p)
            return
        assert w.origin is not None
        route = self._failure_route(w.origin, w.failed)
        if w.lane is not None and route.to_retry:
            assert p.key is not None and p.ident is not None
            w.lane.requeue(p.key, p.ident)
        else:
            self._release(w.lane, p)
        self._send(route, p.tp, p.offset, p.gen, p.key, p.value, p.source_topic)

    def _again(self, w: Work) -> None:
        """A record handed back by a held serial: through the key check again (parked when the
        key is now blocked), else handed to the loop again in its order."""
        assert w.origin is not None
        if w.lane is not None and w.key is not None and w.lane.blocked(w.key):
            self._park(w.lane, w.key, w.origin, w.tp, w.gen, w.raw)
            return
        w.returned = w.skipped = False
        self._hand(w)

    def _account(self, w: Work) -> None:
        for name, dt in w.failures:
            self._count_failure(w.rec.topic, name, dt)
        if w.ok_s is not None:
            self.stats.counts["handled"] += 1
            self.stats.handler_ms.add(w.ok_s * 1000)
            self.metrics.handled(w.rec.topic, w.ok_s)
            self.health.record_delivery(True, w.ok_s * 1000)

    # ---- rebalances and shutdown ------------------------------------------------------
    def _await_open(self, deadline: float, tps: set[TP] | None = None) -> None:
        """Take outcomes until no work (of ``tps``) is open, or the deadline."""
        def open_() -> bool:
            return bool(self._open) if tps is None else any(tp in self._open_by_tp for tp in tps)

        self._take_outcomes()
        while open_() and time.monotonic() < deadline:
            self.wake.wait(min(OUTCOME_WAIT_S, max(0.0, deadline - time.monotonic())))
            self.wake.clear()
            self._take_outcomes()

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        tps = {(p.topic, p.partition) for p in partitions}
        self.revoking |= tps  # queued works of these partitions are not started
        try:
            self._await_open(time.monotonic() + min(self.s.shutdown_timeout_s, 10.0), tps)
            super()._on_revoke(consumer, partitions)
        finally:
            self.revoking -= tps

    def shutdown(self) -> None:
        self.stopping = True
        self._await_open(time.monotonic() + self.s.shutdown_timeout_s)
        super().shutdown()


def _never_called(_rec: ConsumerRecord) -> None:  # pragma: no cover - the async engine never calls it
    raise AssertionError("AsyncEngine hands records to the loop")


__all__ = ["AsyncEngine", "Release", "Work", "wall_ms"]
