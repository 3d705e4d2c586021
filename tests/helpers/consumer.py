"""Producing test records and running a ``ReliableConsumer`` on a thread (consumer tests)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from confluent_kafka import Producer
from prometheus_client import CollectorRegistry

from kafka_reliable import RetryConfig
from kafka_reliable.consumer import ConsumerRecord, ReliableConsumer
from tests.helpers.kafka import unique_name

FAST_RETRY = RetryConfig(max_retries=3, initial_delay_ms=100, max_delay_ms=400, jitter=True)


class FlakyError(Exception):
    """A transient failure of the handler (tests)."""


def produce(bootstrap: str, topic: str, items: list[tuple[bytes | None, bytes | None]],
            partition: int | None = None) -> None:
    """Write ``(key, value)`` records in order (idempotent producer: no reordering)."""
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
    for key, value in items:
        while True:
            try:
                if partition is None:
                    p.produce(topic, value=value, key=key)
                else:
                    p.produce(topic, value=value, key=key, partition=partition)
                break
            except BufferError:
                p.poll(0.05)
    assert p.flush(30) == 0


def json_items(n: int, key: Callable[[int], str] = lambda i: f"k{i}") -> list[tuple[bytes | None, bytes | None]]:
    return [(key(i).encode(), json.dumps({"i": i}).encode()) for i in range(n)]


def new_consumer(bootstrap: str, topic: str, group: str | None = None, **kw: Any) -> ReliableConsumer:
    kw.setdefault("retry_config", FAST_RETRY)
    return ReliableConsumer(bootstrap_servers=bootstrap, group_id=group or unique_name("g"), topics=[topic],
                            metrics_registry=CollectorRegistry(), **kw)


@contextmanager
def running(consumer: ReliableConsumer, handler: Callable[[ConsumerRecord], Any]) -> Iterator[ReliableConsumer]:
    """Run the consumer in a thread; stop it (and re-raise what run raised) on exit."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            consumer.run(handler)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            errors.append(exc)

    t = threading.Thread(target=target, daemon=True)
    t.start()
    try:
        yield consumer
    finally:
        consumer.stop()
        t.join(30)
        assert not t.is_alive(), "consumer did not stop within 30 s"
    if errors:
        raise errors[0]


def keyed(keys: int, seqs: int) -> list[tuple[bytes | None, bytes | None]]:
    """``seqs`` records per key, keys interleaved: k0#0, k1#0, …, k0#1, …"""
    return [(f"k{k}".encode(), json.dumps({"k": k, "s": s}).encode()) for s in range(seqs) for k in range(keys)]
