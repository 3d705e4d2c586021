"""Read the error context of a DLQ record, whoever wrote it (DLQ-DIALECTS.md).

Ours (``kafka_reliable.*``), Spring Kafka (``kafka_dlt-*`` with binary big-endian numbers, and
``kafka_original-*`` / ``kafka_exception-*`` when the target is not a DLT), Kafka Connect
(``__connect.errors.*``), Kafka Streams (``__streams.errors.*``) and Karafka (``source_*``)
are parsed into one :class:`DlqContext`. A record with none of them is ``raw``. Parsing never
raises: a garbled header is read as missing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from kafka_reliable import headers as h

RawHeaders = Sequence[tuple[str, bytes | None]]

OURS = "kafka_reliable"
SPRING = "spring"
CONNECT = "connect"
STREAMS = "streams"
KARAFKA = "karafka"
RAW = "raw"
DIALECTS = (OURS, SPRING, CONNECT, STREAMS, KARAFKA, RAW)
#: Dialects whose DLQ record keeps the original record's timestamp and carry no failure time.
KEEPS_ORIGINAL_TIMESTAMP = frozenset({CONNECT})

#: Bound on stack traces kept from headers (bytes, UTF-8).
MAX_STACKTRACE_BYTES = 4096

SPRING_DLT = "kafka_dlt-"
SPRING_ORIGINAL = "kafka_original-"
SPRING_EXCEPTION = "kafka_exception-"
SPRING_KEY_EXCEPTION = "kafka_key-exception-"
SPRING_DELIVERY_ATTEMPT = "kafka_deliveryAttempt"
SPRING_RETRY_ATTEMPTS = "retry_topic-attempts"
CONNECT_PREFIX = "__connect.errors."
STREAMS_PREFIX = "__streams.errors."
KARAFKA_HEADERS = frozenset({
    "source_topic", "source_partition", "source_offset", "source_consumer_group",
    "source_attempts", "source_trace_id",
})

#: Header name prefixes of foreign error contexts, dropped when a record is replayed.
FOREIGN_PREFIXES = (
    SPRING_DLT, SPRING_ORIGINAL, SPRING_EXCEPTION, SPRING_KEY_EXCEPTION, "retry_topic-",
    CONNECT_PREFIX, STREAMS_PREFIX,
)


@dataclass(frozen=True, kw_only=True)
class DlqContext:
    """Why and from where a record was dead-lettered, in one shape for every dialect."""

    dialect: str = RAW
    original_topic: str | None = None
    original_partition: int | None = None
    original_offset: int | None = None
    original_timestamp_ms: int | None = None
    error_class: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    stacktrace: str | None = None
    retry_count: int | None = None
    reason: str | None = None
    first_failed_at_ms: int | None = None
    last_failed_at_ms: int | None = None
    message_id: str | None = None
    replay_count: int = 0
    extra: dict[str, str] = field(default_factory=dict)
    #: Header names present but not readable (garbled numbers); their fields are None / 0.
    unreadable: tuple[str, ...] = ()


# ---- value codecs -----------------------------------------------------------------------

def _text(v: bytes | None, limit: int | None = None) -> str | None:
    if v is None:
        return None
    if limit is not None and len(v) > limit:
        return h.truncate_utf8(v.decode("utf-8", "replace"), limit).decode("utf-8", "replace")
    return v.decode("utf-8", "replace")


def _decimal(v: bytes) -> int | None:
    s = v.strip()
    body = s[1:] if s[:1] == b"-" else s
    if body and body.isdigit():
        return int(s.decode("ascii"))
    return None


def int_text_first(v: bytes | None) -> int | None:
    """A decimal string; a 4- or 8-byte big-endian number as fallback."""
    if not v:
        return None
    n = _decimal(v)
    if n is None and len(v) in (4, 8):
        n = int.from_bytes(v, "big", signed=True)
    return n


def int_binary_first(v: bytes | None, size: int) -> int | None:
    """A big-endian number (Java ``ByteBuffer``/``BigInteger``); decimal text as fallback."""
    if not v:
        return None
    if len(v) == size:
        return int.from_bytes(v, "big", signed=True)
    n = _decimal(v)
    if n is None and len(v) <= 8:
        n = int.from_bytes(v, "big", signed=True)
    return n


def simple_name(cls: str | None) -> str | None:
    """``org.x.Foo$Bar`` -> ``Bar``; ``a.b.Timeout`` -> ``Timeout``."""
    if not cls:
        return cls
    return cls.replace("$", ".").rsplit(".", 1)[-1]


# ---- one parser per dialect ---------------------------------------------------------------

def _ours(hs: RawHeaders) -> DlqContext:
    unreadable: list[str] = []

    def num(name: str) -> int | None:  # our contract: decimal text; anything else is unreadable
        value, readable = h.get_int_or_none(hs, name)
        if not readable:
            unreadable.append(name)
        return value

    extra = _extra(hs, {"retriable": h.ERROR_RETRIABLE, "consumer_group": h.CONSUMER_GROUP})
    return DlqContext(
        dialect=OURS,
        original_topic=h.get_str(hs, h.ORIGINAL_TOPIC),
        original_partition=num(h.ORIGINAL_PARTITION),
        original_offset=num(h.ORIGINAL_OFFSET),
        original_timestamp_ms=num(h.ORIGINAL_TIMESTAMP),
        error_class=h.get_str(hs, h.ERROR_CLASS) or None,
        error_code=h.get_str(hs, h.ERROR_CODE) or None,
        error_message=_text(h.get(hs, h.ERROR_MESSAGE), h.MAX_ERROR_MESSAGE_BYTES),
        retry_count=num(h.ATTEMPT),
        reason=h.get_str(hs, h.DLQ_REASON),
        first_failed_at_ms=num(h.FIRST_FAILURE_AT),
        last_failed_at_ms=num(h.LAST_FAILURE_AT),
        message_id=h.get_str(hs, h.MESSAGE_ID),
        replay_count=num(h.REPLAY_COUNT) or 0,
        extra=extra,
        unreadable=tuple(unreadable),
    )


def _spring(hs: RawHeaders) -> DlqContext:
    dlt = any(k.startswith(SPRING_DLT) for k, _ in hs)
    orig = SPRING_DLT + "original-" if dlt else SPRING_ORIGINAL
    exc = SPRING_DLT + "exception-" if dlt else SPRING_EXCEPTION
    key_exc = SPRING_DLT + "key-exception-" if dlt else SPRING_KEY_EXCEPTION
    error_class = h.get_str(hs, exc + "fqcn") or h.get_str(hs, key_exc + "fqcn")
    message = h.get(hs, exc + "message") or h.get(hs, key_exc + "message")
    trace = h.get(hs, exc + "stacktrace") or h.get(hs, key_exc + "stacktrace")
    attempts = int_binary_first(h.get(hs, SPRING_RETRY_ATTEMPTS), 4)
    if attempts is None:
        attempts = int_binary_first(h.get(hs, SPRING_DELIVERY_ATTEMPT), 4)
    return DlqContext(
        dialect=SPRING,
        original_topic=h.get_str(hs, orig + "topic"),
        original_partition=int_binary_first(h.get(hs, orig + "partition"), 4),
        original_offset=int_binary_first(h.get(hs, orig + "offset"), 8),
        original_timestamp_ms=int_binary_first(h.get(hs, orig + "timestamp"), 8),
        error_class=error_class,
        error_message=_text(message, h.MAX_ERROR_MESSAGE_BYTES),
        stacktrace=_text(trace, MAX_STACKTRACE_BYTES),
        retry_count=attempts,
        extra=_extra(hs, {
            "cause_class": exc + "cause-fqcn",
            "consumer_group": SPRING_DLT + "original-consumer-group",
            "timestamp_type": orig + "timestamp-type",
            "key_error": key_exc + "fqcn",
        }),
    )


def _connect(hs: RawHeaders) -> DlqContext:
    p = CONNECT_PREFIX
    return DlqContext(
        dialect=CONNECT,
        original_topic=h.get_str(hs, p + "topic"),
        original_partition=int_text_first(h.get(hs, p + "partition")),
        original_offset=int_text_first(h.get(hs, p + "offset")),
        error_class=h.get_str(hs, p + "exception.class.name"),
        error_message=_text(h.get(hs, p + "exception.message"), h.MAX_ERROR_MESSAGE_BYTES),
        stacktrace=_text(h.get(hs, p + "exception.stacktrace"), MAX_STACKTRACE_BYTES),
        extra=_extra(hs, {
            "connector": p + "connector.name", "task_id": p + "task.id",
            "stage": p + "stage", "executing_class": p + "class.name",
        }),
    )


def _streams(hs: RawHeaders) -> DlqContext:
    p = STREAMS_PREFIX
    return DlqContext(
        dialect=STREAMS,
        original_topic=h.get_str(hs, p + "topic"),
        original_partition=int_text_first(h.get(hs, p + "partition")),
        original_offset=int_text_first(h.get(hs, p + "offset")),
        error_class=h.get_str(hs, p + "exception"),
        error_message=_text(h.get(hs, p + "message"), h.MAX_ERROR_MESSAGE_BYTES),
        stacktrace=_text(h.get(hs, p + "stacktrace"), MAX_STACKTRACE_BYTES),
    )


def _karafka(hs: RawHeaders) -> DlqContext:
    return DlqContext(
        dialect=KARAFKA,
        original_topic=h.get_str(hs, "source_topic"),
        original_partition=int_text_first(h.get(hs, "source_partition")),
        original_offset=int_text_first(h.get(hs, "source_offset")),
        retry_count=int_text_first(h.get(hs, "source_attempts")),
        extra=_extra(hs, {"consumer_group": "source_consumer_group", "trace_id": "source_trace_id"}),
    )


def _extra(hs: RawHeaders, names: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for label, name in names.items():
        v = h.get_str(hs, name)
        if v:
            out[label] = v
    return out


def detect(headers: RawHeaders | None) -> str:
    """The dialect of a DLQ record's headers (ours first: it is replaced on every hop)."""
    names = {k for k, _ in headers or ()}
    if h.ORIGINAL_TOPIC in names or h.ERROR_CLASS in names:
        return OURS
    if any(n.startswith((SPRING_DLT, SPRING_ORIGINAL, SPRING_EXCEPTION)) for n in names):
        return SPRING
    if any(n.startswith(CONNECT_PREFIX) for n in names):
        return CONNECT
    if any(n.startswith(STREAMS_PREFIX) for n in names):
        return STREAMS
    if "source_topic" in names and names & {"source_partition", "source_offset"}:
        return KARAFKA
    return RAW


_PARSERS: dict[str, Callable[[RawHeaders], DlqContext]] = {
    OURS: _ours, SPRING: _spring, CONNECT: _connect, STREAMS: _streams, KARAFKA: _karafka,
}


def parse(headers: RawHeaders | None) -> DlqContext:
    """The normalized error context of a DLQ record; ``dialect="raw"`` when none is known."""
    hs = list(headers or ())
    parser = _PARSERS.get(detect(hs))
    return parser(hs) if parser is not None else DlqContext()


def strip_foreign(headers: RawHeaders | None) -> h.Headers:
    """The headers without any dialect's error context (ours is handled by ``republish_headers``).

    Karafka's ``source_*`` names are generic, so they are dropped only from a Karafka record.
    """
    hs = list(headers or ())
    karafka = detect(hs) == KARAFKA
    out: h.Headers = []
    for k, v in hs:
        if k.startswith(FOREIGN_PREFIXES) or k == SPRING_DELIVERY_ATTEMPT or (karafka and k in KARAFKA_HEADERS):
            continue
        out.append((k, v if v is not None else b""))
    return out
