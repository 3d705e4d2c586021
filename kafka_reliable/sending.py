"""The one send helper: ``produce()``, and on ``BufferError`` serve reports and try again.

``BufferError`` means librdkafka's local queue is full: back-pressure, not a failure
(docs/architecture.md). Every part that produces (the send path, the companion writer, the spool
drainer, the worker, replay) goes through here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import Producer

#: Seconds spent serving delivery reports before a full queue is tried again.
BACKPRESSURE_POLL_S = 0.05
#: librdkafka's RD_KAFKA_PARTITION_UA: no partition given, the partitioner picks one.
PARTITION_ANY = -1


class QueueFullTimeout(TimeoutError):
    """librdkafka's queue stayed full until the caller's deadline."""


def produce(
    producer: Producer,
    topic: str,
    value: bytes | None,
    key: bytes | None,
    headers: Any,
    on_delivery: Callable[..., None],
    timestamp_ms: int | None = None,
    deadline: float | None = None,
    partition: int | None = None,
) -> None:
    """Produce one record, waiting out back-pressure (until ``deadline``, monotonic, if given).

    ``KafkaException`` (an immediate refusal) is the caller's to handle.
    """
    # Positional, in the order of confluent-kafka's produce(): topic, value, key, partition
    # (-1: the partitioner's choice), on_delivery, callback (its alias), timestamp (0: now),
    # headers. No keyword dict per record (pinned by tests/integration/test_worker_sending.py).
    part = PARTITION_ANY if partition is None else partition
    ts = timestamp_ms or 0
    hdrs = headers or None
    while True:
        try:
            producer.produce(topic, value, key, part, on_delivery, None, ts, hdrs)
            return
        except BufferError:
            if deadline is not None and time.monotonic() >= deadline:
                raise QueueFullTimeout(
                    f"librdkafka queue full until the deadline; {topic!r} not sent"
                ) from None
            producer.poll(BACKPRESSURE_POLL_S)
