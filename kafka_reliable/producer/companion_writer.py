"""Failed deliveries: classified, then written to ``<topic>.retry`` / ``<topic>.dlq``, or spooled.

Delivery callbacks only enqueue an ``OutgoingRecord``; the writer's thread does the slow
parts (creating companion topics, producing to them, writing the spool), so the thread that
polls for delivery reports never blocks on I/O. The decision itself is
``routing.route_failure`` (pure); this class carries it out.

A record that Kafka can never take (too big for its topic and for the DLQ, an illegal
target) is quarantined in the spool with its reason and an alert: kept for an operator,
never retried by itself, never blocking the records behind it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from kafka_reliable import headers as H
from kafka_reliable.config import RetryConfig, TopicNaming, legal_topic_name
from kafka_reliable.errors import Classification, ErrorKind, classify
from kafka_reliable.producer import tracking as T
from kafka_reliable.record import OutgoingRecord
from kafka_reliable.routing import Route, route_failure
from kafka_reliable.sending import produce
from kafka_reliable.spool import QUARANTINED, Spool
from kafka_reliable.topics import CompanionTopics

log = logging.getLogger(__name__)

#: librdkafka's ceiling for message.max.bytes; the writer's producer must fit any DLQ record.
WRITER_MAX_MESSAGE_BYTES = 100 * 1024 * 1024
#: Per-record framing allowance when judging whether a record fits ``max.message.bytes`` alone.
RECORD_OVERHEAD_BYTES = 128
#: Errors after which writing the same record again can never succeed.
NEVER_DELIVERABLE = frozenset(
    {
        "MSG_SIZE_TOO_LARGE",
        "INVALID_RECORD",
        "INVALID_MSG",
        "CORRUPT_MESSAGE",
        "_INVALID_ARG",
        "TOPIC_EXCEPTION",
        "RECORD_LIST_TOO_LARGE",
    }
)

#: ``on_routed(record, status, dlq_reason)`` after a record reached .retry, .dlq or the spool.
RoutedCallback = Callable[[OutgoingRecord, str, str | None], None]
#: ``on_quarantined(record, reason)`` when a record was quarantined.
QuarantineCallback = Callable[[OutgoingRecord, str], None]


class CompanionWriter:
    """Writes failed records to their companion topics on a thread of its own."""

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
        on_routed: RoutedCallback,
        on_quarantined: QuarantineCallback,
    ) -> None:
        self._conf = {**conf, "message.max.bytes": WRITER_MAX_MESSAGE_BYTES}
        for k in ("on_delivery", "error_cb", "stats_cb", "statistics.interval.ms"):
            self._conf.pop(k, None)
        self._retry_config = retry_config
        self._naming = naming
        self._companions = companions
        self._spool = spool
        self._tracker = tracker
        self._is_connected = is_connected
        self._on_routed = on_routed
        self._on_quarantined = on_quarantined
        self._queue: queue.Queue[OutgoingRecord | None] = queue.Queue()
        self._producer: Producer | None = None
        self._inflight = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._run, name="kafka-reliable-companion-writer", daemon=True
        )
        self._thread.start()

    # -- intake (any thread) --------------------------------------------------------------

    def submit(self, rec: OutgoingRecord) -> None:
        with self._lock:
            self._inflight += 1
        self._queue.put(rec)

    @property
    def busy(self) -> int:
        with self._lock:
            return self._inflight

    # -- writer thread --------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            try:
                rec = self._queue.get(timeout=0.05)
            except queue.Empty:
                if self._producer is not None:  # serve companion delivery reports while idle
                    self._producer.poll(0)
                continue
            if rec is None:
                return
            try:
                self._route(rec)
            except Exception:  # noqa: BLE001 - a routing bug must not lose the record
                log.exception("routing failed for a record of %s; spooling it", rec.topic)
                self._spool_record(rec, "router_error")
            if self._producer is not None:
                self._producer.poll(0)

    def _client(self) -> Producer:
        if self._producer is None:
            self._producer = Producer(self._conf)
        return self._producer

    def _route(self, rec: OutgoingRecord) -> None:
        route = self._plan(rec)
        if route is None:
            return
        if not self._is_connected():
            self._spool_record(rec, "cluster_unreachable")
            return
        try:
            self._companions.ensure(rec.topic)
        except KafkaException as exc:
            log.warning("companion topics of %s unavailable (%s); spooling", rec.topic, exc)
            self._spool_record(rec, "companion_unavailable")
            return
        status = T.RETRYING if route.to_retry else T.DLQ
        error_class = route.failure.error_class

        def done(err: KafkaError | None, _msg: Any) -> None:
            self._finish(
                rec, route.target_topic, status, route.failure.dlq_reason, err, error_class
            )

        try:
            produce(
                self._client(), route.target_topic, rec.value, rec.key, route.headers, done,
                rec.timestamp_ms,
            )  # fmt: skip
        except KafkaException as exc:
            done(exc.args[0] if exc.args else KafkaError(KafkaError._FAIL), None)

    def _plan(self, rec: OutgoingRecord) -> Route | None:
        """Where the record goes; None when no topic can ever take it (quarantined here)."""
        if not legal_topic_name(rec.topic):  # e.g. a spooled row for a topic Kafka refuses
            self._quarantine(rec, f"illegal topic name {rec.topic!r}")
            return None
        failed = f"{rec.error_code or 'failed'} on {rec.topic!r}"
        try:
            route = route_failure(
                topic=rec.topic,
                classification=self._classify(rec),
                error_message=rec.error_message,
                attempt=(H.get_int(rec.headers, H.ATTEMPT) or 0) + 1,
                retry_config=self._retry_config,
                naming=self._naming,
                now_ms=int(time.time() * 1000),
                headers=rec.headers,
                message_id=rec.message_id,
                replay_count=H.get_int(rec.headers, H.REPLAY_COUNT) or 0,
            )
        except ValueError as exc:  # no legal companion name (e.g. a 249-character topic)
            self._quarantine(rec, f"{failed} and no companion topic can take it: {exc}")
            return None
        if not legal_topic_name(route.target_topic):
            n = len(route.target_topic)
            self._quarantine(
                rec,
                f"{failed} and its companion topic name is illegal "
                f"({n} characters, Kafka allows 249)",
            )
            return None
        return route

    def _classify(self, rec: OutgoingRecord) -> Classification:
        """The table's verdict, except for a record rejected only for its batch-mates' size.

        The broker refuses a whole record batch with MSG_SIZE_TOO_LARGE; a record that fits
        the topic's ``max.message.bytes`` by itself will succeed when sent again, so it is
        retriable rather than dead-lettered.
        """
        c = classify(rec.error_code, fatal=rec.fatal)
        if rec.error_code == "MSG_SIZE_TOO_LARGE" and self._is_connected():
            try:
                limit = self._companions.max_message_bytes(rec.topic)
            except KafkaException:
                return c
            if rec.size_bytes + RECORD_OVERHEAD_BYTES < limit:
                return Classification(c.code, c.error_class, ErrorKind.RETRIABLE)
        return c

    def _finish(
        self,
        rec: OutgoingRecord,
        target: str,
        status: str,
        reason: str | None,
        err: KafkaError | None,
        error_class: str | None = None,
    ) -> None:
        if err is not None:
            if err.name() in NEVER_DELIVERABLE:
                self._quarantine(rec, f"{err.name()} on {rec.topic} and on {target}: {err.str()}")
            else:
                log.error(
                    "could not write a record of %s to %s (%s); spooling it",
                    rec.topic,
                    target,
                    err.name(),
                )
                self._spool_record(rec, f"companion_failed:{err.name()}")
            return
        tr = self._tracker
        tr.routed(rec.topic, status)
        self._on_routed(rec, status, reason)  # before settle: a dedup claim is released first
        tr.settle(rec.message_id, status, error_class)
        self._done()

    def _spool_record(self, rec: OutgoingRecord, reason: str) -> None:
        """Into the spool to be sent again, unless it came from there (then the row stays)."""
        if rec.row_id is None:
            self._spool.add([rec], reason)
        self._settle_spooled(rec, reason)

    def _quarantine(self, rec: OutgoingRecord, reason: str) -> None:
        log.error(
            "record %s for %s can never be delivered: quarantined in the spool (%s)",
            rec.message_id,
            rec.topic,
            reason,
        )
        rec.quarantine_reason = reason[:500]
        if rec.row_id is None:
            self._spool.add([rec], "never_deliverable", state=QUARANTINED)
        else:
            self._spool.quarantine(rec.row_id, reason)
        self._on_quarantined(rec, reason)
        self._settle_spooled(rec, "quarantined")

    def _settle_spooled(self, rec: OutgoingRecord, reason: str) -> None:
        self._tracker.count("spooled")
        self._on_routed(rec, T.SPOOLED, reason)
        cls = classify(rec.error_code, fatal=rec.fatal).error_class if rec.error_code else None
        self._tracker.settle(rec.message_id, T.SPOOLED, cls)
        self._done()

    def _done(self, n: int = 1) -> None:
        with self._lock:
            self._inflight -= n

    # -- shutdown -------------------------------------------------------------------------

    def drain(self, timeout_s: float) -> None:
        """Wait until queued records are routed and companion writes acknowledged."""
        deadline = time.monotonic() + timeout_s
        while self.busy > 0 and time.monotonic() < deadline:
            if self._producer is not None:
                self._producer.flush(min(0.1, max(0.0, deadline - time.monotonic())))
            else:
                time.sleep(0.02)

    def close(self, timeout_s: float) -> None:
        """Finish routing within ``timeout_s``; what is left at the end is spooled, not lost."""
        deadline = time.monotonic() + timeout_s
        self.drain(timeout_s)
        self._queue.put(None)
        self._thread.join(max(0.1, deadline - time.monotonic()))
        while True:
            try:
                rec = self._queue.get_nowait()
            except queue.Empty:
                break
            if rec is not None:
                self._spool_record(rec, "closed")
        if self._producer is not None:
            self._producer.flush(max(0.0, min(deadline - time.monotonic(), 5.0)))
            self._producer.purge(in_queue=True, in_flight=True)  # their reports spool them
            self._producer.poll(0)
            self._producer.flush(0.5)
            self._producer = None  # destroyed with its last reference: no reconnecting after close
