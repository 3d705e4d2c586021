"""``run_async`` shutdown with a handler that never returns (issue 20 item 6): the engine
waits ``shutdown_timeout_s`` once (not once for the stop and again for the revoke of
``close()``), then the stuck call is cancelled and its record stays uncommitted (read again
by the next owner). The time ``run_async`` took to return is reported, not asserted."""

from __future__ import annotations

import asyncio
import time

import pytest
from confluent_kafka import Consumer, TopicPartition

from kafka_reliable.aio import run_async
from kafka_reliable.consumer import ConsumerRecord
from tests.helpers.consumer import json_items, new_consumer, produce


def committed_offset(bootstrap: str, group: str, topic: str) -> int:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        return c.committed([TopicPartition(topic, 0)], timeout=10)[0].offset
    finally:
        c.close()


def test_a_stuck_handler_is_cancelled_after_the_shutdown_timeout_and_not_committed(
    kafka_bootstrap: str, new_topic, record_property: pytest.RecordProperty
) -> None:
    # Given one record whose handler never returns, and a 1 s shutdown timeout
    topic = new_topic(partitions=1)
    produce(kafka_bootstrap, topic, json_items(1))
    consumer = new_consumer(kafka_bootstrap, topic, shutdown_timeout_s=1.0)
    started, cancelled = asyncio.Event(), []

    async def stuck(rec: ConsumerRecord) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(rec.offset)
            raise

    async def main() -> tuple[float, list[int]]:
        task = asyncio.ensure_future(run_async(consumer, stuck, concurrency=4))
        await asyncio.wait_for(started.wait(), 60)
        # When the consumer is stopped while the handler is stuck
        t0 = time.monotonic()
        consumer.stop()
        await asyncio.wait_for(task, 30)
        took_s = time.monotonic() - t0
        await asyncio.sleep(0)  # a cancellation requested by run_async is delivered
        return took_s, list(cancelled)  # (before asyncio.run cancels what is left)

    took_s, cancelled_by_run_async = asyncio.run(main())
    # Then run_async returned, the stuck call was cancelled, and nothing was committed for it
    assert cancelled_by_run_async == [0]
    assert committed_offset(kafka_bootstrap, consumer.settings.group_id, topic) < 1
    assert consumer.stats.counts["handled"] == 0 and not consumer.running
    record_property("stop_to_return_s", round(took_s, 2))
    print(f"run_async returned {took_s:.2f} s after stop() (shutdown_timeout_s=1)")
