"""One handler call (:class:`Call`), how its outcome is counted, and the route of a failure.

The engine *begins* a call (the record read, deserialized, checked against its key's lane),
a driver runs the handler, and the engine *finishes* the call (offset finished, or the
failure routed). :class:`InlineCalls` is the sync driver (``run()``): it calls the handler on
the engine's thread. The asyncio driver (``kafka_reliable.aio.engine``) runs it on an event
loop and hands the finished call back. Both fill a call the same way (``Call.failed_attempt``
/ ``Call.succeeded``) and follow one local-retry policy (``Invoker.final``).
"""

from __future__ import annotations

import inspect
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any, Protocol

from kafka_reliable.consumer import routes
from kafka_reliable.consumer.keyorder import KeyLane
from kafka_reliable.consumer.metrics import ConsumerMetrics
from kafka_reliable.consumer.pending import Pending
from kafka_reliable.consumer.record import ConsumerRecord, RawHeaders, exception_name
from kafka_reliable.consumer.routes import GroupTopicNaming, Origin
from kafka_reliable.consumer.settings import ConsumerSettings
from kafka_reliable.consumer.stats import ConsumerStats
from kafka_reliable.health.monitor import HealthMonitor
from kafka_reliable.routing import Route
from kafka_reliable.scheduling import TP

if TYPE_CHECKING:
    from confluent_kafka import Message

Handler = Callable[[ConsumerRecord], Any]


_record_init = ConsumerRecord.__init__


class Call(ConsumerRecord):
    """One handler call: the record handed to the handler (a ``ConsumerRecord``: one object per
    record), where it was read, and (once run) how it went."""

    __slots__ = ("tp", "at", "gen", "lane", "pending", "msg", "failed", "failures", "ok_s",
                 "skipped")  # fmt: skip

    def __init__(self, topic: str, partition: int, offset: int, key: bytes | None, value: Any,
                 headers: RawHeaders, timestamp: int, message_id: str | None, attempt: int,
                 raw_value: bytes | None, group: str, last_error: str | None,
                 due_at_ms: int | None, tp: TP, at: int, gen: int,
                 lane: KeyLane[Pending] | None, pending: Pending | None,
                 msg: Message | None) -> None:  # fmt: skip
        _record_init(self, topic, partition, offset, key, value, headers, timestamp,
                     message_id, attempt, raw_value, group, (tp[0], tp[1], at), last_error,
                     due_at_ms)  # fmt: skip
        #: The partition and offset this delivery was read at, and the partition's generation.
        self.tp, self.at, self.gen = tp, at, gen
        #: The key-order lane (``ordering="key"``), else None.
        self.lane = lane
        #: The retry record this call delivers again; None for a source record.
        self.pending = pending
        #: The source record as read (its headers and timestamp route a failure).
        self.msg = msg
        self.failed: Exception | None = None
        #: ``(exception name, seconds)`` of each failed attempt.
        self.failures: list[tuple[str, float]] | None = None
        self.ok_s: float | None = None
        #: Not run (stopping, revoked, handed back): not finished, read again after a restart.
        self.skipped = False

    def failed_attempt(self, exc: Exception, seconds: float, final: bool) -> None:
        if self.failures is None:
            self.failures = []
        self.failures.append((exception_name(exc), seconds))
        if final:
            self.failed = exc

    def origin(self) -> Origin:
        """Where the record belongs (the headers of a failure record are built from it)."""
        if self.pending is not None:
            return self.pending.origin()
        m = self.msg
        assert m is not None
        _, ts = m.timestamp()
        return Origin(
            topic=self.tp[0],
            partition=self.tp[1],
            offset=self.at,
            timestamp_ms=ts if ts > 0 else None,
            message_id=self.message_id,
            headers=m.headers() or [],  # type: ignore[arg-type]
        )


class CallDriver(Protocol):
    """Runs the handler of the calls the engine begins."""

    def hand(self, call: Call) -> bool:
        """Run (or queue) the call; True when it ran and the engine may finish it now."""

    def ready(self) -> bool:
        """Whether the engine may read more records this turn (False: all slots taken)."""

    def collect(self) -> None:
        """Hand the calls that came back to the engine (once per loop turn)."""

    def drain(self, deadline: float, tps: Collection[TP] | None) -> None:
        """Wait (up to ``deadline``) for the open calls of ``tps`` (all when None) to come back;
        no further call of them starts."""


class Invoker:
    """Counts outcomes, decides local retries, and says what a failure means."""

    def __init__(
        self,
        *,
        s: ConsumerSettings,
        naming: GroupTopicNaming,
        stats: ConsumerStats,
        metrics: ConsumerMetrics,
        health: HealthMonitor,
        stop: threading.Event,
    ) -> None:
        self.s, self.naming = s, naming
        self.stats, self.metrics, self.health, self.stop = stats, metrics, health, stop
        #: outcomes not yet given to the health monitor: ok, failed, latency sum (ms)
        self._window: list[float] = [0, 0, 0.0]
        #: Seconds of the handler calls that succeeded, per topic, not yet counted (``fold``).
        self.ok_s: defaultdict[str, list[float]] = defaultdict(list)

    def final(self, exc: Exception, attempt: int) -> bool:
        """Whether attempt ``attempt`` (0-based) failing with ``exc`` ends the local retries."""
        s = self.s
        return (
            isinstance(exc, routes.Retry)
            or (bool(s.non_retriable_exceptions) and isinstance(exc, s.non_retriable_exceptions))
            or attempt >= s.local_retries
            or self.stop.is_set()
        )

    def account(self, call: Call) -> None:
        """Count a call's attempts; a success waits in ``ok_s`` until ``fold`` (per batch)."""
        topic, win = call.topic, self._window
        for name, dt in call.failures or ():
            self.stats.counts["failed"] += 1
            self.stats.failed_by_class[name] = self.stats.failed_by_class.get(name, 0) + 1
            self.stats.handler_ms.add(dt * 1000)
            self.metrics.failed(topic, name, dt)
            win[1] += 1
            win[2] += dt * 1000
        if call.ok_s is not None:
            self.succeeded(topic, call.ok_s)

    def succeeded(self, topic: str, seconds: float) -> None:
        """A handler call returned: counted with its batch (only floats are kept meanwhile: no
        record stays alive for the garbage collector to scan)."""
        self.ok_s[topic].append(seconds)

    def fold(self) -> None:
        """Count the successes waiting in ``ok_s`` (stats, metrics per topic, health window)."""
        if not self.ok_s:
            return
        by_topic, self.ok_s = self.ok_s, defaultdict(list)
        n, total_s = 0, 0.0
        for topic, seconds in by_topic.items():
            self.metrics.handled_many(topic, seconds)
            self.stats.handler_ms.add_many([s * 1000 for s in seconds])
            n += len(seconds)
            total_s += sum(seconds)
        self.stats.counts["handled"] += n
        self._window[0] += n
        self._window[2] += total_s * 1000

    def route(self, origin: Origin, exc: Exception) -> Route:
        """The group's retry topic or DLQ for a record whose handler raised ``exc``."""
        name = exception_name(exc)
        cls = routes.classify_exception(exc, name, self.s.non_retriable_exceptions)
        delay = exc.delay_ms if isinstance(exc, routes.Retry) else None
        return routes.failure_route(
            origin,
            classification=cls,
            error_message=str(exc) or name,
            retry_config=self.s.retry_config,
            naming=self.naming,
            now_ms=int(time.time() * 1000),
            delay_ms=delay,
        )

    def flush_health(self) -> None:
        """Count what waits (``fold``) and give the outcomes since the last call to the health
        monitor (once per loop turn)."""
        self.fold()
        ok, failed, ms = self._window
        if ok or failed:
            self.health.record_deliveries(int(ok), int(failed), ms, int(ok + failed))
            self._window = [0, 0, 0.0]


class InlineCalls:
    """The sync driver: the handler runs on the engine's thread, local retries included."""

    def __init__(self, handler: Handler, invoker: Invoker) -> None:
        self.handler, self.invoker = handler, invoker
        self.delay_s = invoker.s.local_retry_delay_ms / 1000
        #: Set when the handler returned an awaitable (``run()`` then raises ConsumerError).
        self.misuse: str | None = None

    def hand(self, call: Call) -> bool:
        attempt = 0
        while True:
            t0 = time.perf_counter()
            try:
                result = self.handler(call)
                if result is not None and inspect.isawaitable(result):
                    self._refuse(result, call)
                    return True
            except Exception as exc:  # noqa: BLE001 - the handler's failure is what we route
                final = self.invoker.final(exc, attempt)
                call.failed_attempt(exc, time.perf_counter() - t0, final)
                if final:
                    return True
                attempt += 1
                if self.delay_s:
                    time.sleep(self.delay_s)
                continue
            call.ok_s = time.perf_counter() - t0
            return True

    def _refuse(self, result: Any, call: Call) -> None:
        """The handler returned an awaitable: never counted as handled; the consumer stops and
        the record is read again (by ``run_async``, which awaits it)."""
        close = getattr(result, "close", None)
        if callable(close):
            close()
        call.skipped = True
        self.misuse = (
            f"the handler returned {type(result).__name__} instead of running: "
            "an async handler needs kafka_reliable.aio.run_async"
        )
        self.invoker.stop.set()

    def ready(self) -> bool:
        return True

    def collect(self) -> None:
        return None

    def drain(self, deadline: float, tps: Collection[TP] | None) -> None:
        return None
