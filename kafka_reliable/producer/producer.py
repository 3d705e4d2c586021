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

from confluent_kafka import KafkaException, Producer
from prometheus_client import CollectorRegistry

from kafka_reliable import tracing
from kafka_reliable.client_errors import with_logger
from kafka_reliable.config import (
    HealthThresholds,
    RetryConfig,
    TopicNaming,
    build_producer_config,
    check_topic_name,
    redact,
)
from kafka_reliable.dedup import Deduplicator, make_deduplicator
from kafka_reliable.dlq import DeadLetterQueue, DlqMessage
from kafka_reliable.errors import ConfigurationError, KafkaReliableError, ProducerClosedError
from kafka_reliable.health import CircuitBreaker, HealthMonitor, RateLimiter
from kafka_reliable.owned_keys import PRODUCER_OWNED, refuse_owned
from kafka_reliable.producer import tracking as T
from kafka_reliable.producer.companion_writer import CompanionWriter
from kafka_reliable.producer.connection import ConnectionState
from kafka_reliable.producer.dlq_watch import DlqWatch
from kafka_reliable.producer.durable import DURABILITY_MODES, DurableLedger, adopt_dead_owners
from kafka_reliable.producer.maintenance import Maintenance, Poller
from kafka_reliable.producer.metrics import ProducerMetrics
from kafka_reliable.producer.outcomes import RoutingOutcomes
from kafka_reliable.producer.reports import DeliveryReports
from kafka_reliable.producer.retry_manager import DEFAULT_WORKER_GROUP, RetryManager
from kafka_reliable.producer.send_path import PreparedRecord, SendPath, UserHeaders
from kafka_reliable.producer.spool_drainer import SpoolDrainer
from kafka_reliable.serialization import JsonSerializer, Serializer, serialize_key
from kafka_reliable.spool import Spool
from kafka_reliable.topics import CompanionTopics
from kafka_reliable.wal import DEFAULT_MAX_BYTES, FSYNC_POLICIES

log = logging.getLogger(__name__)

#: Statistics interval requested from librdkafka (connection state for health and the spool).
STATS_INTERVAL_MS = 1000
#: Seconds ``get_stats()`` may wait for a first read of the DLQ sizes (never longer).
STATS_READ_TIMEOUT_S = 1.0


def _validate(dlq_max_size: object, durability: object, fsync: object, fsync_interval_ms: object,
              spool_max_bytes: object) -> None:
    if isinstance(dlq_max_size, bool) or not isinstance(dlq_max_size, int) or dlq_max_size < 0:
        raise ConfigurationError(f"dlq_max_size must be an int >= 0, got {dlq_max_size!r}")
    if durability not in DURABILITY_MODES:
        raise ConfigurationError(f"durability must be one of {DURABILITY_MODES}, got {durability!r}")
    if fsync not in FSYNC_POLICIES:
        raise ConfigurationError(f"fsync must be one of {FSYNC_POLICIES}, got {fsync!r}")
    for name, value, low in (("fsync_interval_ms", fsync_interval_ms, 1), ("spool_max_bytes", spool_max_bytes, 1 << 20)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigurationError(f"{name} must be an int >= {low}, got {value!r}")


class ReliableKafkaProducer:
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
        durability: str = "spool",
        fsync: str = "never",
        fsync_interval_ms: int = 100,
        spool_max_bytes: int = DEFAULT_MAX_BYTES,
        unsafe_producer_config: bool = False,
    ) -> None:
        _validate(dlq_max_size, durability, fsync, fsync_interval_ms, spool_max_bytes)
        if bootstrap_servers is None and not (producer_config or {}).get("bootstrap_servers"):
            bootstrap_servers = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        self.retry_config = retry_config or RetryConfig()
        self.naming = topic_naming or TopicNaming()
        self.dlq_max_size = dlq_max_size
        self.durability = durability
        self._serializer: Serializer = serializer or JsonSerializer()
        self._health = HealthMonitor(thresholds=health_thresholds, window_s=health_window_s,
                                     alert_cooldown_s=alert_cooldown_s)
        self._breaker = circuit_breaker
        self._connection = ConnectionState(self._health, circuit_breaker)
        self._conf = build_producer_config(bootstrap_servers, producer_config)
        if not unsafe_producer_config:
            refuse_owned(self._conf, PRODUCER_OWNED, where="producer_config")
        elif str(self._conf.get("acks")).lower() not in {"all", "-1"} and "enable.idempotence" not in (
                producer_config or {}):
            self._conf["enable.idempotence"] = False  # librdkafka: idempotence requires acks=all
        self._conf.setdefault("statistics.interval.ms", STATS_INTERVAL_MS)
        with_logger(self._conf)  # librdkafka's own lines through Python logging, not stderr
        self._conf["error_cb"] = self._connection.on_error
        self._conf["stats_cb"] = self._connection.on_stats
        self._dedup: Deduplicator | None = make_deduplicator(
            redis_client=redis_client, redis_url=redis_url, ttl_s=dedup_ttl_s,
            on_unavailable=dedup_on_unavailable, key_fn=dedup_key_fn,  # type: ignore[arg-type]
        ) if enable_deduplication else None
        self._id_prefix = secrets.token_hex(6) + "-"
        # Local state first: a spool or log that cannot be opened fails before any client or
        # thread exists, so a failed constructor leaks nothing.
        self.spool = Spool(spool_path, durable=durability == "spool")
        owner = f"{os.getpid()}-{self._id_prefix[:-1]}"
        try:
            self._ledger = DurableLedger(
                self.spool.path, owner, with_id_header=message_id_header, max_bytes=spool_max_bytes,
                fsync=fsync, fsync_interval_ms=fsync_interval_ms) if durability == "spool" else None
            self.spool.recover_inflight(self._id_prefix)  # rows of an older release's durable mode
            adopt_dead_owners(self.spool, skip=owner)  # dead producers' records are sent again
            self._producer = self._new_producer()
        except BaseException:
            if getattr(self, "_ledger", None) is not None:
                self._ledger.close()  # type: ignore[union-attr]
            self.spool.close()
            raise

        self._ids = itertools.count(1)
        self._valid_topics: set[str] = set()
        self._topics_seen: dict[str, None] = {}
        self._closed = False
        self._last_stats: dict[str, Any] = {}
        self._metrics = ProducerMetrics(registry=metrics_registry) if enable_metrics else None
        self._tracker = T.MessageTracker(
            capacity=status_capacity, final_hook=self._ledger.on_final if self._ledger is not None else None,
            ack_sink=self._metrics.sent_by_topic if self._metrics is not None else None)
        self.companions = CompanionTopics(self._conf, self.naming)
        self._compose(worker_group, dlq_check_interval_s, enable_tracing, rate_limiter, message_id_header)
        self._start_upkeep(maintenance_interval_s)
        log.info("ReliableKafkaProducer ready: %s",
                 redact({k: v for k, v in self._conf.items() if isinstance(v, str | int | float | bool)}))

    def _start_upkeep(self, interval_s: float) -> None:
        poller = Poller(client=lambda: self._producer, tracker=self._tracker, ledger=self._ledger,
                        sender_serving=self._send.serving)
        self._maintenance = Maintenance(
            poller=poller, rebuild=self._rebuild, connection=self._connection, tracker=self._tracker,
            spool=self.spool, drainer=self._drainer, dlq_watch=self._dlq_watch, health=self._health,
            dedup=self._dedup, breaker=self._breaker, metrics=self._metrics, interval_s=interval_s,
        )
        self._maintenance.start()

    def _compose(self, worker_group: str, dlq_check_interval_s: float, enable_tracing: bool | None,
                 rate_limiter: RateLimiter | None, message_id_header: bool) -> None:
        """Build the parts that route, drain, watch and send."""
        outcomes = RoutingOutcomes(dedup=self._dedup, metrics=self._metrics, health=self._health,
                                   spool_path=self.spool.path,
                                   on_spool_routed=lambda rec, status: self._drainer.on_routed(rec, status))
        self._writer = CompanionWriter(
            conf=self._conf, retry_config=self.retry_config, naming=self.naming, companions=self.companions,
            spool=self.spool, tracker=self._tracker, is_connected=lambda: self._connection.connected,
            on_routed=outcomes.on_routed, on_quarantined=outcomes.on_quarantined,
        )
        self._drainer = SpoolDrainer(spool=self.spool, client=lambda: self._producer, tracker=self._tracker,
                                     submit_failure=self._writer.submit, breaker=self._breaker)
        self.retry_manager = RetryManager(
            companions=self.companions, topics=lambda: list(self._topics_seen), worker_group=worker_group,
            routed=lambda: self._tracker.counter("retried"),
        )
        self.dlq = DeadLetterQueue(conf=self._conf, naming=self.naming, admin=self.companions.admin,
                                   alert_callback=outcomes.on_dlq_alert, watermarks=self.companions.watermarks)
        self._dlq_watch = DlqWatch(dlq=self.dlq, companions=self.companions, naming=self.naming,
                                   topics=lambda: list(self._topics_seen), max_size=self.dlq_max_size,
                                   check_interval_s=dlq_check_interval_s)
        #: OpenTelemetry send spans: on when a tracer provider is configured, unless switched off.
        tracing_on = tracing.OTEL_AVAILABLE and (
            enable_tracing is True or (enable_tracing is None and tracing.configured()))
        reports = DeliveryReports(tracker=self._tracker, metrics=self._metrics, breaker=self._breaker,
                                  submit_failure=self._writer.submit, with_id_header=message_id_header)
        self._send = SendPath(
            client=lambda: self._producer, reports=reports, tracker=self._tracker, spool=self.spool,
            with_id_header=message_id_header, dedup=self._dedup, limiter=rate_limiter, breaker=self._breaker,
            metrics=self._metrics, tracing_on=tracing_on, ledger=self._ledger, submit_failure=self._writer.submit,
        )
        self._send_one = self._send.send

    def _new_producer(self) -> Producer:
        try:
            return Producer(self._conf)
        except KafkaException as exc:
            raise ConfigurationError(
                f"invalid producer configuration: {exc.args[0].str() if exc.args else exc}") from exc

    def _rebuild(self) -> None:
        """After a fatal error: a new client; what the old one held is routed, not lost."""
        self._connection.fatal.clear()
        old, self._producer = self._producer, self._new_producer()
        self._send.producer = self._producer
        old.purge(in_queue=True, in_flight=True)
        old.flush(5.0)

    # ---- send path ------------------------------------------------------------------------

    def send_message(self, topic: str, value: Any, key: Any = None, headers: UserHeaders = None) -> str:
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

    def send_prepared(self, rec: PreparedRecord, headers: UserHeaders = None, *, claimed: bool | None = None,
                      on_settle: Callable[[str, str, str | None], None] | None = None) -> str:
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
                encoded.append((self._serializer(m, topic), serialize_key(key_extractor(m) if key_extractor else None)))
            except KafkaReliableError as exc:
                raise type(exc)(f"message {i} of the batch: {exc}") from exc
        mids = [f"{self._id_prefix}{next(self._ids)}" for _ in items]
        verdicts: list[bool | None] = [None] * len(items)
        if self._dedup is not None and items:
            verdicts = list(self._dedup.check([self._dedup.key_for(topic, kb, vb) for vb, kb in encoded]))
        statuses = self._send.send_batch(topic, encoded, mids, verdicts, headers, timeout_s, self._writer.drain)
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

    # ---- status and stats ---------------------------------------------------------------------

    def get_message_status(self, message_id: str) -> str | None:
        """``pending``, ``sent``, ``retrying``, ``dlq``, ``spooled``, ``duplicate``; None if unknown."""
        return self._tracker.status(message_id)

    def get_pending_messages(self) -> list[str]:
        """Ids of records handed to Kafka whose delivery is not yet reported."""
        return self._tracker.pending()

    def get_stats(self) -> dict[str, Any]:
        """Counters and sizes; never raises and never waits long on the cluster (parts not read
        yet are reported as unknown). After ``close()``: the stats taken at close."""
        if self._closed:
            return dict(self._last_stats)
        stats = self._tracker.snapshot()
        if self._dlq_watch.counts is None and self._connection.connected:
            self._dlq_watch.refresh_now(STATS_READ_TIMEOUT_S)
        stats["dlq_stats"] = self._dlq_watch.stats(self._tracker.dlq_by_topic())
        if self._dedup is not None:
            stats["deduplication_stats"] = self._dedup.stats()
        if self._breaker is not None:
            stats["circuit_breaker"] = self._breaker.snapshot()
        spool = self.spool.summary()
        stats["spool_size"] = spool["records"]
        stats["spool_quarantined"] = spool["quarantined"]
        stats["connected"] = self._connection.connected
        stats["durability"] = self.durability
        if self._ledger is not None:
            stats["write_ahead_log"] = self._ledger.stats()
        self._last_stats = stats
        return stats

    # ---- health ---------------------------------------------------------------------------

    def get_health_status(self) -> dict[str, Any]:
        """``{"status": healthy|degraded|unhealthy, "metrics": {...}, "issues": [...]}``."""
        self._maintenance.feed_health()
        return self._health.get_status()

    def add_health_alert_callback(self, callback: Callable[[dict[str, Any]], None]) -> None:
        """``callback(alert)`` for each alert and recovery (off the send path)."""
        self._health.add_alert_callback(callback)

    @property
    def health_monitor(self) -> HealthMonitor:
        return self._health

    # ---- DLQ and spool ----------------------------------------------------------------------

    def get_dlq_messages(self, topic: str, limit: int | None = 100, **filters: Any) -> list[DlqMessage]:
        """Records in ``<topic>.dlq`` with their error context (any DLQ dialect)."""
        return self.dlq.get_dlq_messages(topic, limit=limit, **filters)

    def clear_dlq(self, topic: str) -> int:
        """Delete every record of ``<topic>.dlq`` (``delete_records``); return the count cleared."""
        n = self.dlq.clear_dlq(topic)
        self._dlq_watch.forget(topic)
        return n

    def replay_dlq_messages(self, topic: str, max_messages: int | None = None, **options: Any) -> int:
        """Re-publish DLQ records to their original topic; return the count replayed."""
        return self.dlq.replay_dlq_messages(topic, max_messages=max_messages, **options)

    def drain_spool(self, max_records: int = 5000, timeout_s: float = 30.0) -> int:
        """Re-send spooled records oldest first; return how many were delivered or routed."""
        if self._closed:
            raise ProducerClosedError("drain_spool() after close()")
        return self._drainer.drain(max_records, timeout_s)

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
                log.warning("%d records were neither acknowledged nor spooled at close: kept in the "
                            "write-ahead log, sent again by the next producer on this spool", kept)
        self._drainer.flush_deletes()
        self.companions.close()
        self.spool.close()

    def __enter__(self) -> ReliableKafkaProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
