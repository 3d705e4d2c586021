"""``await run_async(consumer, handler, concurrency=100)``: a ReliableConsumer with an ``async def``
handler.

The consumer's engine keeps its one thread (reading, routing failures to the group's retry
topic/DLQ, key parking, due-time retries, contiguous commits); its call driver
(:mod:`kafka_reliable.aio.engine`) has the handler run on the caller's event loop. Records of
one partition — or of one key with
``ordering="key"`` — are handled one after the other, in order; different ones concurrently,
at most ``concurrency`` at a time. A failure is routed exactly as with ``run()``.

Stop it with ``consumer.stop()`` (thread-safe) or by cancelling the task that awaits
``run_async``: handler calls already started finish (within ``shutdown_timeout_s``), what they
finished is committed, the rest is read again by the next owner; a call still running when
``shutdown_timeout_s`` is over is cancelled (its record is read again). ``run_async`` installs no
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

from kafka_reliable.aio.engine import AsyncCalls, Release, Work
from kafka_reliable.consumer import ConsumerError, ConsumerRecord, ReliableConsumer
from kafka_reliable.consumer.engine import Engine
from kafka_reliable.consumer.invoke import Call
from kafka_reliable.errors import ConfigurationError

log = logging.getLogger(__name__)

AsyncHandler = Callable[[ConsumerRecord], Awaitable[Any]]


class Runner:
    """On the loop: runs works serial by serial, at most ``concurrency`` handler calls at once."""

    def __init__(self, handler: AsyncHandler, concurrency: int) -> None:
        self.handler = handler
        self.sem = asyncio.Semaphore(concurrency)
        self.calls: AsyncCalls | None = None
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

    def cancel(self) -> None:
        """Cancel the handler calls still running (the engine has stopped waiting for them)."""
        for task in list(self.tasks):
            task.cancel()

    def _start(self, serial: Hashable | None, q: collections.deque[Work]) -> None:
        task = asyncio.ensure_future(self._chain(serial, q))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _hand_back(self, w: Work) -> None:
        assert self.calls is not None
        w.returned = True
        self.calls.done(w)

    async def _chain(self, serial: Hashable | None, q: collections.deque[Work]) -> None:
        calls = self.calls
        assert calls is not None
        w: Work | None = None
        try:
            while q:
                w = q.popleft()
                if calls.stale(w):
                    w.call.skipped = True
                else:
                    async with self.sem:
                        await self._call(calls, w.call)
                calls.done(w)
                if w.call.failed is not None and w.holds_on_failure:
                    self.held.add(serial)
                    while q:
                        self._hand_back(q.popleft())
                w = None
        except asyncio.CancelledError:
            for left in ([w] if w is not None else []) + list(q):
                left.call.skipped = True
                calls.done(left)
            q.clear()
            raise
        finally:
            if serial is not None and self.queues.get(serial) is q:
                del self.queues[serial]

    async def _call(self, calls: AsyncCalls, call: Call) -> None:
        """The handler with local retries (the policy of ``run()``: ``Invoker.final``)."""
        invoker, attempt = calls.invoker, 0
        while True:
            t0 = time.perf_counter()
            try:
                result = self.handler(call)
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:  # noqa: BLE001 - the handler's failure is what we route
                final = invoker.final(exc, attempt)
                call.failed_attempt(exc, time.perf_counter() - t0, final)
                if final:
                    return
                attempt += 1
                if invoker.s.local_retry_delay_ms:
                    await asyncio.sleep(invoker.s.local_retry_delay_ms / 1000)
                continue
            call.ok_s = time.perf_counter() - t0
            return


async def run_async(
    consumer: ReliableConsumer, handler: AsyncHandler, *, concurrency: int = 100
) -> None:
    """Hand every record to ``await handler(record)`` until ``consumer.stop()`` or cancellation.
    Raises ConsumerError when it cannot start or a client fails fatally (as ``run()``)."""
    if not callable(handler):
        raise ConfigurationError(f"handler must be an async callable, got {type(handler).__name__}")
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ConfigurationError(f"concurrency must be an int >= 1, got {concurrency!r}")
    if consumer.running:
        raise ConsumerError("this ReliableConsumer is already running")
    loop = asyncio.get_running_loop()
    runner = Runner(handler, concurrency)
    done: asyncio.Future[None] = loop.create_future()

    def submit(batch: list[Work | Release]) -> None:
        loop.call_soon_threadsafe(runner.submit, batch)

    def driver(engine: Engine) -> AsyncCalls:
        runner.calls = AsyncCalls(engine, submit=submit, concurrency=concurrency)
        log.info("consumer handler calls run on the event loop (concurrency %d)", concurrency)
        return runner.calls

    def finish(exc: BaseException | None) -> None:
        runner.cancel()  # calls the shutdown did not wait for: their records are read again
        if not done.done():
            done.set_exception(exc) if exc is not None else done.set_result(None)

    def body() -> None:
        error: BaseException | None = None
        try:
            consumer.run_engine(driver)
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is left to tell
            loop.call_soon_threadsafe(finish, error)

    thread = threading.Thread(target=body, name="kafka-reliable-consumer-async", daemon=True)
    thread.start()
    try:
        await asyncio.shield(done)
    except asyncio.CancelledError:
        consumer.stop()  # handler calls started finish; what they finished is committed
        try:
            await done
        except Exception:  # noqa: BLE001 - the cancellation is what the caller hears about
            log.exception("consumer stopped with an error after cancellation")
        raise


class AsyncReliableConsumer(ReliableConsumer):
    """``ReliableConsumer`` with ``await run_async(handler, concurrency=100)`` (see the module)."""

    async def run_async(self, handler: AsyncHandler, concurrency: int = 100) -> None:
        await run_async(self, handler, concurrency=concurrency)
