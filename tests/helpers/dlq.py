"""Dead-lettered records for DLQ tests: written the way the producer writes them, or the way
Spring Kafka and Kafka Connect write theirs."""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from kafka_reliable.config import RetryConfig, TopicNaming
from kafka_reliable.errors import classify
from kafka_reliable.routing import route_failure
from kafka_reliable.topics import CompanionTopics
from tests.helpers.kafka import create_topic, unique_name

#: Three error classes, 200 / 200 / 100 of 500 records (by i % 5).
CODES = ("_MSG_TIMED_OUT", "_MSG_TIMED_OUT", "MSG_SIZE_TOO_LARGE", "MSG_SIZE_TOO_LARGE", "TOPIC_AUTHORIZATION_FAILED")


def code_of(i: int) -> str:
    return CODES[i % 5]


def dead_letter(
    bootstrap: str, source: str, n: int, *, base_ms: int, step_ms: int = 1000, start: int = 0,
    replay_count: int = 0,
) -> None:
    """Put ``n`` records into ``<source>.dlq`` the way the producer does (route_failure headers).

    Record i: key ``k<i>``, message id ``m<i>``, failed at ``base_ms + i*step_ms`` (also its timestamp).
    """
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "enable.idempotence": True})
    for i in range(start, start + n):
        at = base_ms + i * step_ms
        route = route_failure(
            topic=source, classification=classify(code_of(i)), error_message=f"failure {i}", attempt=4,
            retry_config=RetryConfig(max_retries=3), naming=TopicNaming(), now_ms=at,
            headers=[("app", b"shop")], message_id=f"m{i}", first_failure_at_ms=at - 500,
            replay_count=replay_count,
        )
        p.produce(route.target_topic, value=f"v{i}".encode(), key=f"k{i}".encode(), headers=route.headers, timestamp=at)
    assert p.flush(30) == 0


def make_source(admin: AdminClient, bootstrap: str, partitions: int = 3, prefix: str = "dlqsrc") -> str:
    source = create_topic(admin, unique_name(prefix), partitions)
    CompanionTopics({"bootstrap.servers": bootstrap}, admin=admin).ensure(source)
    return source


@dataclass
class Dlq500:
    """500 dead-lettered records of ``source``, record i failed at ``base_ms + i*1000``."""

    source: str
    base_ms: int


# ---- foreign dialects ------------------------------------------------------------------------

def spring_headers(topic: str, partition: int, offset: int, ts: int) -> list[tuple[str, bytes]]:
    return [
        ("trace", b"t-1"),
        ("kafka_dlt-original-topic", topic.encode()),
        ("kafka_dlt-original-partition", struct.pack(">i", partition)),
        ("kafka_dlt-original-offset", struct.pack(">q", offset)),
        ("kafka_dlt-original-timestamp", struct.pack(">q", ts)),
        ("kafka_dlt-original-timestamp-type", b"CreateTime"),
        ("kafka_dlt-exception-fqcn", b"org.springframework.kafka.listener.ListenerExecutionFailedException"),
        ("kafka_dlt-exception-cause-fqcn", b"java.lang.IllegalArgumentException"),
        ("kafka_dlt-exception-message", b"amount must be positive"),
        ("kafka_dlt-exception-stacktrace", b"java.lang.IllegalArgumentException: amount\n\tat x.Y(Y.java:1)"),
    ]


def connect_headers(topic: str, partition: int, offset: int) -> list[tuple[str, bytes]]:
    p = "__connect.errors."
    return [
        (p + "topic", topic.encode()), (p + "partition", str(partition).encode()),
        (p + "offset", str(offset).encode()), (p + "connector.name", b"jdbc-sink"), (p + "task.id", b"0"),
        (p + "stage", b"VALUE_CONVERTER"), (p + "class.name", b"org.apache.kafka.connect.json.JsonConverter"),
        (p + "exception.class.name", b"org.apache.kafka.connect.errors.DataException"),
        (p + "exception.message", b"Converting byte[] to Kafka Connect data failed"),
        (p + "exception.stacktrace", b"org.apache.kafka.connect.errors.DataException: ..."),
    ]


def write_foreign(bootstrap: str, admin: AdminClient) -> tuple[str, str, str, str]:
    """A Spring DLT and a Connect DLQ with 3 records each; returns (orders, spring dlt, payments, connect dlq)."""
    orders = create_topic(admin, unique_name("orders"), 2)
    payments = create_topic(admin, unique_name("payments"), 1)
    spring_dlt = create_topic(admin, orders + "-dlt", 1)
    connect_dlq = create_topic(admin, "dlq-" + payments, 1)
    p = Producer({"bootstrap.servers": bootstrap})
    now = int(time.time() * 1000)
    for i in range(3):
        p.produce(spring_dlt, value=f"s{i}".encode(), key=f"sk{i}".encode(),
                  headers=spring_headers(orders, 1, 1000 + i, now - 5000))
        p.produce(connect_dlq, value=f"c{i}".encode(), key=None, headers=connect_headers(payments, 0, 70 + i))
    assert p.flush(30) == 0
    return orders, spring_dlt, payments, connect_dlq


def iso(ms: int) -> str:
    """Epoch milliseconds as an ISO-8601 UTC time (``...Z``), as the CLI takes them."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")
