"""``replay --from-source``: re-read a dead-lettered record from its original topic.

A DLQ record that says where the original is (topic, partition, offset) can be replayed from
there: the original key, value and headers, as they are still stored in the source topic.
That is the only way to replay a headers-only share-group DLQ record (KIP-1191 without
``errors.deadletterqueue.copy.record.enable``), and it also recovers headers a writer dropped.
A record that is no longer retained (below the partition's low watermark), was compacted
away, or whose topic or partition is gone is refused with the reason.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from kafka_reliable.dlq.model import DlqMessage, _as_bytes
from kafka_reliable.dlq.reader import READER_GROUP, consumer_conf
from kafka_reliable.dlq.targets import where

#: Seconds a re-read waits for its record before giving up with a reason.
FETCH_TIMEOUT_S = 15.0
#: Records read through rather than seeking past them.
SEEK_GAP = 500


class SourceReader:
    """Original records by coordinates, through one consumer (use as a context manager).

    Records are usually wanted in offset order per partition, so the consumer keeps reading
    forward from where it is and seeks only when asked for an earlier offset.
    """

    def __init__(self, conf: Mapping[str, Any], *, timeout_s: float = FETCH_TIMEOUT_S) -> None:
        self._c = Consumer(consumer_conf(conf, READER_GROUP))
        self._timeout_s = timeout_s
        self._watermarks: dict[tuple[str, int], tuple[int, int]] = {}
        self._at: tuple[str, int, int] | None = None  # (topic, partition, next offset)

    def __enter__(self) -> SourceReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._c.close()

    def original(self, m: DlqMessage) -> DlqMessage | str:
        """``m`` with the original record's key, value and headers, or why it cannot be read."""
        topic, p, o = m.original_topic, m.original_partition, m.original_offset
        if topic is None or p is None or o is None:
            return f"--from-source: the record does not say where its original is ({where(m)})"
        got = self._read(topic, p, o)
        if isinstance(got, str):
            return f"--from-source: {topic}[{p}]@{o} {got}"
        raw = got.headers() or []
        pairs = raw.items() if isinstance(raw, dict) else raw
        headers = [(str(k), _as_bytes(v) or b"") for k, v in pairs]
        return dataclasses.replace(
            m, key=_as_bytes(got.key()), value=_as_bytes(got.value()), headers=headers
        )

    def _bounds(self, topic: str, p: int) -> tuple[int, int] | str:
        if (topic, p) not in self._watermarks:
            try:
                self._watermarks[(topic, p)] = self._c.get_watermark_offsets(
                    TopicPartition(topic, p), timeout=self._timeout_s
                )
            except KafkaException as exc:
                err: KafkaError = exc.args[0]
                if err.code() in (
                    KafkaError.UNKNOWN_TOPIC_OR_PART,
                    KafkaError._UNKNOWN_PARTITION,
                    KafkaError._UNKNOWN_TOPIC,
                ):
                    return "cannot be read: the topic or partition does not exist"
                raise
        return self._watermarks[(topic, p)]

    def _read(self, topic: str, p: int, o: int) -> Message | str:
        bounds = self._bounds(topic, p)
        if isinstance(bounds, str):
            return bounds
        lo, hi = bounds
        if o < lo:
            return f"is no longer retained (the partition starts at offset {lo})"
        if o >= hi:
            return f"is not in the topic (its partition ends before offset {hi})"
        at = self._at
        if at is None or at[:2] != (topic, p) or not at[2] <= o <= at[2] + SEEK_GAP:
            self._c.assign([TopicPartition(topic, p, o)])
            self._at = (topic, p, o)
        deadline = time.monotonic() + self._timeout_s
        while time.monotonic() < deadline:
            msg = self._c.poll(0.5)
            if msg is None:
                continue
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    break
                raise KafkaException(err)
            offset = msg.offset() or 0
            self._at = (topic, p, offset + 1)
            if offset == o:
                return msg
            if offset > o:
                break
        self._at = None
        return "was not found (compacted away, or part of an aborted transaction)"
