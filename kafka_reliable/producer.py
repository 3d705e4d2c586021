"""ReliableKafkaProducer: the send path and delivery reports.

Nothing is silently lost: a record is either delivered, routed to ``<topic>.retry`` /
``<topic>.dlq`` with error headers, or written to the local spool. Bad input raises to the
caller before anything is sent.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from prometheus_client import CollectorRegistry

from kafka_reliable import headers as H
from kafka_reliable import tracing
from kafka_reliable import tracking as T
from kafka_reliable.config import (
    HealthThresholds,
    RetryConfig,
    TopicNaming,
    build_producer_config,
    redact,
)
from kafka_reliable.dedup import Deduplicator, make_deduplicator
from kafka_reliable.delivery import FailedRecord, FailureRouter
from kafka_reliable.dlq import DeadLetterQueue, DlqMessage
from kafka_reliable.errors import (
    ConfigurationError,
    KafkaReliableError,
    ProducerClosedError,
    classify,
)
from kafka_reliable.health import CircuitBreaker, CircuitOpenError, HealthMonitor, RateLimiter
from kafka_reliable.metrics import ProducerMetrics
from kafka_reliable.retry_manager import DEFAULT_WORKER_GROUP, RetryManager
from kafka_reliable.serialization import JsonSerializer, Serializer, serialize_key
from kafka_reliable.spool import Spool
from kafka_reliable.topics import CompanionTopics
from kafka_reliable.upkeep import ProducerUpkeep

log = logging.getLogger(__name__)

_TOPIC_RE = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")
_MID = H.MESSAGE_ID
#: Statistics interval requested from librdkafka (connection state for health and the spool).
STATS_INTERVAL_MS = 1000
#: The sending thread serves delivery reports itself every this many records.
POLL_EVERY = 512

UserHeaders = Mapping[str, str | bytes | None] | Sequence[tuple[str, str | bytes | None]] | None


class ReliableKafkaProducer(ProducerUpkeep):
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
    ) -> None:
        if isinstance(dlq_max_size, bool) or not isinstance(dlq_max_size, int) or dlq_max_size < 0:
            raise ConfigurationError(f"dlq_max_size must be an int >= 0, got {dlq_max_size!r}")
        if bootstrap_servers is None and not (producer_config or {}).get("bootstrap_servers"):
            bootstrap_servers = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        self.retry_config = retry_config or RetryConfig()
        self.naming = topic_naming or TopicNaming()
        self.dlq_max_size = dlq_max_size
        self._serializer: Serializer = serializer or JsonSerializer()
        self._conf = build_producer_config(bootstrap_servers, producer_config)
        self._conf.setdefault("statistics.interval.ms", STATS_INTERVAL_MS)
        self._conf["error_cb"] = self._on_error
        self._conf["stats_cb"] = self._on_stats
        self._with_id_header = message_id_header
        self._producer = self._new_producer()
        self._id_prefix = secrets.token_hex(6) + "-"
        self._ids = itertools.count(1)
        self._valid_topics: set[str] = set()
        self._sends = 0
        self._topics_seen: dict[str, None] = {}
        self._tracker = T.MessageTracker(capacity=status_capacity)
        self._connected = True
        self._fatal = threading.Event()
        self._closed = False
        self._stop = threading.Event()
        self._dlq_counts: dict[str, int] = {}
        self._dlq_checked_at = 0.0
        self._expiry_checked_at = 0.0
        self._dlq_check_interval_s = dlq_check_interval_s
        self.companions = CompanionTopics(self._conf, self.naming)
        self.spool = Spool(spool_path)
        self._router = FailureRouter(
            conf=self._conf, retry_config=self.retry_config, naming=self.naming,
            companions=self.companions, spool=self.spool, tracker=self._tracker,
            is_connected=lambda: self._connected, on_routed=self._on_routed,
        )
        self.retry_manager = RetryManager(
            conf=self._conf, companions=self.companions, topics=lambda: list(self._topics_seen),
            worker_group=worker_group, routed=lambda: self._tracker.counts["retried"],
        )
        self._dedup: Deduplicator | None = None
        if enable_deduplication:
            self._dedup = make_deduplicator(
                redis_client=redis_client, redis_url=redis_url, ttl_s=dedup_ttl_s,
                on_unavailable=dedup_on_unavailable, key_fn=dedup_key_fn,  # type: ignore[arg-type]
            )
        self._health = HealthMonitor(
            thresholds=health_thresholds, window_s=health_window_s, alert_cooldown_s=alert_cooldown_s
        )
        self._metrics = ProducerMetrics(registry=metrics_registry) if enable_metrics else None
        self._breaker = circuit_breaker
        #: OpenTelemetry send spans: on when a tracer provider is configured, unless switched off.
        self._tracing = tracing.OTEL_AVAILABLE and (
            enable_tracing is True or (enable_tracing is None and tracing.configured())
        )
        self._limiter = rate_limiter
        self.dlq = DeadLetterQueue(conf=self._conf, naming=self.naming, alert_callback=self._dispatch_alert)
        self._trimmed = 0
        self._outside_alerts: dict[tuple[str, str], float] = {}
        self._drain_lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._poll_loop, name="kafka-reliable-poller", daemon=True),
            threading.Thread(
                target=self._maintenance_loop, args=(maintenance_interval_s,),
                name="kafka-reliable-maintenance", daemon=True,
            ),
        ]
        for t in self._threads:
            t.start()
        log.info("ReliableKafkaProducer ready: %s", redact({k: v for k, v in self._conf.items() if isinstance(v, str | int | float | bool)}))

    def _new_producer(self) -> Producer:
        try:
            return Producer(self._conf)
        except KafkaException as exc:
            raise ConfigurationError(f"invalid producer configuration: {exc.args[0].str() if exc.args else exc}") from exc

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
        if self._dedup is not None and not self._dedup.check([self._dedup.key_for(topic, kb, vb)])[0]:
            self._duplicate(topic, mid)
            return mid
        if self._limiter is not None:
            self._limiter.acquire(1, len(vb))
        if headers:
            hdrs = self._headers(headers, mid)
        else:
            hdrs = [(_MID, mid.encode())] if self._with_id_header else []
        if self._breaker is not None and not self._breaker.allow():
            self._circuit_open(topic, vb, kb, hdrs, mid)
            return mid
        self._tracker.add(mid)
        if self._tracing:
            self._produce_traced(topic, vb, kb, hdrs, mid)
        else:
            self._produce(topic, vb, kb, hdrs, mid)
        return mid

    def _produce_traced(self, topic: str, vb: bytes, kb: bytes | None, hdrs: list[tuple[str, bytes]], mid: str) -> None:
        """A send span (child of the record's traceparent, else of the current span) whose
        context goes into the record when it has no traceparent of its own."""
        with tracing.span(tracing.SPAN_SEND, headers=hdrs, attributes={
            "messaging.system": "kafka", "messaging.destination.name": topic, "messaging.message.id": mid,
        }):
            self._produce(topic, vb, kb, tracing.inject_current(hdrs), mid)

    def _duplicate(self, topic: str, mid: str) -> None:
        self._tracker.add(mid, T.DUPLICATE)
        self._tracker.count("duplicates")
        if self._metrics is not None:
            self._metrics.duplicate(topic)

    def _circuit_open(self, topic: str, vb: bytes, kb: bytes | None, hdrs: list[tuple[str, bytes]], mid: str) -> None:
        """Breaker open: spool the record (drained when the breaker closes) or fail fast."""
        assert self._breaker is not None
        if self._breaker.mode == "fail_fast":
            raise CircuitOpenError(f"circuit breaker is open: record for {topic!r} not sent")
        self.spool.add([(mid, topic, kb, vb, hdrs, int(time.time() * 1000))], "circuit_open")
        self._tracker.count("spooled")
        self._tracker.add(mid, T.SPOOLED)
        self._tracker.settle(mid, T.SPOOLED)
        if self._metrics is not None:
            self._metrics.spooled(topic)

    def send_batch(
        self,
        topic: str,
        messages: Iterable[Any],
        key_extractor: Callable[[Any], Any] | None = None,
        timeout_s: float = 120.0,
    ) -> dict[str, Any]:
        """Send many records; return final counts once every record is delivered or routed.

        Every value is serialized first: a value that cannot be encoded raises
        SerializationError naming its index, and nothing of the batch is sent.
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
        fresh = [True] * len(items)
        if self._dedup is not None and items:
            fresh = self._dedup.check([self._dedup.key_for(topic, kb, vb) for vb, kb in encoded])
        batch = self._tracker.add_batch(m for m, f in zip(mids, fresh, strict=True) if f)
        for mid, (vb, kb), new in zip(mids, encoded, fresh, strict=True):
            if not new:
                self._duplicate(topic, mid)
                continue
            if self._limiter is not None:
                self._limiter.acquire(1, len(vb))
            hdrs = self._headers(None, mid)
            if self._breaker is not None and not self._breaker.allow():
                self._circuit_open(topic, vb, kb, hdrs, mid)
                continue
            self._tracker.add(mid)
            self._produce(topic, vb, kb, hdrs, mid)
        self._producer.flush(timeout_s)
        if not batch.done.wait(timeout_s):
            log.warning("send_batch: %d records of %s not settled after %.0f s", batch.remaining, topic, timeout_s)
        statuses = [self._tracker.status(m) for m in mids]
        return {
            "total": len(items),
            "sent": statuses.count(T.SENT),
            "failed": sum(1 for s in statuses if s in (T.RETRYING, T.DLQ, T.SPOOLED)),
            "duplicates": statuses.count(T.DUPLICATE),
            "pending": statuses.count(T.PENDING),
            "message_ids": mids,
        }

    def _check_topic(self, topic: str) -> None:
        if not isinstance(topic, str) or not _TOPIC_RE.match(topic) or topic in {".", ".."}:
            raise ValueError(f"invalid topic name {topic!r}: use 1-249 of [a-zA-Z0-9._-]")
        self._valid_topics.add(topic)
        self._topics_seen.setdefault(topic, None)

    def _headers(self, headers: UserHeaders, mid: str) -> list[tuple[str, bytes]]:
        if not headers:  # the common case: only our id header, or none at all
            return [(_MID, mid.encode())] if self._with_id_header else []
        out: list[tuple[str, bytes]] = []
        if headers:
            items = headers.items() if isinstance(headers, Mapping) else headers
            for k, v in items:
                if not isinstance(k, str):
                    raise ValueError(f"header names must be str, got {k!r}")
                out.append((k, v.encode("utf-8") if isinstance(v, str) else (v if v is not None else b"")))
        if self._with_id_header:
            out.append((_MID, mid.encode()))
        return out

    def _produce(self, topic: str, vb: bytes, kb: bytes | None, hdrs: list[tuple[str, bytes]], mid: str) -> None:
        p = self._producer
        # Delivery reports carry neither headers nor an opaque, so the id and headers ride
        # along in a partial: the one per-record allocation of the send path.
        cb = partial(self._on_delivery, mid, hdrs)
        while True:
            try:
                if hdrs:
                    p.produce(topic, vb, kb, headers=hdrs, on_delivery=cb)  # type: ignore[arg-type]
                else:  # an empty header list still costs librdkafka ~2 us
                    p.produce(topic, vb, kb, on_delivery=cb)
                self._sends += 1
                if not self._sends % POLL_EVERY:
                    p.poll(0)  # serve reports in bulk in the sending thread (see upkeep._poll_loop)
                return
            except BufferError:
                p.poll(0.05)  # back-pressure: librdkafka's queue is full; serve reports and retry
            except KafkaException as exc:
                err = exc.args[0] if exc.args else KafkaError(KafkaError._FAIL)
                self._tracker.count("failed")
                self._router.submit(FailedRecord(mid, topic, kb, vb, list(hdrs), int(time.time() * 1000), err.name(), err.str()))
                return

    # ---- delivery reports (poller thread, or the caller's flush) -----------------------------

    def _on_delivery(self, mid: str, hdrs: list[tuple[str, bytes]], err: KafkaError | None, msg: Message) -> None:
        topic = msg.topic() or ""
        lat = msg.latency()
        lat_ms = lat * 1000.0 if lat is not None else None
        if self._breaker is not None:
            self._breaker.record(err is None)
        if err is None:
            self._tracker.delivered(mid, lat_ms, retried=False)
            if self._metrics is not None:
                self._metrics.sent(topic, lat)
            return
        self._tracker.count("failed")
        if self._metrics is not None:
            self._metrics.failed(topic, classify(err.name()).error_class)
        ts_type, ts = msg.timestamp()
        if not ts_type:  # failed reports carry no timestamp; produce() time = now - latency
            lat = msg.latency()
            ts = int((time.time() - (lat or 0.0)) * 1000)
        self._router.submit(FailedRecord(
            mid, topic, msg.key(), msg.value(), list(hdrs), ts,
            err.name(), err.str(), err.fatal(),
        ))

    # ---- status and stats ---------------------------------------------------------------------

    def get_message_status(self, message_id: str) -> str | None:
        """``pending``, ``sent``, ``retrying``, ``dlq``, ``spooled``, ``duplicate``; None if unknown."""
        return self._tracker.status(message_id)

    def get_pending_messages(self) -> list[str]:
        """Ids of records handed to Kafka whose delivery is not yet reported."""
        return self._tracker.pending()

    def get_stats(self) -> dict[str, Any]:
        stats = self._tracker.snapshot()
        if not self._dlq_checked_at:
            self._refresh_dlq_counts()
        stats["dlq_stats"] = {
            "total_messages": sum(self._dlq_counts.values()),
            "topic_breakdown": dict(self._dlq_counts),
            "routed_by_this_producer": dict(self._tracker.dlq_by_topic),
        }
        stats["dlq_stats"]["trimmed"] = self._trimmed
        if self._dedup is not None:
            stats["deduplication_stats"] = self._dedup.stats()
        if self._breaker is not None:
            stats["circuit_breaker"] = self._breaker.snapshot()
        stats["spool_size"] = self.spool.count()
        stats["connected"] = self._connected
        return stats

    # ---- health ---------------------------------------------------------------------------

    def get_health_status(self) -> dict[str, Any]:
        """``{"status": healthy|degraded|unhealthy, "metrics": {...}, "issues": [...]}``."""
        self._feed_health()
        return self._health.get_status()

    def add_health_alert_callback(self, callback: Callable[[dict[str, Any]], None]) -> None:
        """``callback(alert)`` for each alert and recovery (off the send path)."""
        self._health.add_alert_callback(callback)

    @property
    def health_monitor(self) -> HealthMonitor:
        return self._health

    # ---- DLQ ------------------------------------------------------------------------------

    def get_dlq_messages(self, topic: str, limit: int | None = 100, **filters: Any) -> list[DlqMessage]:
        """Records in ``<topic>.dlq`` with their error context (any DLQ dialect)."""
        return self.dlq.get_dlq_messages(topic, limit=limit, **filters)

    def clear_dlq(self, topic: str) -> int:
        """Delete every record of ``<topic>.dlq`` (``delete_records``); return the count cleared."""
        n = self.dlq.clear_dlq(topic)
        self._dlq_counts.pop(topic, None)
        return n

    def replay_dlq_messages(self, topic: str, max_messages: int | None = None, **options: Any) -> int:
        """Re-publish DLQ records to their original topic; return the count replayed."""
        return self.dlq.replay_dlq_messages(topic, max_messages=max_messages, **options)

    # ---- lifecycle ----------------------------------------------------------------------------

    def flush(self, timeout: float = 30.0) -> int:
        """Wait for delivery reports and routing; return records still undelivered."""
        deadline = time.monotonic() + timeout
        left = self._producer.flush(timeout)
        self._router.drain(max(0.0, deadline - time.monotonic()))
        return left + self._router.busy

    def close(self, timeout: float = 30.0) -> None:
        """Deliver what can be delivered; spool the rest (nothing is lost)."""
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + timeout
        self._producer.flush(timeout)
        self._spool_undelivered()
        self._router.close(max(1.0, deadline - time.monotonic()))
        self._stop.set()
        for t in self._threads:
            t.join(5.0)
        self.companions.close()
        self.spool.close()

    def _spool_undelivered(self) -> None:
        """Purge what librdkafka still holds; its reports come back as failures to spool."""
        self._connected = False
        self._producer.purge(in_queue=True, in_flight=True)
        self._producer.flush(5.0)

    def __enter__(self) -> ReliableKafkaProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
