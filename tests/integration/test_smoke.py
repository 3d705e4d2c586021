"""The real services answer: Kafka round trip, admin create/delete, Redis SET/GET."""

from __future__ import annotations

import json

import redis
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from tests.helpers.kafka import create_topic, read_to_end, unique_name


def test_produce_and_consume_10k(kafka_bootstrap: str, new_topic) -> None:
    # Given
    topic = new_topic(partitions=3)
    p = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True, "linger.ms": 5})
    sent = {f"k{i}": {"i": i, "payload": "x" * 50} for i in range(10_000)}
    # When
    for k, v in sent.items():
        p.produce(topic, json.dumps(v).encode(), key=k.encode())
        p.poll(0)
    assert p.flush(30) == 0
    got = read_to_end(kafka_bootstrap, topic, at_least=10_000)
    # Then
    assert len(got) == 10_000
    back = {m.key().decode(): json.loads(m.value()) for m in got}
    assert back == sent


def test_admin_create_and_delete_topic(admin: AdminClient) -> None:
    name = create_topic(admin, unique_name("adm"), partitions=2)
    assert len(admin.list_topics(topic=name, timeout=10).topics[name].partitions) == 2
    admin.delete_topics([name])[name].result(timeout=30)
    assert name not in admin.list_topics(timeout=10).topics


def test_redis_set_get(redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url)
    key = unique_name("smoke")
    r.set(key, b"v", ex=30)
    assert r.get(key) == b"v"
    r.delete(key)
