"""What the worker does with one ``.retry`` record: decode it, and decide where it goes. Pure.

A record that can never be republished is a poison record: it goes at once (no retries) to
the DLQ of the topic it came from with reason ``poison``. That is a record whose headers
cannot be read (missing or garbled), and one whose ``original.topic`` is not a legal topic
name, or is one whose companion names (``<topic>.retry``/``.dlq``) would not be.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from kafka_reliable import headers as h
from kafka_reliable.config import RetryConfig, TopicNaming, legal_topic_name
from kafka_reliable.errors import classify
from kafka_reliable.headers import Failure
from kafka_reliable.routing import Route, route_failure
from kafka_reliable.worker.scheduler import TP

RawHeaders = Sequence[tuple[str, bytes | None]]


class RecordKind(enum.Enum):
    """What a produce of the worker is: the record back on its topic, or routed after a failure."""

    REPUBLISH = "republish"
    TO_RETRY = "retry"
    TO_DLQ = "dlq"


@dataclass(slots=True)
class RetryRecord:
    """A ``.retry`` record read ahead, waiting for its due time and then its acknowledgement."""

    tp: TP
    offset: int
    gen: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int
    headers: RawHeaders
    failure: Failure | None
    due_ms: int
    #: Why the headers could not be read (poison), else None.
    poison_reason: str | None = None
    source_topic: str = ""


def decode(
    *, tp: TP, offset: int, gen: int, key: bytes | None, value: bytes | None, timestamp_ms: int,
    headers: RawHeaders | None, naming: TopicNaming, now_ms: int,
) -> RetryRecord:
    """Decode one record; poison records come back with ``poison_reason`` set and due now."""
    hdrs = list(headers or ())
    try:
        failure = h.read_failure(hdrs)
        if failure.next_attempt_at_ms is None:
            raise ValueError(f"header {h.NEXT_ATTEMPT_AT} is missing")
        why = unusable_target(failure.original_topic, naming)
        if why is not None:
            raise ValueError(why)
        return RetryRecord(tp, offset, gen, key, value, timestamp_ms, hdrs, failure,
                           failure.next_attempt_at_ms, None, failure.original_topic)
    except (ValueError, UnicodeDecodeError) as exc:
        return RetryRecord(tp, offset, gen, key, value, timestamp_ms, hdrs, None, now_ms,
                           str(exc), poison_source(hdrs, tp[0], naming))


def unusable_target(topic: str, naming: TopicNaming) -> str | None:
    """Why ``topic`` can never be republished to (or its failures routed), else None."""
    if not legal_topic_name(topic):
        return f"{h.ORIGINAL_TOPIC} {topic!r} is not a legal topic name"
    for companion in (naming.retry_topic(topic), naming.dlq_topic(topic)):
        if not legal_topic_name(companion):
            return f"{h.ORIGINAL_TOPIC} {topic!r}: its companion topic {companion!r} would not be a legal name"
    return None


def poison_source(headers: RawHeaders, retry_topic: str, naming: TopicNaming) -> str:
    """The topic a poison record belongs to: its ``original.topic`` header when that names a
    usable topic, else the ``.retry`` topic's name without the suffix."""
    raw = h.get(headers, h.ORIGINAL_TOPIC)
    if raw:
        try:
            name = raw.decode("utf-8")
        except UnicodeDecodeError:
            name = ""
        if unusable_target(name, naming) is None:
            return name
    return naming.source_of(retry_topic) or retry_topic


def republish_headers(rec: RetryRecord) -> h.Headers:
    assert rec.failure is not None
    return h.republish_headers(rec.headers, attempt=rec.failure.attempt)


def failure_route(
    rec: RetryRecord, *, error_name: str, error_message: str, fatal: bool,
    retry_config: RetryConfig, naming: TopicNaming, now_ms: int,
) -> Route:
    """Where a record goes after its republish failed: ``.retry`` (attempt+1) or ``.dlq``."""
    f = rec.failure
    assert f is not None
    return route_failure(
        topic=f.original_topic,
        classification=classify(error_name, fatal=fatal),
        error_message=error_message,
        attempt=f.attempt + 1,
        retry_config=retry_config,
        naming=naming,
        now_ms=now_ms,
        headers=rec.headers,
        message_id=None,
        first_failure_at_ms=f.first_failure_at_ms or None,
        original_partition=f.original_partition,
        original_offset=f.original_offset,
        original_timestamp_ms=f.original_timestamp_ms,
        replay_count=f.replay_count,
    )


def poison_route(rec: RetryRecord, *, retry_config: RetryConfig, naming: TopicNaming, now_ms: int) -> Route:
    """The DLQ route of a poison record (reason ``poison``)."""
    try:
        attempt = h.get_int(rec.headers, h.ATTEMPT) or 0
    except (ValueError, UnicodeDecodeError):
        attempt = 0
    return route_failure(
        topic=rec.source_topic,
        classification=classify("POISON"),
        error_message=f"unusable {naming.retry_suffix} record at {rec.tp[0]}[{rec.tp[1]}]@{rec.offset}: "
        f"{rec.poison_reason}",
        attempt=max(attempt, 0),
        retry_config=retry_config,
        naming=naming,
        now_ms=now_ms,
        headers=rec.headers,
        poison=True,
    )
