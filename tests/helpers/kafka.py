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


def read_to_end(bootstrap: str, topic: str, timeout_s: float = 30, *, at_least: int = 0) -> list[Message]:
    """Every committed record of ``topic``, read up to the end of each partition (no idle wait).

    With ``at_least`` (records still on their way, e.g. moved by a worker), reading goes on
    until that many have arrived *and* every partition is at its end again, so copies beyond
    ``at_least`` already written are returned too. Without it, a topic that does not exist
    reads as empty. Fails naming the topic when ``timeout_s`` passes first.
    """
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_name("end"), "enable.partition.eof": True,
                  "isolation.level": "read_committed", "enable.auto.commit": False})
    out: list[Message] = []
    deadline = time.monotonic() + timeout_s
    try:
        parts = _partitions(c, topic, deadline if at_least else None)
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        open_parts = set(parts)
        while (open_parts or len(out) < at_least) and time.monotonic() < deadline:
            for m in c.consume(500, timeout=0.2):
                err = m.error()
                if err is None:
                    out.append(m)
                    open_parts.add(m.partition())  # more records: not at the end until EOF again
                elif err.code() == KafkaError._PARTITION_EOF:
                    open_parts.discard(m.partition())
                else:
                    raise RuntimeError(f"consume error: {err}")
    finally:
        c.close()
    assert not open_parts, f"{topic}: partitions {open_parts} not read to the end in {timeout_s}s"
    assert len(out) >= at_least, f"{topic}: {len(out)} records in {timeout_s}s, expected at least {at_least}"
    return out


def _partitions(c: Consumer, topic: str, deadline: float | None) -> list[int]:
    """The partitions of ``topic``; with a deadline, wait for the topic to exist (else: none)."""
    while True:
        md = c.list_topics(topic, timeout=10).topics.get(topic)
        if md is not None and md.error is None and md.partitions:
            return sorted(md.partitions)
        if deadline is None:
            return []
        assert time.monotonic() < deadline, f"topic {topic} does not exist"
        time.sleep(0.1)


def is_empty(bootstrap: str, topic: str) -> bool:
    """True when ``topic`` holds no record (watermarks; a missing topic is empty)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_name("wm")})
    try:
        parts = _partitions(c, topic, None)
        return all(_span(c, topic, p) == 0 for p in parts)
    finally:
        c.close()


def _span(c: Consumer, topic: str, partition: int) -> int:
    lo, hi = c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
    return int(hi - lo)


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
