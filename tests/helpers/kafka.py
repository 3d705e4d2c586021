"""Small helpers for tests on the real broker: create topics, read records back."""

from __future__ import annotations

import time
import uuid
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from tests.helpers.waits import wait_until


def unique_name(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def create_topic(
    admin: AdminClient, name: str, partitions: int = 1, config: dict[str, str] | None = None
) -> str:
    fs = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})])
    fs[name].result(timeout=30)
    wait_for_topic(admin, name)
    return name


def wait_for_topic(admin: AdminClient, name: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        md = admin.list_topics(topic=name, timeout=5)
        t = md.topics.get(name)
        if t is not None and t.error is None and t.partitions and all(
            p.leader >= 0 for p in t.partitions.values()
        ):
            return
        time.sleep(0.1)
    raise TimeoutError(f"topic {name} has no leader after {timeout_s}s")


def wait_for_config(admin: AdminClient, topic: str, key: str, value: str, timeout_s: float = 15.0) -> None:
    """Until the broker describes ``topic`` with ``key=value`` (an altered config applies asynchronously)."""
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)

    def current() -> str | None:
        return admin.describe_configs([res])[res].result(timeout=10)[key].value

    wait_until(lambda: current() == value, timeout_s, lambda: f"{topic} {key} is {current()!r}, wanted {value!r}")


def consume_all(
    bootstrap: str, topic: str, expected: int | None = None, timeout_s: float = 30.0, idle_s: float = 3.0
) -> list[Message]:
    """Read a topic from the beginning until `expected` records or `idle_s` without records."""
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": unique_name("test-reader"),
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "enable.partition.eof": False,
    })
    c.subscribe([topic])
    out: list[Message] = []
    deadline = time.monotonic() + timeout_s
    last = time.monotonic()
    try:
        while time.monotonic() < deadline:
            if expected is not None and len(out) >= expected:
                break
            batch = c.consume(num_messages=1000, timeout=0.5)
            got = [m for m in batch if m.error() is None]
            for m in batch:
                err = m.error()
                if err is not None and err.code() != KafkaError._PARTITION_EOF:
                    raise RuntimeError(f"consume error: {err}")
            if got:
                out.extend(got)
                last = time.monotonic()
            elif expected is None and out and time.monotonic() - last > idle_s or expected is None and not out and time.monotonic() - last > idle_s + 5:
                break
    finally:
        c.close()
    return out


def read_to_end(bootstrap: str, topic: str, timeout_s: float = 20) -> list[Message]:
    """Every committed record of ``topic``, read up to the end of each partition (no idle wait)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_name("end"), "enable.partition.eof": True,
                  "isolation.level": "read_committed", "enable.auto.commit": False})
    parts = c.list_topics(topic, timeout=10).topics[topic].partitions
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
    out: list[Message] = []
    open_parts, deadline = set(parts), time.monotonic() + timeout_s
    try:
        while open_parts and time.monotonic() < deadline:
            for m in c.consume(500, timeout=0.2):
                err = m.error()
                if err is None:
                    out.append(m)
                elif err.code() == KafkaError._PARTITION_EOF:
                    open_parts.discard(m.partition())
                else:
                    raise RuntimeError(f"consume error: {err}")
    finally:
        c.close()
    assert not open_parts, f"{topic}: partitions {open_parts} not read to the end in {timeout_s}s"
    return out


def topic_count(admin_conf: dict[str, Any], topic: str) -> int:
    """Exact record count from watermarks (high - low per partition)."""
    c = Consumer({**admin_conf, "group.id": unique_name("wm")})
    try:
        md = c.list_topics(topic, timeout=10)
        total = 0
        for p in md.topics[topic].partitions:
            lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            total += hi - lo
        return total
    finally:
        c.close()


def headers_dict(msg: Message) -> dict[str, bytes]:
    return {k: v for k, v in (msg.headers() or [])}
