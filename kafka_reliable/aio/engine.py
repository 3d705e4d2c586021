"""The consumer engine's calls run on an event loop (``run_async``): :class:`AsyncCalls`.

The engine (``kafka_reliable.consumer.engine``) keeps its thread and does everything it does
for ``run()``: reading, parking, deserializing, scheduling retries, routing failures,
committing. Only its call driver differs: :class:`AsyncCalls` wraps each begun call in a
:class:`Work` for the loop (:class:`~kafka_reliable.aio.consumer.Runner`) and gives the
finished ones back to the engine's ``steps.finish`` on the engine's thread. The runner runs
the works of one *serial* (a source partition; with ``ordering="key"`` a partition and key)
one after the other and different serials concurrently. Commits stay contiguous: the offset
tracker only commits the finished prefix.

``ordering="key"``: when a record of a key fails, the runner holds that serial and hands the
works queued behind it back unrun; the engine routes the failure first (the key is then
blocked) and passes them through the key check again (``steps.reenter``), so they are parked
behind the failed record exactly as with ``run()``.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Collection, Hashable
from dataclasses import dataclass

from kafka_reliable.consumer.engine import Engine
from kafka_reliable.consumer.invoke import Call
from kafka_reliable.scheduling import TP

#: How long the engine waits for an outcome when it may not read more (all slots taken).
OUTCOME_WAIT_S = 0.05

#: Sent to the runner after a held serial's failure was routed: the serial may run again.
Release = tuple[str, Hashable]


@dataclass(slots=True, eq=False)
class Work:
    """A call on its way through the loop."""

    call: Call
    serial: Hashable | None
    #: ``ordering="key"`` source record: a failure holds its serial (see the module docstring).
    holds_on_failure: bool = False
    #: Handed back unrun by a held serial.
    returned: bool = False


class AsyncCalls:
    """The engine's call driver for an event loop; ``submit`` sends a batch to the loop."""

    def __init__(
        self, engine: Engine, *, submit: Callable[[list[Work | Release]], None], concurrency: int
    ) -> None:
        self.engine = engine
        self.stop_event = engine.stop_event
        self.invoker = engine.invoker
        self._submit = submit
        self.max_open = max(concurrency * 4, engine.s.max_poll_records)
        self.outcomes: collections.deque[Work] = collections.deque()
        self.wake = threading.Event()
        self._outbox: list[Work | Release] = []
        self._open = 0
        self._open_by_tp: collections.Counter[TP] = collections.Counter()
        #: ``(partition, generation)`` being revoked: their queued works do not start.
        self._revoking: set[tuple[TP, int | None]] = set()
        self.stopping = False

    # ---- the loop side (any thread) ------------------------------------------------------
    def stale(self, w: Work) -> bool:
        """Whether a work must not start: its partition is revoked, or the engine stops."""
        c = w.call
        return (
            self.stopping
            or (c.tp, c.gen) in self._revoking
            or not self.engine.own.current(c.tp, c.gen)
        )

    def done(self, w: Work) -> None:
        self.outcomes.append(w)
        self.wake.set()

    # ---- the engine side (its thread) ----------------------------------------------------
    def hand(self, call: Call) -> bool:
        if call.pending is not None:  # a key's retries are already one at a time (KeyLane)
            self._hand(Work(call, None))
            return False
        keyed = self.engine.s.key_ordering
        serial = (call.tp, call.gen, call.key) if keyed else (call.tp, call.gen)
        holds = keyed and call.lane is not None and call.key is not None
        self._hand(Work(call, serial, holds))
        return False

    def ready(self) -> bool:
        if self._open < self.max_open:
            return True
        self.wake.wait(OUTCOME_WAIT_S)  # every slot taken: wait for an outcome, read nothing
        self.wake.clear()
        self.collect()
        return False

    def collect(self) -> None:
        while self.outcomes:
            self._outcome(self.outcomes.popleft())
        if self._outbox:
            batch, self._outbox = self._outbox, []
            self._submit(batch)

    def drain(self, deadline: float, tps: Collection[TP] | None) -> None:
        gens = self.engine.gens
        if tps is None:
            self.stopping = True
        else:
            self._revoking = {x for x in self._revoking if gens.get(x[0]) == x[1]}
            self._revoking.update((tp, gens.get(tp)) for tp in tps)

        def open_() -> bool:
            return bool(self._open) if tps is None else any(tp in self._open_by_tp for tp in tps)

        self.collect()
        while open_() and time.monotonic() < deadline:
            self.wake.wait(min(OUTCOME_WAIT_S, max(0.0, deadline - time.monotonic())))
            self.wake.clear()
            self.collect()

    def _hand(self, w: Work) -> None:
        self._open += 1
        self._open_by_tp[w.call.tp] += 1
        self._outbox.append(w)

    def _outcome(self, w: Work) -> None:
        c = w.call
        self._open -= 1
        self._open_by_tp[c.tp] -= 1
        if self._open_by_tp[c.tp] <= 0:
            del self._open_by_tp[c.tp]
        if w.returned:
            again = self.engine.steps.reenter(c) if self.engine.own.current(c.tp, c.gen) else None
            if again is not None:
                w.returned = False
                self._hand(w)
            return
        self.engine.steps.finish(c)
        if w.holds_on_failure and c.failed is not None:
            self._outbox.append(("release", w.serial))


__all__ = ["AsyncCalls", "Release", "Work"]
