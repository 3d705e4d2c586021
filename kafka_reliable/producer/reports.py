"""Delivery reports of the main producer: success is counted and timed; a failure becomes an
``OutgoingRecord`` for the companion writer (librdkafka's reports carry no headers and, for a
failed record, no timestamp: the headers ride in the callback, the create time is rebuilt).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from confluent_kafka import KafkaError, Message

from kafka_reliable.errors import classify
from kafka_reliable.health import CircuitBreaker
from kafka_reliable.producer import tracking as T
from kafka_reliable.producer.metrics import ProducerMetrics
from kafka_reliable.record import OutgoingRecord


class DeliveryReports:
    """``on_delivery(mid, headers, err, msg)``: called by whichever thread polls."""

    def __init__(
        self, *, tracker: T.MessageTracker, metrics: ProducerMetrics | None, breaker: CircuitBreaker | None,
        submit_failure: Callable[[OutgoingRecord], None],
    ) -> None:
        self._tracker = tracker
        self._metrics = metrics
        self._breaker = breaker
        self._submit_failure = submit_failure

    def on_delivery(self, mid: str, hdrs: list[tuple[str, bytes]], err: KafkaError | None, msg: Message) -> None:
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
        self._submit_failure(OutgoingRecord(mid, topic, msg.key(), msg.value(), list(hdrs), ts)
                             .failed(err.name(), err.str(), err.fatal()))
