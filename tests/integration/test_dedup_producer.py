"""Dedup through ReliableKafkaProducer on the real broker and Redis."""

from __future__ import annotations

import json
import multiprocessing as mp
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


def _values(n: int) -> list[dict[str, Any]]:
    return [{"order": i, "amount": i * 3 + 1} for i in range(n)]


def _send_in_process(
    bootstrap: str, redis_url: str, topic: str, n: int, order_seed: int, barrier: Any, out: Any, spool: str
) -> None:
    """One producer process: the same n records, in its own order, in small batches."""
    values = _values(n)
    random.Random(order_seed).shuffle(values)
    producer = ReliableKafkaProducer(
        bootstrap_servers=bootstrap, enable_deduplication=True, redis_client=redis.Redis.from_url(redis_url),
        spool_path=spool,
    )
    sent = duplicates = 0
    try:
        barrier.wait(timeout=60)
        for i in range(0, n, 25):
            result = producer.send_batch(topic, values[i : i + 25], key_extractor=lambda v: str(v["order"]))
            sent += result["sent"]
            duplicates += result["duplicates"]
    finally:
        producer.close()
    out.put((sent, duplicates))


def test_two_producer_processes_send_the_same_records_once(
    kafka_bootstrap: str, redis_url: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    # Given two producer processes sharing one Redis, each holding the same 1,000 records
    topic = new_topic(partitions=3, prefix="dedup2p")
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    out = ctx.Queue()
    procs = [
        ctx.Process(
            target=_send_in_process,
            args=(kafka_bootstrap, redis_url, topic, 1000, seed, barrier, out, str(tmp_path / f"spool-{seed}.db")),
        )
        for seed in (1, 2)
    ]
    # When both send at the same time
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    # Then exactly 1,000 records reach the topic, each once
    assert [p.exitcode for p in procs] == [0, 0]
    assert sum(s for s, _ in results) == 1000
    assert sum(d for _, d in results) == 1000
    records = read_to_end(kafka_bootstrap, topic, at_least=1000)
    orders = sorted(json.loads(m.value() or b"null")["order"] for m in records)
    assert orders == list(range(1000))


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
    unique = _values(9000)
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
        result = producer.send_batch(topic, _values(20))
        stats = producer.get_stats()["deduplication_stats"]
    finally:
        producer.close()
    # Then the records are sent and the unverified checks counted
    assert result["sent"] == 20
    assert stats["unavailable"] == 20
    assert len(read_to_end(kafka_bootstrap, topic, at_least=20)) == 20
