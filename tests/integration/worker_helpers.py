"""Helpers of the retry-worker tests on the real broker: write ``.retry`` records, run a worker,
read offsets and records back. Not a test module (shared by ``test_retry_worker.py`` and
``test_worker_*.py``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from confluent_kafka import Consumer, Producer, TopicPartition
from prometheus_client import CollectorRegistry

from kafka_reliable import headers as h
from kafka_reliable.headers import Failure, failure_headers
from kafka_reliable.topics import CompanionTopics
from kafka_reliable.worker import RetryWorker, WorkerConfig
from tests.helpers.kafka import headers_dict, unique_name
from tests.helpers.waits import wait_until


def now_ms() -> int:
    return int(time.time() * 1000)


def retry_headers(source: str, due_ms: int, mid: str, attempt: int = 1) -> h.Headers:
    failure = Failure(
        original_topic=source, attempt=attempt, error_code="_MSG_TIMED_OUT", error_class="KafkaTimeoutError",
        error_message="Local: Message timed out", retriable=True, first_failure_at_ms=due_ms - 100,
        last_failure_at_ms=due_ms - 100, next_attempt_at_ms=due_ms,
    )
    return failure_headers([("app", b"\x00raw\xff")], failure, message_id=mid)


def write_retry(
    bootstrap: str, source: str, items: list[tuple[str, int, int]], ts_ms: int = 0, target: str | None = None
) -> None:
    """Write ``(message_id, due_ms, partition)`` records to ``<source>.retry`` with a raw producer;
    their ``original.topic`` header is ``target`` (default: ``source``)."""
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "enable.idempotence": True})
    for mid, due, part in items:
        while True:
            try:
                p.produce(f"{source}.retry", key=mid.encode(), value=f"value-{mid}".encode(), partition=part,
                          headers=retry_headers(target or source, due, mid), timestamp=ts_ms)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    assert p.flush(30) == 0


def companions(bootstrap: str, source: str) -> None:
    CompanionTopics({"bootstrap.servers": bootstrap}).ensure(source)


@contextmanager
def running(config: WorkerConfig, registry: CollectorRegistry | None = None) -> Iterator[RetryWorker]:
    """A RetryWorker on a thread; stopped (and checked to exit 0 within 30 s) on leaving."""
    worker = RetryWorker(config=config, registry=registry)
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(worker.run()), daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(30)
    assert not thread.is_alive(), "worker did not stop within 30 s"
    assert codes == [0]


def wait_for(cond: Callable[[], bool], timeout_s: float, what: str) -> None:
    wait_until(cond, timeout_s, what)


def group_committed(bootstrap: str, group: str, topic: str, partitions: int) -> list[int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        return [tp.offset for tp in c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)]
    finally:
        c.close()


def high_watermarks(bootstrap: str, topic: str, partitions: int) -> list[int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_name("wm")})
    try:
        return [c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(partitions)]
    finally:
        c.close()


def read_ids(bootstrap: str, topic: str, expected: int, read_committed: bool) -> list[str]:
    """Message ids of a topic, read until ``expected`` arrived and 1 s passed without more."""
    c = Consumer({
        "bootstrap.servers": bootstrap, "group.id": unique_name("reader"), "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "isolation.level": "read_committed" if read_committed else "read_uncommitted",
    })
    c.subscribe([topic])
    ids: list[str] = []
    deadline, idle_since = time.monotonic() + 60, time.monotonic()
    try:
        while time.monotonic() < deadline and time.monotonic() - idle_since < 3:
            batch = [m for m in c.consume(2000, timeout=0.5) if m.error() is None]
            if batch:
                idle_since = time.monotonic()
            ids.extend(headers_dict(m)[h.MESSAGE_ID].decode() for m in batch)
            if len(ids) >= expected and time.monotonic() - idle_since > 1:
                break
    finally:
        c.close()
    return ids


def read_committed_all(bootstrap: str, topic: str, expected: int) -> list:
    """Committed records of a topic: ``expected`` of them, then whatever follows within 1 s."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_name("reader"),
                  "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
    c.subscribe([topic])
    out: list = []
    deadline = time.monotonic() + 15
    try:
        while time.monotonic() < deadline and len(out) < expected:
            out.extend(m for m in c.consume(100, timeout=0.5) if m.error() is None)
        out.extend(m for m in c.consume(100, timeout=1.0) if m.error() is None)
    finally:
        c.close()
    return out


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]
