"""Dedup through ReliableKafkaProducer on the real broker and Redis."""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from kafka_reliable.dedup import content_key
from kafka_reliable.producer import ReliableKafkaProducer
from tests.helpers.kafka import read_to_end
from tests.integration.dedup_helpers import order_values, two_producers_send_once


def test_two_producer_processes_send_the_same_records_once(
    kafka_bootstrap: str, redis_url: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    # Given two producer processes sharing one Redis, each holding the same 1,000 records
    topic = new_topic(partitions=3, prefix="dedup2p")
    # When both send at the same time, in batches of 25 / Then each record reaches the topic once
    two_producers_send_once(kafka_bootstrap, redis_url, topic, 1000, tmp_path, batch=25, as_client=True)


class CountingConnection(redis.Connection):
    """A real connection that counts its socket writes (round trips)."""

    writes = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.writes += 1
        super().send_packed_command(command, check_health)


def test_batch_of_10000_with_10_percent_duplicates(
    kafka_bootstrap: str, redis_url: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    # Given 9,000 distinct records and 1,000 repeats of some of them, shuffled
    topic = new_topic(partitions=2, prefix="dedup10k")
    rng = random.Random(11)
    unique = order_values(9000)
    batch = unique + rng.sample(unique, 1000)
    rng.shuffle(batch)
    client = redis.Redis(connection_pool=redis.ConnectionPool.from_url(redis_url, connection_class=CountingConnection))
    producer = ReliableKafkaProducer(
        bootstrap_servers=kafka_bootstrap, enable_deduplication=True, redis_client=client,
        spool_path=tmp_path / "spool.db",
    )
    try:
        producer.send_batch(topic, [{"warm": "up"}])
        writes_before = CountingConnection.writes
        # When
        result = producer.send_batch(topic, batch)
        writes = CountingConnection.writes - writes_before
        stats = producer.get_stats()["deduplication_stats"]
    finally:
        producer.close()
    # Then 9,000 sent, 1,000 reported duplicates, in O(1) Redis round trips
    assert result["sent"] == 9000
    assert result["duplicates"] == 1000
    assert writes <= 2, f"{writes} Redis round trips for one batch"
    assert stats["backend"] == "redis"
    assert stats["duplicates"] == 1000
    assert len(read_to_end(kafka_bootstrap, topic, at_least=9001)) == 9001


def test_a_record_sent_to_the_dlq_releases_its_dedup_key(
    kafka_bootstrap: str, redis_url: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    # Given a topic that refuses records above 10 kB (non-retriable -> DLQ)
    topic = new_topic(config={"max.message.bytes": "10000"}, prefix="deduprel")
    client = redis.Redis.from_url(redis_url)
    producer = ReliableKafkaProducer(
        bootstrap_servers=kafka_bootstrap, enable_deduplication=True, redis_client=client,
        spool_path=tmp_path / "spool.db", producer_config={"compression_type": "none"},
    )
    big = os.urandom(50_000)
    try:
        # When the same too-large content is sent twice, one after the other
        first = producer.send_message(topic, big)
        producer.flush(30)
        second = producer.send_message(topic, big)
        producer.flush(30)
        statuses = [producer.get_message_status(first), producer.get_message_status(second)]
        stats = producer.get_stats()["deduplication_stats"]
    finally:
        producer.close()
    # Then neither is a duplicate: the first failure released the claim
    assert statuses == ["dlq", "dlq"]
    assert stats["duplicates"] == 0 and stats["checks"] == 2
    assert client.exists(b"kafka_reliable:dedup:" + content_key(topic, None, big)) == 0


def test_redis_unreachable_fails_open_and_counts(
    kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    # Given a producer whose Redis is a closed port
    topic = new_topic(prefix="dedupopen")
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))
    producer = ReliableKafkaProducer(
        bootstrap_servers=kafka_bootstrap, enable_deduplication=True, redis_client=dead,
        spool_path=tmp_path / "spool.db",
    )
    try:
        # When
        result = producer.send_batch(topic, order_values(20))
        stats = producer.get_stats()["deduplication_stats"]
    finally:
        producer.close()
    # Then the records are sent and the unverified checks counted
    assert result["sent"] == 20
    assert stats["unavailable"] == 20
    assert len(read_to_end(kafka_bootstrap, topic, at_least=20)) == 20
