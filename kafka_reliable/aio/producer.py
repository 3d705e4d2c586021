"""AsyncReliableProducer: the reliable producer for asyncio services.

One implementation underneath: every record goes through the sync producer's own admission
path (``prepare`` → ``send_prepared``: dedup verdict, rate limit, circuit breaker, durable
ledger, produce) and is tracked, routed and spooled by it. This front end adds three things:

- a future per awaited record, resolved from the producer's settle listener
  (``await send_message`` → the id once acknowledged, or :class:`DeliveryRoutedError`);
- Redis dedup claims on ``redis.asyncio`` (:mod:`kafka_reliable.aio.dedup`), batched: the
  claims of every send queued while one round trip is out go in the next one;
- whatever may block (a rate limiter in ``block`` mode, the durable ledger, an open circuit
  breaker, a sync Redis client, ``flush``/``close``/stats/DLQ tools) runs off the loop.

Cancelling a task that awaits ``send_message`` never cancels the record: once the call has
been made, the record is claimed and handed to Kafka by a task of the producer's own.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry

from kafka_reliable.aio.admission import Admission, queue_marks, same_loop
from kafka_reliable.aio.dedup import AsyncClaims, async_client_from_url
from kafka_reliable.aio.errors import DeliveryRoutedError
from kafka_reliable.aio.settle import SettleHub
from kafka_reliable.aio.tools import SyncTools
from kafka_reliable.config import HealthThresholds, RetryConfig, TopicNaming
from kafka_reliable.dedup import RedisDeduplicator
from kafka_reliable.errors import ConfigurationError, KafkaReliableError, ProducerClosedError
from kafka_reliable.health import CircuitBreaker, RateLimiter
from kafka_reliable.producer import ReliableKafkaProducer
from kafka_reliable.producer import tracking as T
from kafka_reliable.producer.records_in import PreparedRecord, UserHeaders
from kafka_reliable.producer.retry_manager import DEFAULT_WORKER_GROUP
from kafka_reliable.serialization import Serializer
from kafka_reliable.wal import DEFAULT_MAX_BYTES

log = logging.getLogger(__name__)

#: A caller sending in a tight loop gives the loop a turn every this many records (each
#: ``wait=False`` send returns without suspending; ~10 µs each, so the loop is held < 1 ms).
YIELD_EVERY = 64
_DELIVERED = frozenset({T.SENT, T.DUPLICATE})


class AsyncReliableProducer(Admission, SyncTools):
    """``ReliableKafkaProducer`` for asyncio: the same keyword arguments (a test holds the two
    signatures equal), statuses, stats, health, DLQ methods and spool. Use ``async with`` (or
    ``await start()`` / ``await close()``)."""

    def __init__(
        self,
        *,
        bootstrap_servers: str | Iterable[str] | None = None,
        producer_config: Mapping[str, Any] | None = None,
        retry_config: RetryConfig | None = None,
        dlq_max_size: int = 10000,
        enable_deduplication: bool = False,
        redis_client: Any = None,
        redis_url: str | None = None,
        dedup_ttl_s: float = 3600.0,
        dedup_on_unavailable: str = "fail_open",
        dedup_key_fn: Callable[[str, bytes | None, bytes], bytes | str] | None = None,
        health_thresholds: HealthThresholds | Mapping[str, Any] | None = None,
        health_window_s: float = 60.0,
        alert_cooldown_s: float = 60.0,
        metrics_registry: CollectorRegistry | None = None,
        enable_metrics: bool = True,
        circuit_breaker: CircuitBreaker | None = None,
        rate_limiter: RateLimiter | None = None,
        enable_tracing: bool | None = None,
        serializer: Serializer | None = None,
        spool_path: str | os.PathLike[str] | None = None,
        topic_naming: TopicNaming | None = None,
        message_id_header: bool = True,
        status_capacity: int = 100000,
        worker_group: str = DEFAULT_WORKER_GROUP,
        maintenance_interval_s: float = 1.0,
        dlq_check_interval_s: float = 5.0,
        durability: str = "memory",
        fsync: str = "never",
        fsync_interval_ms: int = 100,
        spool_max_bytes: int = DEFAULT_MAX_BYTES,
        unsafe_producer_config: bool = False,
    ) -> None:
        self._kwargs = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        _refuse_async_redis(redis_client)
        # The write-ahead log's write is a memory copy; only fsync="always" waits on the disk.
        self._setup(rate_limiter, circuit_breaker, durability == "spool" and fsync == "always")

    def _setup(self, limiter: Any, breaker: Any, blocking: bool) -> None:
        self._sync: ReliableKafkaProducer | None = None
        self._hub: SettleHub | None = None
        self._claims: AsyncClaims | None = None
        self._start_lock = asyncio.Lock()
        self._setup_admission(limiter, breaker, blocking)
        self._closed = False
        self._sends = 0
        #: Batches still being handed over (their callers may have been cancelled).
        self._batches: set[asyncio.Future[None]] = set()

    # ---- lifecycle ------------------------------------------------------------------------

    async def start(self) -> ReliableKafkaProducer:
        """Build the sync producer off the loop (idempotent); return it."""
        if self._sync is not None:
            return self._sync
        async with self._start_lock:
            if self._sync is None:
                if self._closed:
                    raise ProducerClosedError("start() after close()")
                loop = asyncio.get_running_loop()
                p = await asyncio.to_thread(ReliableKafkaProducer, **self._kwargs)
                hub = SettleHub(loop)
                dedup = p.deduplicator
                if isinstance(dedup, RedisDeduplicator):
                    url = self._kwargs.get("redis_url")
                    if url is not None:
                        self._claims = AsyncClaims(dedup, async_client_from_url(url))
                    else:  # a sync client was given: its round trips run off the loop
                        self._blocking_admission = True
                    self._queued = True
                self._queue_high, self._queue_resume = queue_marks(p)
                self._hub, self._sync = hub, p
        return self._sync

    async def close(self, timeout: float = 30.0) -> None:
        """Deliver what can be delivered within ``timeout``; spool the rest (nothing is lost).
        Awaited sends still pending resolve (``spooled`` raises DeliveryRoutedError)."""
        if self._closed:
            return
        self._closed = True
        await self._handed_over()
        p = self._sync
        if p is not None:
            await asyncio.to_thread(p.close, timeout)
            assert self._hub is not None
            self._hub.resolve_all(p.get_message_status)
        if self._claims is not None:
            await self._claims.aclose()
        self._executor.shutdown(wait=False)

    async def __aenter__(self) -> AsyncReliableProducer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---- sending --------------------------------------------------------------------------

    async def send_message(
        self,
        topic: str,
        value: Any,
        key: Any = None,
        headers: UserHeaders = None,
        *,
        wait: bool = True,
    ) -> str:
        """Send one record. ``wait=True``: return its id once Kafka acknowledged it (or it was a
        duplicate: not sent, status ``duplicate``); raise DeliveryRoutedError when it was routed
        to ``.retry`` / ``.dlq`` / the spool instead. ``wait=False``: return once it is queued."""
        if self._closed:
            raise ProducerClosedError("send_message() after close()")
        p = self._sync or await self.start()
        if not wait and not self._queued:
            if self._queue_full(p):
                await self._queue_room(p)
            mid = p.send_message(
                topic, value, key, headers
            )  # the sync call itself, fast path included
            self._sends += 1
            if not self._sends % YIELD_EVERY:
                await asyncio.sleep(0)
            return mid
        hub = self._listening(p) if wait else self._hub
        assert hub is not None
        rec = p.prepare(topic, value, key)
        fut = self._expect(p, hub, rec.message_id) if wait else None
        try:
            if self._queued:
                await self._enqueue(rec, headers)
            else:
                if self._queue_full(p):
                    await self._queue_room(p)
                p.send_prepared(rec, headers)
        except BaseException:
            if fut is not None:
                hub.forget(rec.message_id)
                p.unwatch(rec.message_id)
            raise
        if fut is None:
            return rec.message_id
        status, error_class = await fut
        if status in _DELIVERED:
            return rec.message_id
        raise DeliveryRoutedError(status, error_class, rec.message_id)

    async def send_batch(
        self,
        topic: str,
        messages: Iterable[Any],
        key_extractor: Callable[[Any], Any] | None = None,
        timeout_s: float = 120.0,
        headers: UserHeaders = None,
    ) -> dict[str, Any]:
        """Send many records; return the sync ``send_batch`` counts once every record is
        delivered or routed (or ``timeout_s`` passed: the rest count as ``pending``)."""
        if self._closed:
            raise ProducerClosedError("send_batch() after close()")
        p = self._sync or await self.start()
        hub = self._listening(p)
        recs: list[PreparedRecord] = []
        for i, m in enumerate(messages):
            try:
                recs.append(p.prepare(topic, m, key_extractor(m) if key_extractor else None))
            except KafkaReliableError as exc:
                raise type(exc)(f"message {i} of the batch: {exc}") from exc
        futs = [self._expect(p, hub, r.message_id) for r in recs]
        admission = asyncio.ensure_future(self._admit_all(recs, headers))
        self._batches.add(admission)
        admission.add_done_callback(self._batches.discard)
        try:
            await asyncio.shield(admission)  # cancelled or not, every record is handed over
        except BaseException:
            for r in recs:
                hub.forget(r.message_id)
                p.unwatch(r.message_id)
            raise
        if futs:
            await asyncio.wait(futs, timeout=timeout_s)
        mids = [r.message_id for r in recs]
        statuses = [p.get_message_status(m) for m in mids]
        for m in mids:
            hub.forget(m)
            p.unwatch(m)
        return {
            "total": len(recs),
            "sent": statuses.count(T.SENT),
            "failed": sum(1 for s in statuses if s in (T.RETRYING, T.DLQ, T.SPOOLED)),
            "duplicates": statuses.count(T.DUPLICATE),
            "pending": statuses.count(T.PENDING),
            "message_ids": mids,
        }

    def _listening(self, p: ReliableKafkaProducer) -> SettleHub:
        """The hub (checked to belong to the running loop)."""
        hub = self._hub
        assert hub is not None
        same_loop(hub)
        return hub

    @staticmethod
    def _expect(p: ReliableKafkaProducer, hub: SettleHub, message_id: str) -> asyncio.Future[Any]:
        """A future for the record, resolved by the producer's per-record ``watch`` (registered
        before the record is handed over; the sync fast path stays on)."""
        fut = hub.expect(message_id)
        p.watch(message_id, hub.on_watch)
        return fut

    async def _admit_all(self, recs: list[PreparedRecord], headers: UserHeaders) -> None:
        if self._queued:
            results = await asyncio.gather(
                *(self._enqueue(r, headers) for r in recs), return_exceptions=True
            )
            errors = [e for e in results if isinstance(e, BaseException)]
            if errors:
                raise errors[0]
            return
        p = self.sync
        for start in range(0, len(recs), YIELD_EVERY):
            if self._queue_full(p):
                await self._queue_room(p)
            for r in recs[start : start + YIELD_EVERY]:
                p.send_prepared(r, headers)
            await asyncio.sleep(0)

    async def flush(self, timeout: float = 30.0) -> int:
        """Hand over what is queued, then wait (off the loop) for reports and routing;
        return records still undelivered."""
        await self._handed_over()
        return await asyncio.to_thread(self.sync.flush, timeout)

    async def _handed_over(self) -> None:
        """Wait until every record already passed to a send call is in the producer."""
        while self._batches or self._admitter is not None:
            await asyncio.wait([*self._batches, *([self._admitter] if self._admitter else [])])


def _refuse_async_redis(client: Any) -> None:
    if client is not None and inspect.iscoroutinefunction(getattr(client, "execute_command", None)):
        raise ConfigurationError(
            "redis_client is a redis.asyncio client: pass redis_url= instead (the async "
            "producer opens its own redis.asyncio connection for claims, a sync one for "
            "releases)"
        )
