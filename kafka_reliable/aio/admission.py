"""The AsyncReliableProducer's admission queue: records waiting for their Redis claim (batched:
the claims of every send queued while one round trip is out go in the next one) or for an
admission that may block (rate limiter in ``block`` mode, the durable ledger, an open circuit
breaker), handed to the sync producer off the loop where needed. Mixed into the producer."""

from __future__ import annotations

import asyncio
import collections
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kafka_reliable.aio.dedup import AsyncClaims
from kafka_reliable.aio.errors import AsyncUsageError
from kafka_reliable.aio.settle import SettleHub
from kafka_reliable.health import CircuitBreaker, RateLimiter
from kafka_reliable.producer import ReliableKafkaProducer
from kafka_reliable.producer.records_in import PreparedRecord, UserHeaders

#: Records handed over per slice before the loop gets a turn (batches, the admission queue).
ADMIT_SLICE = 256
#: librdkafka's default ``queue.buffering.max.messages``.
DEFAULT_QUEUE_MAX = 100_000
#: Sends wait (asynchronously) while librdkafka's queue is above this fraction of its bound,
#: until it is below ``QUEUE_RESUME``: the sync path would wait in ``poll()``, on the loop.
QUEUE_HIGH, QUEUE_RESUME = 0.9, 0.7


class _Admission:
    """A record waiting to be claimed (Redis) and handed to the producer."""

    __slots__ = ("rec", "headers", "handed")

    def __init__(
        self, rec: PreparedRecord, headers: UserHeaders, handed: asyncio.Future[None]
    ) -> None:
        self.rec, self.headers, self.handed = rec, headers, handed


class Admission:
    """The admission queue of ``AsyncReliableProducer`` (its ``sync``, ``_hub``, ``_claims``)."""

    _hub: SettleHub | None
    _claims: AsyncClaims | None
    sync: Any

    def _setup_admission(
        self, limiter: RateLimiter | None, breaker: CircuitBreaker | None, writes_block: bool
    ) -> None:
        """``writes_block``: a send waits on the disk (the write-ahead log with fsync="always")."""
        self._queue: collections.deque[_Admission] = collections.deque()
        self._admitter: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="kafka-reliable-aio-send"
        )
        self._blocking_admission = writes_block or (
            limiter is not None and getattr(limiter, "mode", "block") == "block"
        )
        self._breaker = breaker
        self._queued = self._blocking_admission or breaker is not None
        self._queue_high = self._queue_resume = DEFAULT_QUEUE_MAX

    def _enqueue(self, rec: PreparedRecord, headers: UserHeaders) -> asyncio.Future[None]:
        assert self._hub is not None
        handed: asyncio.Future[None] = same_loop(self._hub).create_future()
        self._queue.append(_Admission(rec, headers, handed))
        if self._admitter is None:
            self._admitter = asyncio.ensure_future(self._admit_loop())
        return handed

    async def _admit_loop(self) -> None:
        try:
            while self._queue:
                n = min(len(self._queue), ADMIT_SLICE)
                items = [self._queue.popleft() for _ in range(n)]
                try:
                    await self._admit(items)
                except BaseException as exc:  # noqa: BLE001 - every waiter hears of it
                    for it in items:
                        _fail(it.handed, exc)
                    if not isinstance(exc, Exception):
                        raise
        finally:
            self._admitter = None

    async def _admit(self, items: list[_Admission]) -> None:
        if self._queue_full(self.sync):
            await self._queue_room(self.sync)
        verdicts: list[bool | None] = [None] * len(items)
        if self._claims is not None:
            verdicts = list(await self._claims.claim([it.rec.dedup_key or b"" for it in items]))
        if self._blocking_admission or (
            self._breaker is not None and self._breaker.state != "closed"
        ):
            errors = await asyncio.get_running_loop().run_in_executor(
                self._executor, self._hand_over, items, verdicts
            )
        else:
            errors = self._hand_over(items, verdicts)
            await asyncio.sleep(0)
        refused = [
            it.rec.dedup_key
            for it, err, fresh in zip(items, errors, verdicts, strict=True)
            if err is not None and fresh and it.rec.dedup_key is not None
        ]
        if refused and self._claims is not None:  # our claims: the producer leaves them to us
            await self._claims.release(refused)
        for it, err in zip(items, errors, strict=True):
            if err is not None:
                _fail(it.handed, err)
            elif not it.handed.done():
                it.handed.set_result(None)

    def _queue_full(self, p: ReliableKafkaProducer) -> bool:
        return queued_in_client(p) >= self._queue_high

    async def _queue_room(self, p: ReliableKafkaProducer) -> None:
        """Back-pressure without blocking the loop: wait while librdkafka's queue drains (the
        producer's poller serves the delivery reports meanwhile)."""
        while queued_in_client(p) > self._queue_resume:
            await asyncio.sleep(0.002)

    def _hand_over(
        self, items: list[_Admission], verdicts: list[bool | None]
    ) -> list[BaseException | None]:
        """``send_prepared`` for each record with its dedup verdict; the error of each record
        that was refused (its claim, taken here, is released by the caller)."""
        p = self.sync
        errors: list[BaseException | None] = []
        for it, fresh in zip(items, verdicts, strict=True):
            try:
                p.send_prepared(it.rec, it.headers, claimed=fresh)
                errors.append(None)
            except Exception as exc:  # noqa: BLE001 - handed to that record's caller
                errors.append(exc)
        return errors


def same_loop(hub: SettleHub) -> asyncio.AbstractEventLoop:
    loop = asyncio.get_running_loop()
    if loop is not hub.loop:
        raise AsyncUsageError(
            "this AsyncReliableProducer belongs to the event loop that started it; "
            "create one producer per loop"
        )
    return loop


def queued_in_client(p: ReliableKafkaProducer) -> int:
    """Records in librdkafka's queue."""
    return p.queue_depth()[0]


def queue_marks(p: ReliableKafkaProducer) -> tuple[int, int]:
    bound = p.queue_depth()[1]
    return max(1, int(bound * QUEUE_HIGH)), max(0, int(bound * QUEUE_RESUME))


def _fail(fut: asyncio.Future[None], exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)
        fut.exception()  # retrieved: a cancelled caller must not leave "never retrieved" noise
