"""Companion topics ``<topic>.retry`` and ``<topic>.dlq``: created on first need.

Created with the source topic's partition count (the original key keeps one key in one
partition). ``.dlq`` gets ``retention.ms`` and a ``max.message.bytes`` above the source's so
an oversized record still fits.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, OffsetSpec

from kafka_reliable.config import TopicNaming, client_config

log = logging.getLogger(__name__)

#: Headroom added to the source's max.message.bytes on ``.dlq`` (headers + a wider record).
DLQ_MAX_MESSAGE_BYTES_HEADROOM = 1 << 20
#: Broker default of max.message.bytes when the source topic cannot be described.
DEFAULT_MAX_MESSAGE_BYTES = 1_048_588
#: Seconds a topic's max.message.bytes is remembered.
MAX_BYTES_CACHE_S = 60.0


class CompanionTopics:
    """Creates and describes companion topics; remembers what exists."""

    def __init__(
        self,
        conf: Mapping[str, Any],
        naming: TopicNaming | None = None,
        admin: AdminClient | None = None,
    ) -> None:
        self._conf = client_config(conf)
        self.naming = naming or TopicNaming()
        self._admin = admin
        self._known: set[str] = set()
        self._max_bytes: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    @property
    def admin(self) -> AdminClient:
        if self._admin is None:
            self._admin = AdminClient(self._conf)
        return self._admin

    def partitions(self, topic: str, timeout_s: float = 10.0) -> int | None:
        """Partition count of ``topic``, or None when it does not exist."""
        md = self.admin.list_topics(topic=topic, timeout=timeout_s)
        t = md.topics.get(topic)
        if t is None or t.error is not None or not t.partitions:
            return None
        return len(t.partitions)

    def max_message_bytes(self, topic: str, timeout_s: float = 10.0) -> int:
        """The topic's ``max.message.bytes`` (cached for ``MAX_BYTES_CACHE_S``)."""
        now = time.monotonic()
        hit = self._max_bytes.get(topic)
        if hit is not None and now - hit[1] < MAX_BYTES_CACHE_S:
            return hit[0]
        res = ConfigResource(ConfigResource.Type.TOPIC, topic)
        try:
            cfg = self.admin.describe_configs([res])[res].result(timeout=timeout_s)
            value = int(cfg["max.message.bytes"].value)
        except (KafkaException, KeyError, ValueError):
            return DEFAULT_MAX_MESSAGE_BYTES
        self._max_bytes[topic] = (value, now)
        return value

    def ensure(self, topic: str, timeout_s: float = 30.0) -> tuple[str, str]:
        """Make sure ``<topic>.retry`` and ``<topic>.dlq`` exist; return their names."""
        retry, dlq = self.naming.retry_topic(topic), self.naming.dlq_topic(topic)
        with self._lock:
            if retry in self._known and dlq in self._known:
                return retry, dlq
        n = self.partitions(topic, timeout_s) or 1
        max_bytes = self.max_message_bytes(topic, timeout_s) + DLQ_MAX_MESSAGE_BYTES_HEADROOM
        wanted = {
            retry: NewTopic(
                retry,
                num_partitions=n,
                replication_factor=-1,
                config={"max.message.bytes": str(max_bytes)},
            ),
            dlq: NewTopic(
                dlq,
                num_partitions=n,
                replication_factor=-1,
                config={
                    "retention.ms": str(self.naming.dlq_retention_ms),
                    "max.message.bytes": str(max_bytes),
                },
            ),
        }
        self._create(wanted, timeout_s)
        with self._lock:
            self._known.update(wanted)
        return retry, dlq

    def _create(self, wanted: dict[str, NewTopic], timeout_s: float) -> None:
        md = self.admin.list_topics(timeout=timeout_s)
        missing = [nt for name, nt in wanted.items() if name not in md.topics]
        if not missing:
            return
        for name, fut in self.admin.create_topics(missing, operation_timeout=timeout_s).items():
            try:
                fut.result(timeout=timeout_s)
                log.info("created companion topic %s", name)
            except KafkaException as exc:
                err = exc.args[0] if exc.args else None
                if isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                    continue
                raise

    def watermarks(self, topic: str, timeout_s: float = 10.0) -> dict[int, tuple[int, int]]:
        """``{partition: (low, high)}`` for every partition; empty when the topic is missing.

        Read with the admin client's ListOffsets: the one cluster client a producer keeps
        for everything it reads (metadata, configs, watermarks, group offsets).
        """
        md = self.admin.list_topics(topic=topic, timeout=timeout_s)
        t = md.topics.get(topic)
        if t is None or t.error is not None or not t.partitions:
            return {}
        tps = [TopicPartition(topic, p) for p in t.partitions]
        low = self.admin.list_offsets(
            {tp: OffsetSpec.earliest() for tp in tps}, request_timeout=timeout_s
        )
        high = self.admin.list_offsets(
            {tp: OffsetSpec.latest() for tp in tps}, request_timeout=timeout_s
        )
        lows = {tp.partition: f.result(timeout=timeout_s).offset for tp, f in low.items()}
        highs = {tp.partition: f.result(timeout=timeout_s).offset for tp, f in high.items()}
        return {p: (lows[p], highs[p]) for p in lows}

    def committed(
        self, group: str, topic: str, partitions: list[int], timeout_s: float = 10.0
    ) -> dict[int, int]:
        """A consumer group's committed offsets (negative when none), by partition."""
        req = [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in partitions])]
        fut = self.admin.list_consumer_group_offsets(req, request_timeout=timeout_s)[group]
        return {tp.partition: tp.offset for tp in fut.result(timeout=timeout_s).topic_partitions}

    def close(self) -> None:
        """Drop the admin client (it closes with its last reference: no reconnecting after)."""
        self._admin = None

    def count(self, topic: str, timeout_s: float = 10.0) -> int:
        """Exact record count (high - low summed over partitions)."""
        return sum(hi - lo for lo, hi in self.watermarks(topic, timeout_s).values())
