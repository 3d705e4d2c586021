"""Records in flight inside the consumer: retry records waiting for their due time, and writes
to the group's retry topic or DLQ waiting for their acknowledgement. Decoding is pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kafka_reliable import headers as h
from kafka_reliable.consumer.keyorder import Ident
from kafka_reliable.consumer.record import message_id
from kafka_reliable.consumer.routes import PARKED, Origin
from kafka_reliable.headers import Failure
from kafka_reliable.scheduling import TP

RawHeaders = Sequence[tuple[str, bytes | None]]

RETRY, DLQ, PARK = "retry", "dlq", "park"


@dataclass(slots=True)
class Pending:
    """A record read from the group's retry topic, waiting to be handed to the handler."""

    tp: TP
    offset: int
    gen: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int
    headers: RawHeaders
    failure: Failure
    due_ms: int
    message_id: str
    #: ``(original partition, original offset)`` when both are known (key ordering needs it).
    ident: Ident | None

    @property
    def source_topic(self) -> str:
        return self.failure.original_topic

    @property
    def parked(self) -> bool:
        return self.failure.error_code == PARKED

    def origin(self) -> Origin:
        f = self.failure
        return Origin(
            topic=f.original_topic,
            partition=f.original_partition if f.original_partition is not None else self.tp[1],
            offset=f.original_offset,
            timestamp_ms=f.original_timestamp_ms,
            message_id=self.message_id,
            headers=self.headers,
            attempt=f.attempt,
            first_failure_at_ms=f.first_failure_at_ms or None,
            replay_count=f.replay_count,
        )


@dataclass(slots=True)
class Write:
    """One record written to the retry topic or DLQ; finishes ``(tp, offset)`` when acknowledged."""

    tp: TP
    offset: int
    gen: int
    topic: str
    partition: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    timestamp_ms: int
    kind: str
    source_topic: str
    reason: str | None = None
    #: ``next.attempt.at`` of a retry-topic write (None for the DLQ).
    due_ms: int | None = None


def decode_retry(
    *,
    tp: TP,
    offset: int,
    gen: int,
    key: bytes | None,
    value: bytes | None,
    timestamp_ms: int,
    headers: RawHeaders | None,
    source_topic: str,
) -> Pending:
    """A retry record; ValueError/UnicodeDecodeError names what makes it a poison record."""
    hdrs = list(headers or ())
    f = h.read_failure(hdrs)
    if f.next_attempt_at_ms is None:
        raise ValueError(f"header {h.NEXT_ATTEMPT_AT} is missing")
    if f.original_topic != source_topic:
        raise ValueError(f"header {h.ORIGINAL_TOPIC} is {f.original_topic!r}, not {source_topic!r}")
    part = f.original_partition if f.original_partition is not None else tp[1]
    mid = message_id(
        hdrs, source_topic, part, f.original_offset if f.original_offset is not None else -1
    )
    ident = (part, f.original_offset) if f.original_offset is not None else None
    return Pending(
        tp, offset, gen, key, value, timestamp_ms, hdrs, f, f.next_attempt_at_ms, mid, ident
    )


def poison_origin(*, tp: TP, offset: int, headers: RawHeaders | None, source_topic: str) -> Origin:
    """What is known of an unreadable retry record (its own position stands in for the original)."""
    hdrs = list(headers or ())
    try:
        attempt = max(0, (h.get_int(hdrs, h.ATTEMPT) or 0) - 1)
    except (ValueError, UnicodeDecodeError):
        attempt = 0
    return Origin(
        topic=source_topic,
        partition=tp[1],
        offset=None,
        timestamp_ms=None,
        message_id=message_id(hdrs, tp[0], tp[1], offset),
        headers=hdrs,
        attempt=attempt,
    )
