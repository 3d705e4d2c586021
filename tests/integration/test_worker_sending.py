"""The one send helper (``kafka_reliable.sending.produce``) calls confluent-kafka's ``produce()``
with positional arguments (no keyword dict per record): this pins that order on the real client
and broker. A wrong order would put the timestamp in the partition or drop the headers."""

from __future__ import annotations

from confluent_kafka import KafkaError, Message, Producer

from kafka_reliable.config import RELIABLE_DEFAULTS
from kafka_reliable.sending import produce
from tests.helpers.kafka import read_to_end


def test_positional_produce_carries_key_value_headers_timestamp_and_partition(
    kafka_bootstrap: str, new_topic
) -> None:
    # Given: a 3-partition topic and the worker's producer settings
    topic = new_topic(partitions=3)
    producer = Producer({**RELIABLE_DEFAULTS, "bootstrap.servers": kafka_bootstrap})
    reports: list[tuple[KafkaError | None, Message]] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        reports.append((err, msg))

    # When: every optional argument given, then none of them
    produce(producer, topic, b"full", b"k1", [("app", b"\x00raw"), ("n", b"2")], on_delivery,
            timestamp_ms=1_234_567_890_123, partition=2)
    produce(producer, topic, b"bare", None, [], on_delivery)
    assert producer.flush(30) == 0

    # Then: both acknowledged, each argument where it belongs
    assert [err for err, _ in reports] == [None, None]
    got = {m.value(): m for m in read_to_end(kafka_bootstrap, topic)}
    full, bare = got[b"full"], got[b"bare"]
    assert (full.key(), full.partition(), full.timestamp()[1]) == (b"k1", 2, 1_234_567_890_123)
    assert full.headers() == [("app", b"\x00raw"), ("n", b"2")]
    assert bare.key() is None and bare.headers() is None
    assert bare.timestamp()[1] > 1_600_000_000_000  # "now", not 0
