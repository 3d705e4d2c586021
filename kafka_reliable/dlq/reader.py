"""Reading a DLQ topic: bounded scans from the low watermark to a high-watermark snapshot.

A scan never waits for records that arrive after it started, so ``list`` and ``replay`` end
even on a DLQ that keeps growing. Reads are ``read_committed``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from kafka_reliable.config import client_config
from kafka_reliable.dlq.model import DlqMessage
from kafka_reliable.errors import KafkaReliableError

log = logging.getLogger(__name__)

#: Group id of read-only consumers (they never commit).
READER_GROUP = "kafka-reliable-dlq-reader"
#: A scan that receives nothing (no record, no end-of-partition) this long fails.
SCAN_IDLE_TIMEOUT_S = 30.0


class DlqError(KafkaReliableError):
    """A DLQ operation failed or was refused; the message says why."""


def consumer_conf(conf: Mapping[str, Any], group_id: str = READER_GROUP) -> dict[str, Any]:
    return {
        **client_config(conf),
        "group.id": group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
    }


class Offsets:
    """Partition metadata of a topic through one short-lived consumer (use as a context manager)."""

    def __init__(
        self,
        conf: Mapping[str, Any],
        group_id: str = READER_GROUP,
        timeout_s: float = 10.0,
        *,
        consumer_settings: Mapping[str, Any] | None = None,
    ) -> None:
        """``consumer_settings``: librdkafka consumer keys on top of the reader's own."""
        self.consumer = Consumer({**consumer_conf(conf, group_id), **(consumer_settings or {})})
        self.timeout_s = timeout_s

    def __enter__(self) -> Offsets:
        return self

    def __exit__(self, *exc: object) -> None:
        self.consumer.close()

    def partitions(self, topic: str) -> list[int] | None:
        """Partition ids, or None when the topic does not exist."""
        md = self.consumer.list_topics(topic, timeout=self.timeout_s)
        t = md.topics.get(topic)
        if t is None or t.error is not None or not t.partitions:
            return None
        return sorted(t.partitions)

    def watermarks(self, topic: str) -> dict[int, tuple[int, int]]:
        """``{partition: (low, high)}``; empty when the topic does not exist."""
        return {
            p: self.consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=self.timeout_s)
            for p in self.partitions(topic) or []
        }

    def offsets_for_time(
        self, topic: str, ts_ms: int, wm: Mapping[int, tuple[int, int]]
    ) -> dict[int, int]:
        """Per partition, the first offset whose timestamp is >= ``ts_ms`` (high when none)."""
        tps = [TopicPartition(topic, p, ts_ms) for p in wm]
        out: dict[int, int] = {}
        for tp in self.consumer.offsets_for_times(tps, timeout=self.timeout_s):
            if tp.error is not None:
                raise KafkaException(tp.error)
            lo, hi = wm[tp.partition]
            out[tp.partition] = hi if tp.offset < 0 else min(max(tp.offset, lo), hi)
        return out

    def committed(self, topic: str, parts: list[int]) -> dict[int, int | None]:
        tps = self.consumer.committed(
            [TopicPartition(topic, p) for p in parts], timeout=self.timeout_s
        )
        return {tp.partition: (tp.offset if tp.offset >= 0 else None) for tp in tps}


class RangeReader:
    """Yields records of ``topic`` in ``[start, end)`` per partition; ``done(p)`` stops one
    early."""

    def __init__(
        self,
        consumer: Consumer,
        topic: str,
        ranges: Mapping[int, tuple[int, int]],
        idle_timeout_s: float = SCAN_IDLE_TIMEOUT_S,
        batch: int = 500,
    ) -> None:
        self._c = consumer
        self._topic = topic
        self._end = {p: end for p, (start, end) in ranges.items() if start < end}
        self._start = {p: ranges[p][0] for p in self._end}
        self._open = set(self._end)
        self._idle_timeout_s = idle_timeout_s
        # consume() waits until it has ``num_messages`` or its timeout passed: asking for no more
        # than the ranges hold returns a short read (a page, one record) at once, not after 0.5 s
        self._batch = max(1, min(batch, sum(self._end[p] - self._start[p] for p in self._end)))

    def done(self, partition: int) -> None:
        if partition in self._open:
            self._open.discard(partition)
            self._c.pause([TopicPartition(self._topic, partition)])

    def __iter__(self) -> Iterator[Message]:
        if not self._open:
            return
        tps = [TopicPartition(self._topic, p, self._start[p]) for p in self._open]
        self._c.assign(tps)
        self._c.resume(tps)  # librdkafka keeps a partition's pause flag across assignments
        last = time.monotonic()
        try:
            while self._open:
                batch = self._c.consume(num_messages=self._batch, timeout=0.5)
                if batch:
                    last = time.monotonic()
                elif time.monotonic() - last > self._idle_timeout_s:
                    raise DlqError(
                        f"reading {self._topic} stalled: "
                        f"nothing received for {self._idle_timeout_s:.0f}s"
                    )
                for msg in batch:
                    yield from self._handle(msg)
        finally:
            self._c.unassign()

    def _handle(self, msg: Message) -> Iterator[Message]:
        p, offset = msg.partition(), msg.offset()
        err = msg.error()
        if err is not None:
            if err.code() == KafkaError._PARTITION_EOF and p is not None:
                self.done(p)
                return
            raise KafkaException(err)
        if p is None or offset is None or p not in self._open:
            return
        end = self._end[p]
        if offset >= end:
            self.done(p)
            return
        yield msg
        if offset >= end - 1:
            self.done(p)


@dataclass(frozen=True, kw_only=True)
class DlqFilter:
    """Which DLQ records an operation selects. Empty fields select everything.

    ``errors``: error class (full or simple name), error code or cause class, case-insensitive.
    ``since_ms``/``until_ms``: :attr:`DlqMessage.filter_time_ms`: the failure time when the writer
    recorded one, else the DLQ record's timestamp, which Kafka Connect keeps from the original.
    """

    errors: tuple[str, ...] = ()
    since_ms: int | None = None
    until_ms: int | None = None
    key: str | None = None
    reason: str | None = None
    #: The original topic the record's headers name.
    original_topic: str | None = None
    #: The record's message id (or Karafka trace id).
    message_id: str | None = None
    #: Text contained in the value (UTF-8, case-insensitive).
    text: str | None = None
    #: Only these ``(partition, offset)`` records (a selection); None selects by the fields above.
    coordinates: frozenset[tuple[int, int]] | None = None

    def matches(self, m: DlqMessage) -> bool:
        if self.coordinates is not None and (m.partition, m.offset) not in self.coordinates:
            return False
        if self.original_topic is not None and m.original_topic != self.original_topic:
            return False
        if self.message_id is not None and self.message_id not in (
            m.message_id,
            m.extra.get("trace_id"),
        ):
            return False
        if self.text is not None:
            value = (m.value or b"").decode("utf-8", "replace")
            if self.text.lower() not in value.lower():
                return False
        return self._matches_context(m)

    def _matches_context(self, m: DlqMessage) -> bool:
        if self.errors and not m.error_names & {e.lower() for e in self.errors}:
            return False
        if self.since_ms is not None or self.until_ms is not None:
            at = m.filter_time_ms
            if at is None:
                return False
            if self.since_ms is not None and at < self.since_ms:
                return False
            if self.until_ms is not None and at >= self.until_ms:
                return False
        if self.key is not None and m.key_text() != self.key:
            return False
        return self.reason is None or m.reason == self.reason

    def identity(self) -> dict[str, Any]:
        """What the filter selects, as JSON-safe data (fields added later appear only when set,
        so the replay group of an older filter keeps its name)."""
        out: dict[str, Any] = {
            "errors": sorted(e.lower() for e in self.errors),
            "since_ms": self.since_ms,
            "until_ms": self.until_ms,
            "key": self.key,
            "reason": self.reason,
        }
        for name in ("original_topic", "message_id", "text"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.coordinates is not None:
            out["coordinates"] = sorted(self.coordinates)
        return out

    def ranges(self, ranges: Mapping[int, tuple[int, int]]) -> dict[int, tuple[int, int]]:
        """``ranges`` narrowed to the span of the selected coordinates (all of it without any)."""
        if self.coordinates is None:
            return dict(ranges)
        out: dict[int, tuple[int, int]] = {}
        for p, (start, end) in ranges.items():
            offs = [o for q, o in self.coordinates if q == p]
            out[p] = (max(start, min(offs)), min(end, max(offs) + 1)) if offs else (end, end)
            if out[p][0] > out[p][1]:
                out[p] = (end, end)
        return out


class DlqReader:
    """list / show / find on one DLQ topic."""

    def __init__(self, conf: Mapping[str, Any], timeout_s: float = 10.0) -> None:
        self._conf = dict(conf)
        self._timeout_s = timeout_s

    def iter_messages(self, dlq_topic: str, flt: DlqFilter | None = None) -> Iterator[DlqMessage]:
        """Every record from the low watermark to the current high watermark, filtered."""
        with Offsets(self._conf, timeout_s=self._timeout_s) as o:
            wm = o.watermarks(dlq_topic)
            for msg in RangeReader(o.consumer, dlq_topic, wm):
                m = DlqMessage.from_record(msg)
                if flt is None or flt.matches(m):
                    yield m

    def list_messages(
        self, dlq_topic: str, *, limit: int | None = 100, flt: DlqFilter | None = None
    ) -> list[DlqMessage]:
        """The oldest ``limit`` matching records, ordered by timestamp (then partition, offset)."""
        found: dict[int, list[DlqMessage]] = {}
        with Offsets(self._conf, timeout_s=self._timeout_s) as o:
            wm = o.watermarks(dlq_topic)
            ranges = dict(wm)
            if limit is not None and flt is None:
                ranges = {p: (lo, min(hi, lo + limit)) for p, (lo, hi) in wm.items()}
            reader = RangeReader(o.consumer, dlq_topic, ranges)
            for msg in reader:
                m = DlqMessage.from_record(msg)
                if flt is not None and not flt.matches(m):
                    continue
                got = found.setdefault(m.partition, [])
                got.append(m)
                if limit is not None and len(got) >= limit:
                    reader.done(m.partition)
        out = sorted(
            (m for ms in found.values() for m in ms),
            key=lambda m: (m.timestamp_ms or 0, m.partition, m.offset),
        )
        return out if limit is None else out[:limit]

    def show(self, dlq_topic: str, *, partition: int, offset: int) -> DlqMessage | None:
        """The record at ``partition:offset``, or None when it is not (or no longer) there."""
        with Offsets(self._conf, timeout_s=self._timeout_s) as o:
            wm = o.watermarks(dlq_topic)
            if partition not in wm or not wm[partition][0] <= offset < wm[partition][1]:
                return None
            for msg in RangeReader(o.consumer, dlq_topic, {partition: (offset, offset + 1)}):
                return DlqMessage.from_record(msg)
        return None

    def find(self, dlq_topic: str, message_id: str) -> DlqMessage | None:
        """The newest record whose message id (or Karafka trace id) is ``message_id``."""
        hit = None
        for m in self.iter_messages(dlq_topic):
            if message_id in (m.message_id, m.extra.get("trace_id")):
                hit = m
        return hit

    def sample(self, dlq_topic: str, n: int = 5) -> list[DlqMessage]:
        """Up to ``n`` records from the start of each partition."""
        with Offsets(self._conf, timeout_s=self._timeout_s) as o:
            wm = o.watermarks(dlq_topic)
            ranges = {p: (lo, min(hi, lo + n)) for p, (lo, hi) in wm.items()}
            return [
                DlqMessage.from_record(msg) for msg in RangeReader(o.consumer, dlq_topic, ranges)
            ]
