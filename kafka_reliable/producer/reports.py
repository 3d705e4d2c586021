"""Delivery reports of the main producer: success is counted and timed; a failure becomes an
``OutgoingRecord`` for the companion writer (librdkafka's reports carry no headers and, for a
failed record, no timestamp: the headers ride in the callback, the create time is rebuilt).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from confluent_kafka import KafkaError, Message

from kafka_reliable.errors import classify
from kafka_reliable.headers import MESSAGE_ID
from kafka_reliable.health import CircuitBreaker
from kafka_reliable.producer import tracking as T
from kafka_reliable.producer.metrics import ProducerMetrics
from kafka_reliable.record import OutgoingRecord


class DeliveryReports:
    """``on_delivery(mid, headers, err, msg)``: called by whichever thread polls."""

    def __init__(
        self,
        *,
        tracker: T.MessageTracker,
        metrics: ProducerMetrics | None,
        breaker: CircuitBreaker | None,
        submit_failure: Callable[[OutgoingRecord], None],
        with_id_header: bool,
    ) -> None:
        self._tracker = tracker
        self._metrics = metrics
        self._breaker = breaker
        self._submit_failure = submit_failure
        self._store = tracker.store
        self._ack = tracker.ack
        self._take_watcher = tracker.take_watcher
        self._watch_count = tracker.watch_count
        self._final = tracker.final_hook
        self._with_id_header = with_id_header

    def on_delivery_fast(self, mid: str, err: KafkaError | None, msg: Message) -> None:
        """A record sent with no user headers, no breaker, no listeners, not in a batch: on
        success one status store and one append (folded in bulk by the poller)."""
        if err is None:
            self._store(mid, T.SENT)
            self._ack((msg.topic(), msg.latency()))  # type: ignore[arg-type]
            if self._final is not None:
                self._final(mid)
            if self._watch_count():
                w = self._take_watcher(mid, None)
                if w is not None:
                    w(mid, T.SENT, None)
            return
        self.on_delivery(
            mid, [(MESSAGE_ID, mid.encode())] if self._with_id_header else [], err, msg
        )

    def on_delivery(
        self, mid: str, hdrs: list[tuple[str, bytes]], err: KafkaError | None, msg: Message
    ) -> None:
        lat = msg.latency()
        if self._breaker is not None:
            self._breaker.record(err is None)
        if err is None:
            self._tracker.delivered(mid, lat * 1000.0 if lat is not None else None, retried=False)
            if self._metrics is not None:
                self._metrics.sent(msg.topic() or "", lat)
            return
        topic = msg.topic() or ""
        self._tracker.count("failed")
        if self._metrics is not None:
            self._metrics.failed(topic, classify(err.name()).error_class)
        ts_type, ts = msg.timestamp()
        if not ts_type:  # failed reports carry no timestamp; produce() time = now - latency
            ts = int((time.time() - (lat or 0.0)) * 1000)
        self._submit_failure(
            OutgoingRecord(mid, topic, msg.key(), msg.value(), list(hdrs), ts).failed(
                err.name(), err.str(), err.fatal()
            )
        )
