"""Failed deliveries: classified, then written to ``.retry`` / ``.dlq``, or spooled.

Delivery callbacks only enqueue a ``FailedRecord``; a router thread does the slow parts
(creating companion topics, producing to them, writing the spool), so the thread that
polls for delivery reports never blocks on I/O.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from kafka_reliable import headers as H
from kafka_reliable import tracking as T
from kafka_reliable.config import RetryConfig, TopicNaming
from kafka_reliable.errors import Classification, ErrorKind, classify
from kafka_reliable.routing import route_failure
from kafka_reliable.spool import Spool
from kafka_reliable.topics import CompanionTopics

log = logging.getLogger(__name__)

#: librdkafka's ceiling for message.max.bytes; the router producer must fit any DLQ record.
ROUTER_MAX_MESSAGE_BYTES = 100 * 1024 * 1024
#: Per-record framing allowance when judging whether a record fits ``max.message.bytes`` alone.
RECORD_OVERHEAD_BYTES = 128


@dataclass(slots=True)
class FailedRecord:
    """A record whose delivery failed, with everything needed to route it."""

    message_id: str | None
    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]
    timestamp_ms: int | None
    error_code: str
    error_message: str
    fatal: bool = False


class FailureRouter:
    """Routes failed records on a thread of its own; spools what Kafka will not take."""

    def __init__(
        self,
        *,
        conf: dict[str, Any],
        retry_config: RetryConfig,
        naming: TopicNaming,
        companions: CompanionTopics,
        spool: Spool,
        tracker: T.MessageTracker,
        is_connected: Callable[[], bool],
        on_routed: Callable[[FailedRecord, str, str | None], None] | None = None,
    ) -> None:
        self._conf = {**conf, "message.max.bytes": ROUTER_MAX_MESSAGE_BYTES}
        self._conf.pop("on_delivery", None)
        self._conf.pop("error_cb", None)
        self._conf.pop("stats_cb", None)
        self._conf.pop("statistics.interval.ms", None)
        self._retry_config = retry_config
        self._naming = naming
        self._companions = companions
        self._spool = spool
        self._tracker = tracker
        self._is_connected = is_connected
        self._on_routed = on_routed
        self._queue: queue.Queue[FailedRecord | None] = queue.Queue()
        self._producer: Producer | None = None
        self._inflight = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="kafka-reliable-router", daemon=True)
        self._thread.start()

    # -- intake (any thread) --------------------------------------------------------------

    def submit(self, rec: FailedRecord) -> None:
        with self._lock:
            self._inflight += 1
        self._queue.put(rec)

    @property
    def busy(self) -> int:
        with self._lock:
            return self._inflight

    # -- router thread --------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            try:
                rec = self._queue.get(timeout=0.05)
            except queue.Empty:
                if self._producer is not None:  # serve companion-topic delivery reports while idle
                    self._producer.poll(0)
                continue
            if rec is None:
                return
            try:
                self._route(rec)
            except Exception:  # noqa: BLE001 - a routing bug must not lose the record
                log.exception("routing failed for a record of %s; spooling it", rec.topic)
                self._spool_records([rec], "router_error")
            if self._producer is not None:
                self._producer.poll(0)

    def _router_producer(self) -> Producer:
        if self._producer is None:
            self._producer = Producer(self._conf)
        return self._producer

    def _route(self, rec: FailedRecord) -> None:
        attempt = (H.get_int(rec.headers, H.ATTEMPT) or 0) + 1
        route = route_failure(
            topic=rec.topic,
            classification=self._classify(rec),
            error_message=rec.error_message,
            attempt=attempt,
            retry_config=self._retry_config,
            naming=self._naming,
            now_ms=int(time.time() * 1000),
            headers=rec.headers,
            message_id=rec.message_id,
            replay_count=H.get_int(rec.headers, H.REPLAY_COUNT) or 0,
        )
        if not self._is_connected():
            self._spool_records([rec], "cluster_unreachable")
            return
        try:
            self._companions.ensure(rec.topic)
        except KafkaException as exc:
            log.warning("companion topics of %s unavailable (%s); spooling", rec.topic, exc)
            self._spool_records([rec], "companion_unavailable")
            return
        status = T.RETRYING if route.to_retry else T.DLQ

        def done(err: KafkaError | None, _msg: Any) -> None:
            self._finish_companion(rec, route.target_topic, status, route.failure.dlq_reason, err)

        self._produce(route.target_topic, rec, route.headers, done)

    def _classify(self, rec: FailedRecord) -> Classification:
        """The table's verdict, except for a record rejected only for its batch-mates' size.

        The broker refuses a whole record batch with MSG_SIZE_TOO_LARGE; a record that fits
        the topic's ``max.message.bytes`` by itself will succeed when sent again, so it is
        retriable rather than dead-lettered.
        """
        c = classify(rec.error_code, fatal=rec.fatal)
        if rec.error_code == "MSG_SIZE_TOO_LARGE" and self._is_connected():
            size = len(rec.value or b"") + len(rec.key or b"") + sum(len(k) + len(v or b"") for k, v in rec.headers)
            try:
                limit = self._companions.max_message_bytes(rec.topic)
            except KafkaException:
                return c
            if size + RECORD_OVERHEAD_BYTES < limit:
                return Classification(c.code, c.error_class, ErrorKind.RETRIABLE)
        return c

    def _produce(self, topic: str, rec: FailedRecord, headers: list[tuple[str, bytes]], cb: Callable[..., None]) -> None:
        p = self._router_producer()
        kwargs: dict[str, Any] = {"key": rec.key, "value": rec.value, "headers": headers, "on_delivery": cb}
        if rec.timestamp_ms:
            kwargs["timestamp"] = rec.timestamp_ms
        while True:
            try:
                p.produce(topic, **kwargs)
                return
            except BufferError:
                p.poll(0.1)
            except KafkaException as exc:
                cb(exc.args[0] if exc.args else KafkaError(KafkaError._FAIL), None)
                return

    def _finish_companion(
        self, rec: FailedRecord, target: str, status: str, reason: str | None, err: KafkaError | None
    ) -> None:
        if err is not None:
            log.error("could not write a record of %s to %s (%s); spooling it", rec.topic, target, err.name())
            self._spool_records([rec], f"companion_failed:{err.name()}")
            return
        tr = self._tracker
        if status == T.RETRYING:
            tr.count("retried")
        else:
            tr.count("dead_lettered")
            with tr.lock:
                tr.dlq_by_topic[rec.topic] = tr.dlq_by_topic.get(rec.topic, 0) + 1
        if self._on_routed is not None:  # before settle: a dedup claim is released before status says dlq
            self._on_routed(rec, status, reason)
        tr.settle(rec.message_id, status)
        self._done(1)

    def _spool_records(self, recs: list[FailedRecord], reason: str) -> None:
        self._spool.add(((r.message_id, r.topic, r.key, r.value, r.headers, r.timestamp_ms) for r in recs), reason)
        for r in recs:
            self._tracker.count("spooled")
            self._tracker.settle(r.message_id, T.SPOOLED)
            if self._on_routed is not None:
                self._on_routed(r, T.SPOOLED, reason)
        self._done(len(recs))

    def _done(self, n: int) -> None:
        with self._lock:
            self._inflight -= n

    # -- shutdown -------------------------------------------------------------------------

    def drain(self, timeout_s: float) -> None:
        """Wait until queued records are routed and companion writes acknowledged."""
        deadline = time.monotonic() + timeout_s
        while self.busy > 0 and time.monotonic() < deadline:
            if self._producer is not None:
                self._producer.flush(0.1)
            else:
                time.sleep(0.05)

    def close(self, timeout_s: float) -> None:
        """Finish routing; whatever Kafka still holds at the end is spooled, not lost."""
        self.drain(timeout_s)
        self._queue.put(None)
        self._thread.join(timeout_s)
        leftovers: list[FailedRecord] = []
        while True:
            try:
                rec = self._queue.get_nowait()
            except queue.Empty:
                break
            if rec is not None:
                leftovers.append(rec)
        if leftovers:
            self._spool_records(leftovers, "closed")
        if self._producer is not None:
            self._producer.flush(min(timeout_s, 5.0))
            self._producer.purge(in_queue=True, in_flight=True)
            self._producer.poll(0)
            self._producer.flush(1.0)
