"""``run_async`` on the real broker: async handlers, in order per partition (per key with
ordering="key"), concurrent otherwise; failures routed as with run(); contiguous commits."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from kafka_reliable import RetryConfig
from kafka_reliable.aio.consumer import AsyncReliableConsumer, run_async
from kafka_reliable.consumer import ConsumerRecord
from tests.helpers.consumer import FAST_RETRY, FlakyError, json_items, keyed, new_consumer, produce
from tests.helpers.kafka import read_to_end, unique_name


async def until(cond: Callable[[], bool], timeout_s: float, what: Callable[[], str]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s: {what()}")
        await asyncio.sleep(0.05)


async def consume_until(consumer: Any, handler: Callable[[ConsumerRecord], Awaitable[None]],
                        cond: Callable[[], bool], what: Callable[[], str], concurrency: int = 50,
                        timeout_s: float = 60) -> None:
    """run_async until ``cond``; then stop it and re-raise what it raised."""
    task = asyncio.ensure_future(run_async(consumer, handler, concurrency=concurrency))
    try:
        await until(lambda: cond() or task.done(), timeout_s, what)
    finally:
        consumer.stop()
        await asyncio.wait_for(task, 30)


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> list[int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return [tp.offset for tp in sorted(tps, key=lambda t: t.partition)]
    finally:
        c.close()


def test_partitions_in_order_concurrently_failures_routed(kafka_bootstrap: str, new_topic) -> None:
    # Given 600 records on 4 partitions; 10% fail their first attempt, 1% always fail
    n, parts = 600, 4
    topic = new_topic(partitions=parts)
    produce(kafka_bootstrap, topic, json_items(n))
    consumer = new_consumer(kafka_bootstrap, topic, group="aio-billing", retry_config=FAST_RETRY)
    ok: Counter[int] = Counter()
    firsts: dict[int, list[int]] = defaultdict(list)
    active: Counter[int] = Counter()
    overlap: list[tuple[int, int]] = []
    peak = [0, 0]

    async def handler(rec: ConsumerRecord) -> None:
        i = rec.value["i"]
        if rec.attempt == 0:
            firsts[rec.partition].append(rec.offset)
            active[rec.partition] += 1
            if active[rec.partition] > 1:
                overlap.append((rec.partition, rec.offset))
        peak[0] += 1
        peak[1] = max(peak[1], peak[0])
        try:
            await asyncio.sleep(random.uniform(0, 0.004))
            if i % 100 == 5:
                raise FlakyError(f"always failing {i}")
            if i % 10 == 0 and rec.attempt == 0:
                raise FlakyError(f"transient {i}")
            ok[i] += 1
        finally:
            peak[0] -= 1
            if rec.attempt == 0:
                active[rec.partition] -= 1

    always = {i for i in range(n) if i % 100 == 5}

    # When it runs with async handlers, 50 at a time
    asyncio.run(consume_until(
        consumer, handler, lambda: len(ok) == n - len(always) and consumer.stats.counts["dead_lettered"] == len(always),
        lambda: f"{len(ok)} handled, {consumer.stats.counts}"))

    # Then every record was handled once (or dead-lettered), one partition's records one at a
    # time in offset order, several partitions at once
    assert set(ok) == set(range(n)) - always and max(ok.values()) == 1
    assert overlap == []
    assert all(offs == sorted(offs) and len(offs) == len(set(offs)) for offs in firsts.values())
    assert sum(map(len, firsts.values())) == n
    assert 1 < peak[1] <= 50
    stats = consumer.get_stats()
    assert stats["messages_retried"] == n // 10 + 3 * len(always)
    assert stats["retry_stats"]["successful_retries"] == n // 10 - len(always & {i for i in range(n) if i % 10 == 0})
    assert len(read_to_end(kafka_bootstrap, f"{topic}.aio-billing.dlq", at_least=len(always))) == len(always)
    # and every source record is committed (contiguously: up to each partition's end)
    assert sum(committed(kafka_bootstrap, "aio-billing", topic, parts)) == n


def test_key_order_with_one_partition_and_concurrent_keys(kafka_bootstrap: str, new_topic) -> None:
    # Given one partition, 10 keys x 8 records; #2 of every key fails once, #5 of keys 0-1
    # always fails (DLQ after 2 retries)
    topic = new_topic(partitions=1)
    produce(kafka_bootstrap, topic, keyed(10, 8))
    calls: dict[int, list[tuple[int, int]]] = defaultdict(list)
    ok: dict[int, list[int]] = defaultdict(list)
    running: set[int] = set()
    peak = [0]

    async def handler(rec: ConsumerRecord) -> None:
        k, s = rec.value["k"], rec.value["s"]
        assert k not in running, f"key {k} handled twice at once"
        running.add(k)
        peak[0] = max(peak[0], len(running))
        calls[k].append((s, rec.attempt))
        try:
            await asyncio.sleep(random.uniform(0.001, 0.005))
            if s == 2 and rec.attempt == 0:
                raise FlakyError("transient")
            if s == 5 and k < 2:
                raise FlakyError("permanent")
            ok[k].append(s)
        finally:
            running.discard(k)

    consumer = AsyncReliableConsumer(
        bootstrap_servers=kafka_bootstrap, group_id=unique_name("aio-ord"), topics=[topic], ordering="key",
        retry_config=RetryConfig(max_retries=2, initial_delay_ms=100, max_delay_ms=200, jitter=False),
    )

    async def main() -> None:
        task = asyncio.ensure_future(consumer.run_async(handler, concurrency=20))
        try:
            await until(lambda: sum(map(len, ok.values())) == 78 and consumer.stats.counts["dead_lettered"] == 2,
                        60, lambda: f"{sum(map(len, ok.values()))} handled, {consumer.stats.counts}")
        finally:
            consumer.stop()
            await asyncio.wait_for(task, 30)

    # When it runs with async handlers
    asyncio.run(main())
    # Then each key saw its records in order, failures retried in place, followers after them,
    # while different keys of the one partition ran at the same time
    for k in range(10):
        seqs = [s for s, _ in calls[k]]
        assert seqs == sorted(seqs), (k, calls[k])
        assert ok[k] == [s for s in range(8) if not (s == 5 and k < 2)], (k, ok[k])
    assert peak[0] > 1
    assert consumer.stats.counts["parked"] > 0


def test_cancelling_run_async_commits_only_what_was_handled(kafka_bootstrap: str, new_topic) -> None:
    # Given one partition of 60 records and a slow handler
    topic = new_topic(partitions=1)
    produce(kafka_bootstrap, topic, json_items(60))
    group = unique_name("aio-cancel")
    first: list[int] = []
    second: list[int] = []

    def handler_into(seen: list[int], delay_s: float) -> Callable[[ConsumerRecord], Awaitable[None]]:
        async def handler(rec: ConsumerRecord) -> None:
            await asyncio.sleep(delay_s)
            seen.append(rec.value["i"])
        return handler

    async def main() -> int:
        c1 = new_consumer(kafka_bootstrap, topic, group=group)
        task = asyncio.ensure_future(run_async(c1, handler_into(first, 0.02)))
        await until(lambda: len(first) >= 10, 30, lambda: f"{len(first)} handled")
        # When the task awaiting run_async is cancelled mid-stream
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert not c1.running
        [offset] = committed(kafka_bootstrap, group, topic, 1)
        # and a new member takes over
        c2 = new_consumer(kafka_bootstrap, topic, group=group)
        await consume_until(c2, handler_into(second, 0), lambda: len(second) >= 60 - offset,
                            lambda: f"{len(second)} handled after offset {offset}")
        return offset

    offset = asyncio.run(main())
    # Then what was committed had been handled (contiguously), and nothing was skipped
    assert first[:offset] == list(range(offset)) and len(first) >= offset >= 10
    assert second == list(range(offset, 60))
    assert json.loads(json.dumps(sorted(set(first) | set(second)))) == list(range(60))
