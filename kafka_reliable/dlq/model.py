"""One DLQ record with its error context, whatever dialect wrote it."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Message

from kafka_reliable import headers as h
from kafka_reliable.dlq import dialects

#: Values of :attr:`DlqMessage.time_basis`.
TIME_FAILURE = "failure time"
TIME_RECORD = "DLQ record time"
TIME_ORIGINAL = "original timestamp"


def ms_to_datetime(ms: int | None) -> datetime | None:
    """The UTC time of epoch ms; None when unknown or beyond what a datetime holds (year 9999)."""
    if ms is None:
        return None
    try:
        return datetime.fromtimestamp(ms / 1000, tz=UTC)
    except (OverflowError, ValueError, OSError):
        return None


def ms_to_iso(ms: int | None) -> str | None:
    dt = ms_to_datetime(ms)
    return None if dt is None else dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _as_bytes(v: str | bytes | None) -> bytes | None:
    return v.encode() if isinstance(v, str) else v


def bytes_to_text(raw: bytes | None) -> str | None:
    """UTF-8 text when the bytes are printable UTF-8, else ``base64:<...>``."""
    if raw is None:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(raw).decode("ascii")
    if any(ord(c) < 32 and c not in "\t\n\r" for c in text):
        return "base64:" + base64.b64encode(raw).decode("ascii")
    return text


@dataclass(frozen=True, kw_only=True)
class DlqMessage:
    """A dead-lettered record: where it sits, what it carries, and why it failed.

    ``id`` is the record's message id when it has one (ours), else ``"<partition>:<offset>"``.
    ``last_error`` is the error message; ``retry_count`` the failed attempts the writer recorded.
    """

    id: str
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    timestamp_ms: int | None
    dialect: str
    message_id: str | None = None
    original_topic: str | None = None
    original_partition: int | None = None
    original_offset: int | None = None
    original_timestamp_ms: int | None = None
    error_class: str | None = None
    error_code: str | None = None
    last_error: str | None = None
    stacktrace: str | None = None
    retry_count: int | None = None
    reason: str | None = None
    first_failed_at_ms: int | None = None
    last_failed_at_ms: int | None = None
    replay_count: int = 0
    extra: dict[str, str] = field(default_factory=dict)
    unreadable_headers: tuple[str, ...] = ()
    #: ``undecodable: <header>: <why>`` for each header that could not be decoded.
    notes: tuple[str, ...] = ()

    @classmethod
    def from_record(cls, msg: Message) -> DlqMessage:
        """Build from a consumed record (``msg.error()`` must be None)."""
        topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
        if topic is None or partition is None or offset is None:
            raise ValueError("not a consumed record")
        raw = msg.headers() or []
        pairs = raw.items() if isinstance(raw, dict) else raw
        hs = [(str(k), _as_bytes(v) or b"") for k, v in pairs]
        ctx = dialects.parse(hs)
        ts_type, ts = msg.timestamp()
        timestamp_ms = None if ts_type == TIMESTAMP_NOT_AVAILABLE else ts
        original_ts = ctx.original_timestamp_ms
        if original_ts is None and ctx.dialect in dialects.KEEPS_ORIGINAL_TIMESTAMP:
            original_ts = timestamp_ms
        return cls(
            id=ctx.message_id or f"{partition}:{offset}",
            topic=topic,
            partition=partition,
            offset=offset,
            key=_as_bytes(msg.key()),
            value=_as_bytes(msg.value()),
            headers=hs,
            timestamp_ms=timestamp_ms,
            dialect=ctx.dialect,
            message_id=ctx.message_id,
            original_topic=ctx.original_topic,
            original_partition=ctx.original_partition,
            original_offset=ctx.original_offset,
            original_timestamp_ms=original_ts,
            error_class=ctx.error_class,
            error_code=ctx.error_code,
            last_error=ctx.error_message,
            stacktrace=ctx.stacktrace,
            retry_count=ctx.retry_count,
            reason=ctx.reason,
            first_failed_at_ms=ctx.first_failed_at_ms,
            last_failed_at_ms=ctx.last_failed_at_ms,
            replay_count=ctx.replay_count,
            extra=dict(ctx.extra),
            unreadable_headers=ctx.unreadable,
            notes=ctx.notes,
        )

    @property
    def coordinates(self) -> str:
        return f"{self.partition}:{self.offset}"

    @property
    def first_failed_at(self) -> datetime | None:
        """When the record first failed (UTC), when the writer recorded it."""
        return ms_to_datetime(self.first_failed_at_ms)

    @property
    def failed_at_ms(self) -> int | None:
        """The last failure time when known, else the DLQ record's timestamp; None when the
        writer kept the original record's timestamp (Kafka Connect) and wrote no failure time."""
        at = self.last_failed_at_ms or self.first_failed_at_ms
        if at is None and self.dialect not in dialects.KEEPS_ORIGINAL_TIMESTAMP:
            at = self.timestamp_ms
        return at

    @property
    def time_basis(self) -> str:
        """What ``filter_time_ms`` is: ``failure time``, ``DLQ record time`` or ``original
        timestamp``."""
        if self.last_failed_at_ms or self.first_failed_at_ms:
            return TIME_FAILURE
        return TIME_ORIGINAL if self.dialect in dialects.KEEPS_ORIGINAL_TIMESTAMP else TIME_RECORD

    @property
    def filter_time_ms(self) -> int | None:
        """The time ``--since/--until`` compare: the failure time, else the record's timestamp."""
        at = self.failed_at_ms
        return self.timestamp_ms if at is None else at

    @property
    def consumer_group(self) -> str | None:
        """The consumer group of a consumer-side record of ours
        (``kafka_reliable.consumer.group``)."""
        return self.extra.get("consumer_group") if self.dialect == dialects.OURS else None

    @property
    def headers_only(self) -> bool:
        """A share-group DLQ record written without ``errors.deadletterqueue.copy.record.enable``:
        it carries no key and no value, only where the original record is."""
        return self.dialect == dialects.SHARE_GROUP and self.key is None and self.value is None

    @property
    def undecodable(self) -> bool:
        """Nothing readable says where the record came from: it is listed raw and replayed
        only to an explicit target."""
        return self.dialect == dialects.RAW and bool(self.notes)

    @property
    def replay_count_readable(self) -> bool:
        return h.REPLAY_COUNT not in self.unreadable_headers

    @property
    def error_names(self) -> frozenset[str]:
        """Names an ``--error`` filter matches, lower-cased: class (full and simple), code,
        cause."""
        names = {self.error_class, dialects.simple_name(self.error_class), self.error_code}
        cause = self.extra.get("cause_class")
        names.update({cause, dialects.simple_name(cause)})
        return frozenset(n.lower() for n in names if n)

    def key_text(self) -> str | None:
        return bytes_to_text(self.key)

    def value_text(self) -> str | None:
        return bytes_to_text(self.value)

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict (bytes as UTF-8 text or ``base64:``; times in ms and ISO-8601)."""
        return {
            "id": self.id,
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "timestamp_ms": self.timestamp_ms,
            "timestamp": ms_to_iso(self.timestamp_ms),
            "key": self.key_text(),
            "value": self.value_text(),
            "headers": [[k, bytes_to_text(v)] for k, v in self.headers],
            "dialect": self.dialect,
            "message_id": self.message_id,
            "original_topic": self.original_topic,
            "original_partition": self.original_partition,
            "original_offset": self.original_offset,
            "original_timestamp_ms": self.original_timestamp_ms,
            "error_class": self.error_class,
            "error_code": self.error_code,
            "last_error": self.last_error,
            "stacktrace": self.stacktrace,
            "retry_count": self.retry_count,
            "reason": self.reason,
            "first_failed_at_ms": self.first_failed_at_ms,
            "first_failed_at": ms_to_iso(self.first_failed_at_ms),
            "last_failed_at_ms": self.last_failed_at_ms,
            "failed_at_ms": self.failed_at_ms,
            "failed_at": ms_to_iso(self.failed_at_ms),
            "time_basis": self.time_basis,
            "filter_time_ms": self.filter_time_ms,
            "replay_count": self.replay_count if self.replay_count_readable else None,
            "unreadable_headers": list(self.unreadable_headers),
            "notes": list(self.notes),
            "headers_only": self.headers_only,
            "extra": dict(self.extra),
        }
