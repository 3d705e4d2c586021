"""scheduling.Owned on the real broker: a resumed partition is fetched at once (resume + seek).

librdkafka notices a bare resume only at its fetcher's next wake-up (~500 ms measured); the
worker and the ReliableConsumer both resume through ``Owned.resume``, which seeks. The test
asserts that the record produced while paused arrives after the resume and reports how long
it took (performance belongs to benchmarks; the figure is printed, not asserted).
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from kafka_reliable.scheduling import Owned
from tests.helpers.kafka import unique_name


def _read_one(consumer: Consumer, deadline_s: float) -> tuple[bytes | None, float]:
    start = time.monotonic()
    while time.monotonic() - start < deadline_s:
        m = consumer.poll(0.005)
        if m is not None and m.error() is None:
            return m.value(), time.monotonic() - start
    return None, time.monotonic() - start


def test_a_resumed_partition_is_read_at_once(
    kafka_bootstrap: str, new_topic, record_property: pytest.RecordProperty
) -> None:
    # Given: a consumer that has read its partition to the end, then paused it
    topic = new_topic(partitions=1)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    producer.produce(topic, b"first")
    producer.flush(10)
    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": unique_name("resume"),
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    own: Owned[object] = Owned(max_pending=10)
    try:
        own.assigned(consumer, [TopicPartition(topic, 0)])
        assert _read_one(consumer, 30)[0] == b"first"
        own.pause(consumer, [(topic, 0)])
        producer.produce(topic, b"second")
        producer.flush(10)
        assert _read_one(consumer, 0.3)[0] is None  # paused: nothing is fetched
        # When: the partition is resumed through the shared scheduling
        own.resume(consumer, [(topic, 0)])
        # Then: the record produced meanwhile arrives (the time it took is reported)
        value, took_s = _read_one(consumer, 10)
        assert value == b"second" and own.paused == set()
        record_property("resumed_read_ms", round(took_s * 1000, 1))
        print(f"resumed partition read after {took_s * 1000:.1f} ms")
    finally:
        consumer.close()
