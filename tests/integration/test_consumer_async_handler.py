"""``run()`` with a handler that returns a coroutine (issue 20 item 1): the handler would never
run; the consumer stops with one line pointing to run_async, counts nothing as handled and
commits nothing, so ``run_async`` later reads every record."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from kafka_reliable.consumer import ConsumerError, ConsumerRecord
from tests.helpers.consumer import json_items, new_consumer, produce


def test_a_handler_returning_a_coroutine_stops_run_and_commits_nothing(
    kafka_bootstrap: str, new_topic
) -> None:
    # Given 5 records and a plain function that returns a coroutine (not caught at run())
    topic = new_topic(partitions=1)
    produce(kafka_bootstrap, topic, json_items(5))
    consumer = new_consumer(kafka_bootstrap, topic)
    ran: list[int] = []

    async def handle(rec: ConsumerRecord) -> None:
        ran.append(rec.offset)

    def handler(rec: ConsumerRecord) -> Any:
        return handle(rec)

    # When it runs (the watchdog only bounds a regression that would run forever)
    watchdog = threading.Timer(60, consumer.stop)
    watchdog.start()
    try:
        with pytest.raises(ConsumerError, match="run_async") as info:
            consumer.run(handler)
    finally:
        watchdog.cancel()
    # Then: one line, nothing handled, nothing committed
    assert "\n" not in str(info.value) and ran == []
    assert consumer.stats.counts["handled"] == 0
    c = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": consumer.settings.group_id})
    try:
        assert (
            c.committed([TopicPartition(topic, 0)], timeout=10)[0].offset < 1
        )  # record 0 is read again
    finally:
        c.close()
