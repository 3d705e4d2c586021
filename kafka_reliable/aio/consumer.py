"""``await run_async(consumer, handler, concurrency=100)``: a ReliableConsumer with an ``async def``
handler.

The consumer's engine keeps its one thread (reading, routing failures to the group's retry
topic/DLQ, key parking, due-time retries, contiguous commits: :mod:`kafka_reliable.aio.engine`);
the handler runs on the caller's event loop. Records of one partition — or of one key with
``ordering="key"`` — are handled one after the other, in order; different ones concurrently,
at most ``concurrency`` at a time. A failure is routed exactly as with ``run()``.

Stop it with ``consumer.stop()`` (thread-safe) or by cancelling the task that awaits
``run_async``: handler calls already started finish (within ``shutdown_timeout_s``), what they
finished is committed, the rest is read again by the next owner. ``run_async`` installs no
signal handlers (the application's loop owns them).

:class:`AsyncReliableConsumer` is ``ReliableConsumer`` with this as a method.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any

from kafka_reliable.aio.engine import AsyncEngine, Release, Work
from kafka_reliable.config import redact
from kafka_reliable.consumer import ConsumerError, ConsumerRecord, ReliableConsumer, routes
from kafka_reliable.consumer.record import exception_name
from kafka_reliable.consumer.settings import ConsumerSettings
from kafka_reliable.errors import ConfigurationError

log = logging.getLogger(__name__)

AsyncHandler = Callable[[ConsumerRecord], Awaitable[Any]]


class Runner:
    """On the loop: runs works serial by serial, at most ``concurrency`` handler calls at once."""

    def __init__(self, handler: AsyncHandler, concurrency: int, settings: ConsumerSettings) -> None:
        self.handler = handler
        self.s = settings
        self.sem = asyncio.Semaphore(concurrency)
        self.engine: AsyncEngine | None = None
        self.queues: dict[Hashable, collections.deque[Work]] = {}
        self.held: set[Hashable] = set()
        self.tasks: set[asyncio.Task[None]] = set()

    def submit(self, batch: Sequence[Work | Release]) -> None:
        for item in batch:
            if isinstance(item, tuple):
                self.held.discard(item[1])
                continue
            w = item
            if w.serial is None:
                self._start(None, collections.deque([w]))
            elif w.serial in self.held:
                self._hand_back(w)
            elif w.serial in self.queues:
                self.queues[w.serial].append(w)
            else:
                q = self.queues[w.serial] = collections.deque([w])
                self._start(w.serial, q)

    def _start(self, serial: Hashable | None, q: collections.deque[Work]) -> None:
        task = asyncio.ensure_future(self._chain(serial, q))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _hand_back(self, w: Work) -> None:
        assert self.engine is not None
        w.returned = True
        self.engine.done(w)

    async def _chain(self, serial: Hashable | None, q: collections.deque[Work]) -> None:
        engine = self.engine
        assert engine is not None
        w: Work | None = None
        try:
            while q:
                w = q.popleft()
                if engine.stale(w):
                    w.skipped = True
                else:
                    async with self.sem:
                        await self._call(w)
                engine.done(w)
                if w.failed is not None and w.holds_on_failure:
                    self.held.add(serial)
                    while q:
                        self._hand_back(q.popleft())
                w = None
        except asyncio.CancelledError:
            for left in ([w] if w is not None else []) + list(q):
                left.skipped = True
                engine.done(left)
            q.clear()
            raise
        finally:
            if serial is not None and self.queues.get(serial) is q:
                del self.queues[serial]

    async def _call(self, w: Work) -> None:
        """The handler with local retries, like the sync engine's ``_call``."""
        s = self.s
        for i in range(s.local_retries + 1):
            t0 = time.perf_counter()
            try:
                result = self.handler(w.rec)
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:  # noqa: BLE001 - the handler's failure is what we route
                w.failures.append((exception_name(exc), time.perf_counter() - t0))
                final = isinstance(exc, routes.Retry) or (
                    bool(s.non_retriable_exceptions) and isinstance(exc, s.non_retriable_exceptions))
                assert self.engine is not None
                if final or i == s.local_retries or self.engine.stop_event.is_set():
                    w.failed = exc
                    return
                if s.local_retry_delay_ms:
                    await asyncio.sleep(s.local_retry_delay_ms / 1000)
                continue
            w.ok_s = time.perf_counter() - t0
            return


async def run_async(consumer: ReliableConsumer, handler: AsyncHandler, *, concurrency: int = 100) -> None:
    """Hand every record to ``await handler(record)`` until ``consumer.stop()`` or cancellation.
    Raises ConsumerError when it cannot start or a client fails fatally (as ``run()``)."""
    if not callable(handler):
        raise ConfigurationError(f"handler must be an async callable, got {type(handler).__name__}")
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ConfigurationError(f"concurrency must be an int >= 1, got {concurrency!r}")
    if not consumer._running.acquire(blocking=False):
        raise ConsumerError("this ReliableConsumer is already running")
    loop = asyncio.get_running_loop()
    runner = Runner(handler, concurrency, consumer.settings)
    done: asyncio.Future[None] = loop.create_future()

    def submit(batch: list[Work | Release]) -> None:
        loop.call_soon_threadsafe(runner.submit, batch)

    def finish(exc: BaseException | None) -> None:
        if not done.done():
            done.set_exception(exc) if exc is not None else done.set_result(None)

    def body() -> None:
        error: BaseException | None = None
        try:
            _run_engine(consumer, runner, submit, concurrency)
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
            error = exc
        finally:
            consumer._running.release()
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is left to tell
            loop.call_soon_threadsafe(finish, error)

    thread = threading.Thread(target=body, name="kafka-reliable-consumer-async", daemon=True)
    consumer._stop.clear()
    try:
        thread.start()
    except BaseException:
        consumer._running.release()
        raise
    try:
        await asyncio.shield(done)
    except asyncio.CancelledError:
        consumer.stop()  # handler calls started finish; what they finished is committed
        try:
            await done
        except Exception:  # noqa: BLE001 - the cancellation is what the caller hears about
            log.exception("consumer stopped with an error after cancellation")
        raise


def _run_engine(consumer: ReliableConsumer, runner: Runner, submit: Callable[[list[Work | Release]], None],
                concurrency: int) -> None:
    engine = AsyncEngine(
        submit=submit, concurrency=concurrency, s=consumer.settings, bootstrap=consumer.bootstrap_servers,
        deserializer=consumer._deserializer, naming=consumer.naming, metrics=consumer.metrics,
        health=consumer._health, stats=consumer.stats, stop=consumer._stop,
    )
    runner.engine = engine
    consumer._engine = engine
    log.info("consumer starting (async handler, concurrency %d): group %s, topics %s, %s", concurrency,
             consumer.settings.group_id, list(consumer.settings.topics), redact(consumer.settings.consumer))
    try:
        try:
            engine.start()
            while not consumer._stop.is_set():
                engine.step()
        finally:
            engine.shutdown()
        fatal = engine.events.fatal
        if fatal:
            raise ConsumerError(f"consumer stopped on a fatal client error: {fatal}")
        log.info("consumer stopped: %s", {k: v for k, v in consumer.stats.counts.items() if v})
    finally:
        _close_dlq_client(consumer)


def _close_dlq_client(consumer: ReliableConsumer) -> None:
    """What ``run()`` does on its way out: the DLQ-count client of this run is closed."""
    lock = getattr(consumer, "_dlq_lock", None)
    if lock is None:
        return
    with lock:
        companions = getattr(consumer, "_companions", None)
        if companions is not None:
            companions.close()
            consumer._companions = None


class AsyncReliableConsumer(ReliableConsumer):
    """``ReliableConsumer`` with ``await run_async(handler, concurrency=100)`` (see the module)."""

    async def run_async(self, handler: AsyncHandler, concurrency: int = 100) -> None:
        await run_async(self, handler, concurrency=concurrency)
