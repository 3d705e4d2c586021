"""The header contract of ``.retry`` and ``.dlq`` records (docs/architecture.md).

All values are UTF-8 text; numbers decimal; times epoch milliseconds. Earlier
``kafka_reliable.*`` error headers are replaced, never appended. The message id and the
replay count survive hops; the user's own headers are carried byte-for-byte.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

Headers = list[tuple[str, bytes]]

PREFIX = "kafka_reliable."
MESSAGE_ID = "kafka_reliable.message.id"
ORIGINAL_TOPIC = "kafka_reliable.original.topic"
ORIGINAL_PARTITION = "kafka_reliable.original.partition"
ORIGINAL_OFFSET = "kafka_reliable.original.offset"
ORIGINAL_TIMESTAMP = "kafka_reliable.original.timestamp"
ATTEMPT = "kafka_reliable.attempt"
NEXT_ATTEMPT_AT = "kafka_reliable.next.attempt.at"
FIRST_FAILURE_AT = "kafka_reliable.first.failure.at"
LAST_FAILURE_AT = "kafka_reliable.last.failure.at"
ERROR_CODE = "kafka_reliable.error.code"
ERROR_CLASS = "kafka_reliable.error.class"
ERROR_MESSAGE = "kafka_reliable.error.message"
ERROR_RETRIABLE = "kafka_reliable.error.retriable"
DLQ_REASON = "kafka_reliable.dlq.reason"
REPLAY_COUNT = "kafka_reliable.replay.count"
#: The consumer group whose handler failed (ReliableConsumer records in <topic>.<group>.retry/.dlq).
CONSUMER_GROUP = "kafka_reliable.consumer.group"

#: Audit headers of a redrive out of a DLQ (the console): who, when (epoch ms), from where
#: (``<dlq topic>:<partition>:<offset>``). Ours, so the next hop replaces them.
REDRIVE_BY = "kafka_reliable.redrive.by"
REDRIVE_AT = "kafka_reliable.redrive.at"
REDRIVE_FROM = "kafka_reliable.redrive.from"

#: Headers that identify the record across hops; everything else of ours is replaced.
STICKY = frozenset({MESSAGE_ID, REPLAY_COUNT})

#: Bound on ``error.message`` (bytes, UTF-8); longer messages are cut with an ellipsis.
MAX_ERROR_MESSAGE_BYTES = 1024

DLQ_REASONS = frozenset({"non_retriable", "retries_exhausted", "poison", "manual"})


def truncate_utf8(text: str, limit: int = MAX_ERROR_MESSAGE_BYTES) -> bytes:
    """UTF-8 bytes of ``text`` cut to ``limit`` bytes on a character boundary."""
    raw = text.encode("utf-8", "replace")
    if len(raw) <= limit:
        return raw
    return raw[: limit - 3].decode("utf-8", "ignore").encode("utf-8") + b"..."


@dataclass(frozen=True, kw_only=True, slots=True)
class Failure:
    """What went wrong with one record, as written into its companion-topic headers."""

    original_topic: str
    attempt: int
    error_code: str
    error_class: str
    error_message: str
    retriable: bool
    first_failure_at_ms: int
    last_failure_at_ms: int
    next_attempt_at_ms: int | None = None
    dlq_reason: str | None = None
    original_partition: int | None = None
    original_offset: int | None = None
    original_timestamp_ms: int | None = None
    replay_count: int = 0


def user_headers(headers: Iterable[tuple[str, bytes | None]] | None) -> Headers:
    """The caller's headers: everything not in our namespace."""
    return [
        (k, v if v is not None else b"") for k, v in (headers or ()) if not k.startswith(PREFIX)
    ]


def get(headers: Sequence[tuple[str, bytes | None]] | None, name: str) -> bytes | None:
    """The last value of a header, or None."""
    found = None
    for k, v in headers or ():
        if k == name:
            found = v
    return found


def get_str(headers: Sequence[tuple[str, bytes | None]] | None, name: str) -> str | None:
    v = get(headers, name)
    return None if v is None else v.decode("utf-8", "replace")


def parse_decimal(v: bytes | None) -> int | None:
    """``b"42"`` / ``b"-7"`` -> int; None for anything else (binary, blanks, ``1_000``, ``+5``)."""
    if not v or len(v) > 64:  # bounded work; int() of 4,300+ digits raises ValueError
        return None
    body = v[1:] if v[:1] == b"-" else v
    if not body or not body.isdigit() or not body.isascii():
        return None
    return int(v)


def get_int(headers: Sequence[tuple[str, bytes | None]] | None, name: str) -> int | None:
    """A decimal header as int; None when absent. ValueError naming the header when garbled."""
    v = get(headers, name)
    if v is None:
        return None
    n = parse_decimal(v)
    if n is None:
        raise ValueError(f"header {name} is not a decimal number: {v[:40]!r}")
    return n


def get_int_or_none(
    headers: Sequence[tuple[str, bytes | None]] | None, name: str
) -> tuple[int | None, bool]:
    """``(value, readable)``: ``(None, True)`` when absent, ``(None, False)`` when garbled."""
    v = get(headers, name)
    if v is None:
        return None, True
    n = parse_decimal(v)
    return n, n is not None


def failure_headers(
    headers: Iterable[tuple[str, bytes | None]] | None,
    failure: Failure,
    message_id: str | None = None,
) -> Headers:
    """The headers of a ``.retry``/``.dlq`` record: user headers + sticky ids + this failure."""
    src = list(headers or ())
    out = user_headers(src)
    mid = message_id.encode() if message_id is not None else get(src, MESSAGE_ID)
    if mid is not None:
        out.append((MESSAGE_ID, mid))
    out.append((ORIGINAL_TOPIC, failure.original_topic.encode()))
    for name, val in (
        (ORIGINAL_PARTITION, failure.original_partition),
        (ORIGINAL_OFFSET, failure.original_offset),
        (ORIGINAL_TIMESTAMP, failure.original_timestamp_ms),
    ):
        if val is not None:
            out.append((name, str(val).encode()))
    out.append((ATTEMPT, str(failure.attempt).encode()))
    if failure.next_attempt_at_ms is not None:
        out.append((NEXT_ATTEMPT_AT, str(failure.next_attempt_at_ms).encode()))
    out.append((FIRST_FAILURE_AT, str(failure.first_failure_at_ms).encode()))
    out.append((LAST_FAILURE_AT, str(failure.last_failure_at_ms).encode()))
    out.append((ERROR_CODE, failure.error_code.encode()))
    out.append((ERROR_CLASS, failure.error_class.encode()))
    out.append((ERROR_MESSAGE, truncate_utf8(failure.error_message)))
    out.append((ERROR_RETRIABLE, b"true" if failure.retriable else b"false"))
    if failure.dlq_reason is not None:
        out.append((DLQ_REASON, failure.dlq_reason.encode()))
    if failure.replay_count:
        out.append((REPLAY_COUNT, str(failure.replay_count).encode()))
    return out


def republish_headers(
    headers: Iterable[tuple[str, bytes | None]] | None,
    *,
    attempt: int | None = None,
    replay_count: int | None = None,
) -> Headers:
    """Headers for putting a record back on its own topic: user headers, message id, counters."""
    src = list(headers or ())
    out = user_headers(src)
    mid = get(src, MESSAGE_ID)
    if mid is not None:
        out.append((MESSAGE_ID, mid))
    if attempt:
        out.append((ATTEMPT, str(attempt).encode()))
    rc = replay_count if replay_count is not None else get_int(src, REPLAY_COUNT)
    if rc:
        out.append((REPLAY_COUNT, str(rc).encode()))
    return out


def read_failure(headers: Sequence[tuple[str, bytes | None]] | None) -> Failure:
    """Parse our headers back into a Failure. ValueError names what is missing or garbled."""
    topic = get_str(headers, ORIGINAL_TOPIC)
    if not topic:
        raise ValueError(f"header {ORIGINAL_TOPIC} is missing")
    attempt = get_int(headers, ATTEMPT)
    if attempt is None or attempt < 0:
        raise ValueError(f"header {ATTEMPT} is missing or negative")
    first = get_int(headers, FIRST_FAILURE_AT)
    last = get_int(headers, LAST_FAILURE_AT)
    retriable = get_str(headers, ERROR_RETRIABLE)
    if retriable not in (None, "true", "false"):
        raise ValueError(f"header {ERROR_RETRIABLE} is {retriable!r}, not true/false")
    return Failure(
        original_topic=topic,
        attempt=attempt,
        error_code=get_str(headers, ERROR_CODE) or "",
        error_class=get_str(headers, ERROR_CLASS) or "",
        error_message=get_str(headers, ERROR_MESSAGE) or "",
        retriable=retriable != "false",
        first_failure_at_ms=first if first is not None else 0,
        last_failure_at_ms=last if last is not None else 0,
        next_attempt_at_ms=get_int(headers, NEXT_ATTEMPT_AT),
        dlq_reason=get_str(headers, DLQ_REASON),
        original_partition=get_int(headers, ORIGINAL_PARTITION),
        original_offset=get_int(headers, ORIGINAL_OFFSET),
        original_timestamp_ms=get_int(headers, ORIGINAL_TIMESTAMP),
        replay_count=get_int(headers, REPLAY_COUNT) or 0,
    )


def redrive_headers(*, by: str, at_ms: int, dlq_topic: str, source: str) -> Headers:
    """The audit headers of one redriven record (``source`` is ``partition:offset``)."""
    return [
        (REDRIVE_BY, by.encode()),
        (REDRIVE_AT, str(at_ms).encode()),
        (REDRIVE_FROM, f"{dlq_topic}:{source}".encode()),
    ]
