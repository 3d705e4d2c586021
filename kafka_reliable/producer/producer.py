"""ReliableKafkaProducer: the facade that composes the producer's parts.

Nothing is silently lost: a record is either delivered, routed to ``<topic>.retry`` /
``<topic>.dlq`` with error headers, or written to the local spool. Bad input raises to the
caller before anything is sent (and before a dedup claim is kept).

Parts (each owns its state): ``SendPath`` (admission and produce), ``DeliveryReports``,
``CompanionWriter`` (.retry / .dlq / spool), ``SpoolDrainer``, ``DlqWatch``,
``ConnectionState``, ``MessageTracker``, ``Maintenance`` (background threads) and, in
durable mode, ``DurableLedger``.
"""

from __future__ import annotations

import itertools
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry

from kafka_reliable.config import (
    HealthThresholds,
    RetryConfig,
    TopicNaming,
    check_topic_name,
)
from kafka_reliable.dedup import Deduplicator
from kafka_reliable.errors import KafkaReliableError, ProducerClosedError
from kafka_reliable.health import CircuitBreaker, HealthMonitor, RateLimiter
from kafka_reliable.producer import assembly
from kafka_reliable.producer import tracking as T
from kafka_reliable.producer.connection import ConnectionState
from kafka_reliable.producer.maintenance import Maintenance, Poller
from kafka_reliable.producer.metrics import ProducerMetrics
from kafka_reliable.producer.readings import Readings
from kafka_reliable.producer.records_in import PreparedRecord, UserHeaders
from kafka_reliable.producer.retry_manager import DEFAULT_WORKER_GROUP
from kafka_reliable.serialization import JsonSerializer, Serializer, serialize_key
from kafka_reliable.topics import CompanionTopics
from kafka_reliable.wal import DEFAULT_MAX_BYTES

log = logging.getLogger(__name__)


class ReliableKafkaProducer(Readings):
    """A Kafka producer that routes every failure somewhere a person can see it.

    Keyword arguments follow the feature document. ``producer_config`` takes kafka-python
    style keys (translated) or librdkafka's dotted keys (passed through).
    """

    def __init__(
        self,
        *,
        bootstrap_servers: str | Iterable[str] | None = None,
        producer_config: Mapping[str, Any] | None = None,
        retry_config: RetryConfig | None = None,
        dlq_max_size: int = 10_000,
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
        status_capacity: int = 100_000,
        worker_group: str = DEFAULT_WORKER_GROUP,
        maintenance_interval_s: float = 1.0,
        dlq_check_interval_s: float = 5.0,
        durability: str = "memory",
        fsync: str = "never",
        fsync_interval_ms: int = 100,
        spool_max_bytes: int = DEFAULT_MAX_BYTES,
        unsafe_producer_config: bool = False,
    ) -> None:
        o = assembly.Options(**{k: v for k, v in locals().items() if k != "self"})
        assembly.validate(
            o.dlq_max_size, o.durability, o.fsync, o.fsync_interval_ms, o.spool_max_bytes
        )
        self._configure(o)
        self._open(o)
        self._ids = itertools.count(1)
        self._valid_topics: set[str] = set()
        self._topics_seen: dict[str, None] = {}
        self._closed = False
        self._last_stats: dict[str, Any] = {}
        self._assemble(o)
        self._start_upkeep(o.maintenance_interval_s)
        log.info("ReliableKafkaProducer ready: %s", assembly.loggable(self._conf))

    def _configure(self, o: assembly.Options) -> None:
        """Settings, health, the connection state, the client config and dedup."""
        self.retry_config = o.retry_config or RetryConfig()
        self.naming = o.topic_naming or TopicNaming()
        self.dlq_max_size = o.dlq_max_size
        self.durability = o.durability
        self._serializer: Serializer = o.serializer or JsonSerializer()
        self._health = HealthMonitor(
            thresholds=o.health_thresholds,
            window_s=o.health_window_s,
            alert_cooldown_s=o.alert_cooldown_s,
        )
        self._breaker = o.circuit_breaker
        self._connection = ConnectionState(self._health, o.circuit_breaker)
        self._conf = assembly.client_config(
            o.bootstrap_servers,
            o.producer_config,
            unsafe=o.unsafe_producer_config,
            connection=self._connection,
        )
        self._dedup: Deduplicator | None = assembly.deduplicator(o)
        self._id_prefix = secrets.token_hex(6) + "-"

    def _open(self, o: assembly.Options) -> None:
        """Local state first: a spool or log that cannot be opened fails before any client
        or thread exists, so a failed constructor leaks nothing."""
        local = assembly.open_local_state(
            o.spool_path,
            f"{os.getpid()}-{self._id_prefix[:-1]}",
            durability=o.durability,
            with_id_header=o.message_id_header,
            max_bytes=o.spool_max_bytes,
            fsync=o.fsync,
            fsync_interval_ms=o.fsync_interval_ms,
        )
        self._local, self.spool, self._ledger = local, local.spool, local.ledger
        try:
            self._producer = assembly.new_client(self._conf)
        except BaseException:
            if self._ledger is not None:
                self._ledger.close()
            self.spool.close()
            raise

    def _assemble(self, o: assembly.Options) -> None:
        """The tracker, metrics and the parts that route, drain, watch and send."""
        self._metrics = ProducerMetrics(registry=o.metrics_registry) if o.enable_metrics else None
        self._tracker = T.MessageTracker(
            capacity=o.status_capacity,
            final_hook=self._ledger.on_final if self._ledger is not None else None,
            ack_sink=self._metrics.sent_by_topic if self._metrics is not None else None,
        )
        self.companions = CompanionTopics(self._conf, self.naming)
        shared = assembly.Shared(
            conf=self._conf,
            retry_config=self.retry_config,
            naming=self.naming,
            companions=self.companions,
            local=self._local,
            tracker=self._tracker,
            health=self._health,
            metrics=self._metrics,
            dedup=self._dedup,
            breaker=self._breaker,
            client=lambda: self._producer,
            is_connected=lambda: self._connection.connected,
            topics=lambda: list(self._topics_seen),
        )
        parts = assembly.compose(shared, o)
        self._writer, self._drainer, self._send = parts.writer, parts.drainer, parts.send
        self.retry_manager, self.dlq = parts.retry_manager, parts.dlq
        self._dlq_watch = parts.dlq_watch
        self._send_one = self._send.send

    def _start_upkeep(self, interval_s: float) -> None:
        poller = Poller(
            client=lambda: self._producer,
            tracker=self._tracker,
            ledger=self._ledger,
            sender_serving=self._send.serving,
        )
        self._maintenance = Maintenance(
            poller=poller,
            rebuild=self._rebuild,
            connection=self._connection,
            tracker=self._tracker,
            spool=self.spool,
            drainer=self._drainer,
            dlq_watch=self._dlq_watch,
            health=self._health,
            dedup=self._dedup,
            breaker=self._breaker,
            metrics=self._metrics,
            interval_s=interval_s,
        )
        self._maintenance.start()

    def _rebuild(self) -> None:
        """After a fatal error: a new client; what the old one held is routed, not lost."""
        self._connection.fatal.clear()
        old, self._producer = self._producer, assembly.new_client(self._conf)
        self._send.producer = self._producer
        old.purge(in_queue=True, in_flight=True)
        old.flush(5.0)

    # ---- send path ------------------------------------------------------------------------

    def send_message(
        self, topic: str, value: Any, key: Any = None, headers: UserHeaders = None
    ) -> str:
        """Send one record; return its message id at once (delivery is reported later)."""
        if self._closed:
            raise ProducerClosedError("send_message() after close()")
        if topic not in self._valid_topics:
            self._check_topic(topic)
        vb = self._serializer(value, topic)
        kb = key.encode() if type(key) is str else serialize_key(key)
        mid = f"{self._id_prefix}{next(self._ids)}"
        self._send_one(topic, vb, kb, mid, headers)
        return mid

    def prepare(self, topic: str, value: Any, key: Any = None) -> PreparedRecord:
        """Serialize a record and give it its id and dedup key, without claiming or sending it
        (for front ends such as ``kafka_reliable.aio`` that claim the key on their own)."""
        if self._closed:
            raise ProducerClosedError("prepare() after close()")
        if topic not in self._valid_topics:
            self._check_topic(topic)
        vb = self._serializer(value, topic)
        kb = key.encode() if type(key) is str else serialize_key(key)
        dk = self._dedup.key_for(topic, kb, vb) if self._dedup is not None else None
        return PreparedRecord(topic, vb, kb, f"{self._id_prefix}{next(self._ids)}", dk)

    def send_prepared(
        self,
        rec: PreparedRecord,
        headers: UserHeaders = None,
        *,
        claimed: bool | None = None,
        on_settle: Callable[[str, str, str | None], None] | None = None,
    ) -> str:
        """Send a prepared record through the same path as ``send_message``.

        ``claimed``: the dedup verdict when the caller claimed the key itself (None: claimed
        here); a caller's claim is the caller's to release when this raises. ``on_settle``:
        ``fn(message_id, status, error_class)`` once, when the record's status becomes final
        (from a producer thread: hand it off at once).
        """
        if self._closed:
            raise ProducerClosedError("send_prepared() after close()")
        self._send_one(rec.topic, rec.value, rec.key, rec.message_id, headers, claimed, on_settle)
        return rec.message_id

    def watch(self, message_id: str, on_settle: Callable[[str, str, str | None], None]) -> None:
        """``on_settle(message_id, status, error_class)`` once, when the record settles (see
        ``send_prepared``); a record already settled is reported at once."""
        self._tracker.watch(message_id, on_settle)

    def unwatch(self, message_id: str) -> None:
        """Drop a ``watch`` (the caller stopped waiting)."""
        self._tracker.unwatch(message_id)

    def queue_depth(self) -> tuple[int, int]:
        """``(records in librdkafka's queue, its bound)``: for callers that must not block on a
        full queue (``send_message`` waits there)."""
        bound = int(self._conf.get("queue.buffering.max.messages", 100_000))
        return len(self._producer), bound

    @property
    def deduplicator(self) -> Deduplicator | None:
        """The dedup backend (None when dedup is off)."""
        return self._dedup

    def send_batch(
        self,
        topic: str,
        messages: Iterable[Any],
        key_extractor: Callable[[Any], Any] | None = None,
        timeout_s: float = 120.0,
        headers: UserHeaders = None,
    ) -> dict[str, Any]:
        """Send many records; return final counts once every record is delivered or routed.

        Every value is serialized first: a value that cannot be encoded raises
        SerializationError naming its index, and nothing of the batch is sent. ``headers``
        go on every record of the batch.
        """
        if self._closed:
            raise ProducerClosedError("send_batch() after close()")
        self._check_topic(topic)
        items = list(messages)
        encoded: list[tuple[bytes, bytes | None]] = []
        for i, m in enumerate(items):
            try:
                encoded.append(
                    (
                        self._serializer(m, topic),
                        serialize_key(key_extractor(m) if key_extractor else None),
                    )
                )
            except KafkaReliableError as exc:
                raise type(exc)(f"message {i} of the batch: {exc}") from exc
        mids = [f"{self._id_prefix}{next(self._ids)}" for _ in items]
        verdicts: list[bool | None] = [None] * len(items)
        if self._dedup is not None and items:
            verdicts = list(
                self._dedup.check([self._dedup.key_for(topic, kb, vb) for vb, kb in encoded])
            )
        statuses = self._send.send_batch(
            topic, encoded, mids, verdicts, headers, timeout_s, self._writer.drain
        )
        return {
            "total": len(items),
            "sent": statuses.count(T.SENT),
            "failed": sum(1 for s in statuses if s in (T.RETRYING, T.DLQ, T.SPOOLED)),
            "duplicates": statuses.count(T.DUPLICATE),
            "pending": statuses.count(T.PENDING),
            "message_ids": mids,
        }

    def _check_topic(self, topic: str) -> None:
        check_topic_name(topic)
        self._valid_topics.add(topic)
        self._topics_seen.setdefault(topic, None)

    # ---- lifecycle ----------------------------------------------------------------------------

    def flush(self, timeout: float = 30.0) -> int:
        """Wait for delivery reports and routing; return records still undelivered."""
        deadline = time.monotonic() + timeout
        left = self._producer.flush(timeout)
        self._writer.drain(max(0.0, deadline - time.monotonic()))
        if self._ledger is not None:
            self._ledger.flush()
        return left + self._writer.busy

    def close(self, timeout: float = 30.0) -> None:
        """Deliver what can be delivered within ``timeout``; spool the rest (nothing is lost)."""
        if self._closed:
            return
        try:
            self.get_stats()  # what get_stats() answers after close
        except Exception:  # noqa: BLE001 - stats are a courtesy here
            self._last_stats = {}
        self._closed = True
        deadline = time.monotonic() + max(0.0, timeout)

        def left(share: float = 1.0) -> float:
            return max(0.0, (deadline - time.monotonic()) * share)

        self._producer.flush(left(0.6))
        self._connection.connected = False  # what librdkafka still holds comes back to be spooled
        self._producer.purge(in_queue=True, in_flight=True)
        self._producer.flush(min(left(0.5), 2.0))
        self._writer.close(max(0.5, left(0.8)))
        self._maintenance.stop(max(0.2, min(left(), 2.0)))
        if self._ledger is not None:
            kept = self._ledger.close()
            if kept:
                log.warning(
                    "%d records were neither acknowledged nor spooled at close: kept in the "
                    "write-ahead log, sent again by the next producer on this spool",
                    kept,
                )
        self._drainer.flush_deletes()
        self.companions.close()
        self.spool.close()

    def __enter__(self) -> ReliableKafkaProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
