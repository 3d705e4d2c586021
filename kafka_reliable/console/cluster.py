"""The console's view of the cluster: one shared admin client, a short-lived consumer per read.

Each bounded read (a page, a record, a sample) gets a consumer of its own (:meth:`reading`):
librdkafka holds a reused consumer's next fetch back by up to a second after a re-assignment
(a stale fetch of the previous read is still being served), while a fresh one fetches at once,
tens of milliseconds in all. At most :data:`MAX_READERS` reads run at the same time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from kafka_reliable.config import client_config
from kafka_reliable.dlq.reader import Offsets

#: Seconds the topic list is reused before asking the cluster again.
TOPICS_TTL_S = 5.0
#: Group id of the console's reader (it never commits).
CONSOLE_READER_GROUP = "kafka-reliable-console-reader"
#: A read's fetch settings: a read is bounded and often ends at the high watermark, where a
#: fetch long-polls (``fetch.wait.max.ms``) and a partition's end backs fetches off
#: (``fetch.error.backoff.ms``), 500 ms each by default.
READER_SETTINGS = {
    "fetch.wait.max.ms": 10,
    "fetch.error.backoff.ms": 10,
    "fetch.queue.backoff.ms": 10,
}
#: Reads running at the same time (each holds a consumer and its connections).
MAX_READERS = 4

Watermarks = dict[int, tuple[int, int]]


class Cluster:
    """Topic metadata, watermarks and group offsets, batched through one admin client."""

    def __init__(self, conf: Mapping[str, Any], *, timeout_s: float = 10.0) -> None:
        self.conf = client_config(conf)
        self.timeout_s = timeout_s
        self._readers = threading.BoundedSemaphore(MAX_READERS)
        self._admin: AdminClient | None = None
        self._topics: dict[str, int] = {}
        self._parts: dict[str, tuple[float, int | None]] = {}
        self._topics_at = 0.0

    @property
    def admin(self) -> AdminClient:
        if self._admin is None:
            self._admin = AdminClient(self.conf)
        return self._admin

    @contextmanager
    def reading(self) -> Iterator[Consumer]:
        """A read-only consumer for one bounded read (closed afterwards)."""
        with self._readers:
            o = Offsets(
                self.conf,
                group_id=CONSOLE_READER_GROUP,
                timeout_s=self.timeout_s,
                consumer_settings=READER_SETTINGS,
            )
            try:
                yield o.consumer
            finally:
                o.consumer.close()

    def close(self) -> None:
        self._admin = None

    def topics(self, *, fresh: bool = False) -> dict[str, int]:
        """``{topic: partition count}`` of every topic (internal ones excluded)."""
        if fresh or time.monotonic() - self._topics_at > TOPICS_TTL_S:
            md = self.admin.list_topics(timeout=self.timeout_s)
            self._topics = {
                name: len(t.partitions)
                for name, t in md.topics.items()
                if t.error is None and not name.startswith("__")
            }
            self._topics_at = time.monotonic()
            self._parts = {name: (self._topics_at, n) for name, n in self._topics.items()}
        return self._topics

    def partitions(self, topic: str) -> int | None:
        """The partition count of one topic (None when it does not exist), asked for alone:
        a cluster with thousands of topics is not listed for every page."""
        at, count = self._parts.get(topic, (0.0, None))
        if time.monotonic() - at > TOPICS_TTL_S:
            md = self.admin.list_topics(topic=topic, timeout=self.timeout_s)
            t = md.topics.get(topic)
            count = (
                len(t.partitions) if t is not None and t.error is None and t.partitions else None
            )
            self._parts[topic] = (time.monotonic(), count)
        return count

    def exists(self, topic: str) -> bool:
        return self.partitions(topic) is not None

    def watermarks(self, topics: Iterable[str]) -> dict[str, Watermarks]:
        """``{topic: {partition: (low, high)}}`` for many topics in two ListOffsets calls."""
        tps = [TopicPartition(t, p) for t in topics for p in range(self.partitions(t) or 0)]
        if not tps:
            return {}
        low = self._list_offsets(tps, OffsetSpec.earliest())
        high = self._list_offsets(tps, OffsetSpec.latest())
        out: dict[str, Watermarks] = {}
        for key, lo in low.items():
            t, p = key
            out.setdefault(t, {})[p] = (lo, high.get(key, lo))
        return out

    def _list_offsets(
        self, tps: list[TopicPartition], spec: OffsetSpec
    ) -> dict[tuple[str, int], int]:
        futures = self.admin.list_offsets({tp: spec for tp in tps}, request_timeout=self.timeout_s)
        out: dict[tuple[str, int], int] = {}
        for tp, fut in futures.items():
            try:
                out[(tp.topic, tp.partition)] = fut.result(timeout=self.timeout_s).offset
            except KafkaException:  # a partition without a leader right now: left out
                continue
        return out

    def committed(self, group: str) -> dict[tuple[str, int], int]:
        """Every offset ``group`` has committed, by (topic, partition)."""
        req = [ConsumerGroupTopicPartitions(group)]
        fut = self.admin.list_consumer_group_offsets(req, request_timeout=self.timeout_s)[group]
        try:
            result = fut.result(timeout=self.timeout_s)
        except KafkaException:
            return {}
        return {
            (tp.topic, tp.partition): tp.offset
            for tp in result.topic_partitions or []
            if tp.offset >= 0
        }
