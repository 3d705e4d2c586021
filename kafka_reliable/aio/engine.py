"""The consumer's engine with its handler calls on an event loop (``run_async``).

The sync :class:`~kafka_reliable.consumer.engine.Engine` does everything on one thread and
calls the handler in between. Here the same thread, and the same code, still reads, parks,
deserializes, schedules retries, routes failures and commits; only the handler call differs:
:class:`DeferringInvoker` turns it into a :class:`Work` for the loop
(:class:`~kafka_reliable.aio.consumer.Runner`) and unwinds the engine's step right there
(:class:`Deferred`). The runner runs the works of one *serial* (a source partition; with
``ordering="key"`` a partition and key) one after the other and different serials
concurrently. Outcomes come back through a queue and finish the record as the sync engine does
after its handler call: offset finished (commits stay contiguous: the ``OffsetTracker`` only
commits the finished prefix), or routed to the group's retry topic/DLQ.

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

from kafka_reliable.consumer.engine import Engine
from kafka_reliable.consumer.invoke import Invoker
from kafka_reliable.consumer.keyorder import KeyLane
from kafka_reliable.consumer.pending import Pending
from kafka_reliable.consumer.record import ConsumerRecord
from kafka_reliable.consumer.routes import Origin
from kafka_reliable.scheduling import TP

#: How long the engine waits for an outcome when it may not read more (all slots taken).
OUTCOME_WAIT_S = 0.05


class Deferred(BaseException):
    """Unwinds the engine's step at the handler call: the record went to the loop."""


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
    msg: Message | None = None
    lane: KeyLane[Pending] | None = None
    pending: Pending | None = None
    failed: Exception | None = None
    #: ``(exception name, seconds)`` of each failed attempt; seconds of the successful one.
    failures: list[tuple[str, float]] = field(default_factory=list)
    ok_s: float | None = None
    #: Not run: stopping, revoked, or handed back by a held serial.
    skipped: bool = False
    returned: bool = False

    @property
    def key(self) -> bytes | None:
        return self.rec.key


class DeferringInvoker(Invoker):
    """``call`` hands the record to the loop instead of calling the handler; ``account``
    counts an outcome that came back (the parent's counters, metrics and health window)."""

    def __init__(self, engine: AsyncEngine, **kw: Any) -> None:
        super().__init__(**kw)
        self.engine = engine

    def call(self, rec: ConsumerRecord) -> Exception | None:
        self.engine.defer(rec)
        raise Deferred

    def account(self, w: Work) -> None:
        for name, dt in w.failures:
            self._count_failure(w.rec.topic, name, dt)
        if w.ok_s is not None:
            self.stats.counts["handled"] += 1
            self.stats.handler_ms.add(w.ok_s * 1000)
            self.metrics.handled(w.rec.topic, w.ok_s)
            self._window[0] += 1
            self._window[2] += w.ok_s * 1000


#: Sent to the runner after a held serial's failure was routed: the serial may run again.
Release = tuple[str, Hashable]


class AsyncEngine(Engine):
    """``Engine`` whose handler calls are works for an event loop (``submit`` sends a batch)."""

    def __init__(self, *, submit: Callable[[list[Work | Release]], None], concurrency: int, **kw: Any) -> None:
        super().__init__(handler=_never_called, **kw)
        self.invoker = DeferringInvoker(self, s=self.s, handler=_never_called, naming=self.naming, stats=self.stats,
                                        metrics=self.metrics, health=self.health, stop=self.stop_event)
        self._submit = submit
        self.max_open = max(concurrency * 4, self.s.max_poll_records)
        self.outcomes: collections.deque[Work] = collections.deque()
        self.wake = threading.Event()
        self._outbox: list[Work | Release] = []
        self._open = 0
        self._open_by_tp: collections.Counter[TP] = collections.Counter()
        self._context: tuple[TP, int, Message | None, KeyLane[Pending] | None, Pending | None] | None = None
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

    # ---- the engine's own steps, up to the handler call ----------------------------------
    def _on_source(self, m: Message, tp: TP, gen: int, lane: KeyLane[Pending] | None) -> None:
        self._context = (tp, gen, m, lane, None)
        try:
            super()._on_source(m, tp, gen, lane)
        except Deferred:
            pass
        finally:
            self._context = None

    def _run_retry(self, p: Pending) -> None:
        lane = self.lanes.lane(p.tp) if p.key is not None and p.ident is not None else None
        self._context = (p.tp, p.gen, None, lane, p)
        try:
            super()._run_retry(p)
        except Deferred:
            pass
        finally:
            self._context = None

    def defer(self, rec: ConsumerRecord) -> None:
        """The handler call of the record being stepped: a work for the loop."""
        assert self._context is not None, "handler call outside a record's step"
        tp, gen, m, lane, p = self._context
        if p is not None:  # a key's retries are already one at a time (KeyLane); others need no order
            self._hand(Work(rec, p.tp, p.offset, gen, None, lane=lane, pending=p))
            return
        keyed = self.s.key_ordering
        self._hand(Work(rec, tp, rec.offset, gen, (tp, gen, rec.key) if keyed else (tp, gen),
                        holds_on_failure=keyed and lane is not None and rec.key is not None, msg=m, lane=lane))

    def _hand(self, w: Work) -> None:
        self._open += 1
        self._open_by_tp[w.tp] += 1
        self._outbox.append(w)

    def _flush_outbox(self) -> None:
        if self._outbox:
            batch, self._outbox = self._outbox, []
            self._submit(batch)

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
        assert isinstance(self.invoker, DeferringInvoker)
        self.invoker.account(w)
        if w.skipped:
            return  # not finished: read again after a restart
        if w.pending is not None:
            self._retry_outcome(w, w.pending)
        elif w.failed is None:
            self.tracker.finish(w.tp, w.offset)
        else:
            route = self.invoker.route(self._source_origin(w), w.failed)
            if route.to_retry and w.lane is not None and w.key is not None:
                w.lane.expect(w.key, (w.tp[1], w.offset))
            self._send(route, w.tp, w.offset, w.gen, w.key, w.rec.raw_value, w.tp[0])
            if w.holds_on_failure:
                self._outbox.append(("release", w.serial))

    def _source_origin(self, w: Work) -> Origin:
        m = w.msg
        assert m is not None
        _, ts = m.timestamp()
        return Origin(topic=w.tp[0], partition=w.tp[1], offset=w.offset, timestamp_ms=ts if ts > 0 else None,
                      message_id=w.rec.message_id, headers=m.headers() or [])  # type: ignore[arg-type]

    def _retry_outcome(self, w: Work, p: Pending) -> None:
        if w.failed is None:
            self.tracker.finish(p.tp, p.offset)
            if p.failure.attempt > 0:
                self.stats.counts["successful_retries"] += 1
            self._release(w.lane, p)
            return
        route = self.invoker.route(p.origin(), w.failed)
        if w.lane is not None and route.to_retry:
            assert p.key is not None and p.ident is not None
            w.lane.requeue(p.key, p.ident)
        else:
            self._release(w.lane, p)
        self._send(route, p.tp, p.offset, p.gen, p.key, p.value, p.source_topic)

    def _again(self, w: Work) -> None:
        """A record handed back by a held serial: through the key check again (parked when the
        key is now blocked), else handed to the loop again in its order."""
        key = w.key
        if w.lane is not None and key is not None and w.lane.blocked(key):
            self._park(w.lane, key, self._source_origin(w), w.tp, w.gen, w.rec.raw_value)
            return
        w.returned = w.skipped = False
        self._hand(w)

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


__all__ = ["AsyncEngine", "Deferred", "Release", "Work"]
