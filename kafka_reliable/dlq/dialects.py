"""Read the error context of a DLQ record, whoever wrote it (DLQ-DIALECTS.md).

Ours (``kafka_reliable.*``), Spring Kafka (``kafka_dlt-*`` with binary big-endian numbers, and
``kafka_original-*`` / ``kafka_exception-*`` when the target is not a DLT), Kafka Connect
(``__connect.errors.*``), Kafka Streams (``__streams.errors.*``), Karafka (``source_*``),
Kafka share groups (``__dlq.errors.*``, KIP-1191) and Schema Registry rule actions
(``__rule.*``) are parsed into one :class:`DlqContext`. A record with none of them is ``raw``.
Parsing never raises: a header that cannot be decoded is read as missing and leaves an
``undecodable: …`` note (``codecs.HeaderReader``); a parser that fails anyway makes the
record ``raw`` with a note, so it is still listed and replayed only to an explicit target.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kafka_reliable import headers as h
from kafka_reliable.dlq import codecs, schema_rules, share_group
from kafka_reliable.dlq.codecs import HeaderReader

RawHeaders = Sequence[tuple[str, bytes | None]]

OURS = "kafka_reliable"
SPRING = "spring"
CONNECT = "connect"
STREAMS = "streams"
KARAFKA = "karafka"
SHARE_GROUP = share_group.NAME
SCHEMA_REGISTRY = schema_rules.NAME
RAW = "raw"
DIALECTS = (OURS, SPRING, CONNECT, STREAMS, KARAFKA, SHARE_GROUP, SCHEMA_REGISTRY, RAW)
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
#: ``BigInteger.valueOf(epochMs).toByteArray()``: a big-endian number of 1 to 8 bytes.
SPRING_BACKOFF_TIMESTAMP = "retry_topic-backoff-timestamp"
CONNECT_PREFIX = "__connect.errors."
STREAMS_PREFIX = "__streams.errors."
KARAFKA_HEADERS = frozenset(
    {
        "source_topic",
        "source_partition",
        "source_offset",
        "source_consumer_group",
        "source_attempts",
        "source_trace_id",
    }
)

#: Header name prefixes of foreign error contexts, dropped when a record is replayed.
FOREIGN_PREFIXES = (
    SPRING_DLT,
    SPRING_ORIGINAL,
    SPRING_EXCEPTION,
    SPRING_KEY_EXCEPTION,
    "retry_topic-",
    CONNECT_PREFIX,
    STREAMS_PREFIX,
    share_group.PREFIX,
    schema_rules.PREFIX,
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
    #: Header names present but not decodable; their fields are None / 0.
    unreadable: tuple[str, ...] = ()
    #: ``undecodable: <header>: <why>`` for each of them (bounded, see ``codecs.MAX_NOTES``).
    notes: tuple[str, ...] = ()


# ---- value codecs (kept for callers; the parsers read through codecs.HeaderReader) -------


def int_text_first(v: bytes | None) -> int | None:
    """A decimal string; a 4- or 8-byte big-endian number as fallback."""
    if not v:
        return None
    n = codecs.decimal(v)
    if n is None and len(v) in (4, 8):
        n = int.from_bytes(v, "big", signed=True)
    return n


def int_binary_first(v: bytes | None, size: int) -> int | None:
    """A big-endian number (Java ``ByteBuffer``/``BigInteger``); decimal text as fallback."""
    if not v:
        return None
    if len(v) == size:
        return int.from_bytes(v, "big", signed=True)
    n = codecs.decimal(v)
    if n is None and len(v) <= 8:
        n = int.from_bytes(v, "big", signed=True)
    return n


def simple_name(cls: str | None) -> str | None:
    """``org.x.Foo$Bar`` -> ``Bar``; ``a.b.Timeout`` -> ``Timeout``."""
    if not cls:
        return cls
    return cls.replace("$", ".").rsplit(".", 1)[-1]


# ---- one parser per dialect: each returns the fields of a DlqContext ------------------------

Fields = dict[str, Any]


def _ours(r: HeaderReader) -> Fields:
    return {
        "original_topic": r.topic(h.ORIGINAL_TOPIC),
        "original_partition": r.int_text(h.ORIGINAL_PARTITION, high=codecs.MAX_PARTITION),
        "original_offset": r.int_text(h.ORIGINAL_OFFSET),
        "original_timestamp_ms": r.int_text(h.ORIGINAL_TIMESTAMP),
        "error_class": r.text(h.ERROR_CLASS) or None,
        "error_code": r.text(h.ERROR_CODE) or None,
        "error_message": r.text(h.ERROR_MESSAGE, h.MAX_ERROR_MESSAGE_BYTES),
        "retry_count": r.int_text(h.ATTEMPT),
        "reason": r.text(h.DLQ_REASON),
        "first_failed_at_ms": r.int_text(h.FIRST_FAILURE_AT),
        "last_failed_at_ms": r.int_text(h.LAST_FAILURE_AT),
        "message_id": r.text(h.MESSAGE_ID),
        "replay_count": r.int_text(h.REPLAY_COUNT) or 0,
        "extra": _extra(r, {"retriable": h.ERROR_RETRIABLE, "consumer_group": h.CONSUMER_GROUP}),
    }


def _spring(r: HeaderReader) -> Fields:
    dlt = any(k.startswith(SPRING_DLT) for k, _ in r.headers)
    orig = SPRING_DLT + "original-" if dlt else SPRING_ORIGINAL
    exc = SPRING_DLT + "exception-" if dlt else SPRING_EXCEPTION
    key_exc = SPRING_DLT + "key-exception-" if dlt else SPRING_KEY_EXCEPTION
    use = key_exc if r.raw(exc + "fqcn") is None and r.raw(key_exc + "fqcn") is not None else exc
    attempts = r.int_binary(SPRING_RETRY_ATTEMPTS, 4)
    if attempts is None:
        attempts = r.int_binary(SPRING_DELIVERY_ATTEMPT, 4)
    extra = _extra(
        r,
        {
            "cause_class": exc + "cause-fqcn",
            "consumer_group": SPRING_DLT + "original-consumer-group",
            "timestamp_type": orig + "timestamp-type",
            "key_error": key_exc + "fqcn",
        },
    )
    backoff = r.int_binary(SPRING_BACKOFF_TIMESTAMP, 8)  # any length 1..8 is a BigInteger's
    if backoff is not None:
        extra["backoff_until_ms"] = str(backoff)
    return {
        "original_topic": r.topic(orig + "topic"),
        "original_partition": r.int_binary(orig + "partition", 4, high=codecs.MAX_PARTITION),
        "original_offset": r.int_binary(orig + "offset", 8),
        "original_timestamp_ms": r.int_binary(orig + "timestamp", 8),
        "error_class": r.text(use + "fqcn"),
        "error_message": r.text(use + "message", h.MAX_ERROR_MESSAGE_BYTES),
        "stacktrace": r.text(use + "stacktrace", MAX_STACKTRACE_BYTES),
        "retry_count": attempts,
        "extra": extra,
    }


def _connect(r: HeaderReader) -> Fields:
    p = CONNECT_PREFIX
    return {
        "original_topic": r.topic(p + "topic"),
        "original_partition": r.int_text_first(p + "partition", high=codecs.MAX_PARTITION),
        "original_offset": r.int_text_first(p + "offset"),
        "error_class": r.text(p + "exception.class.name"),
        "error_message": r.text(p + "exception.message", h.MAX_ERROR_MESSAGE_BYTES),
        "stacktrace": r.text(p + "exception.stacktrace", MAX_STACKTRACE_BYTES),
        "extra": _extra(
            r,
            {
                "connector": p + "connector.name",
                "task_id": p + "task.id",
                "stage": p + "stage",
                "executing_class": p + "class.name",
            },
        ),
    }


def _streams(r: HeaderReader) -> Fields:
    p = STREAMS_PREFIX
    return {
        "original_topic": r.topic(p + "topic"),
        "original_partition": r.int_text_first(p + "partition", high=codecs.MAX_PARTITION),
        "original_offset": r.int_text_first(p + "offset"),
        "error_class": r.text(p + "exception"),
        "error_message": r.text(p + "message", h.MAX_ERROR_MESSAGE_BYTES),
        "stacktrace": r.text(p + "stacktrace", MAX_STACKTRACE_BYTES),
    }


def _karafka(r: HeaderReader) -> Fields:
    return {
        "original_topic": r.topic("source_topic"),
        "original_partition": r.int_text_first("source_partition", high=codecs.MAX_PARTITION),
        "original_offset": r.int_text_first("source_offset"),
        "retry_count": r.int_text_first("source_attempts"),
        "extra": _extra(
            r, {"consumer_group": "source_consumer_group", "trace_id": "source_trace_id"}
        ),
    }


def _extra(r: HeaderReader, names: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for label, name in names.items():
        v = r.text(name)
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
    if share_group.detect(names):
        return SHARE_GROUP
    if schema_rules.detect(names):
        return SCHEMA_REGISTRY
    if "source_topic" in names and names & {"source_partition", "source_offset"}:
        return KARAFKA
    return RAW


_PARSERS: dict[str, Callable[[HeaderReader], Fields]] = {
    OURS: _ours,
    SPRING: _spring,
    CONNECT: _connect,
    STREAMS: _streams,
    KARAFKA: _karafka,
    SHARE_GROUP: share_group.parse,
    SCHEMA_REGISTRY: schema_rules.parse,
}


def parse(headers: RawHeaders | None) -> DlqContext:
    """The normalized error context of a DLQ record; ``dialect="raw"`` when none is known.

    Never raises: a parser failing on headers it did not foresee yields a ``raw`` context
    whose note names the dialect and the failure.
    """
    hs = [(k, v) for k, v in headers or () if isinstance(k, str)]
    dialect = detect(hs)
    parser = _PARSERS.get(dialect)
    if parser is None:
        return DlqContext()
    r = HeaderReader(hs)
    try:
        fields = parser(r)
        return DlqContext(
            dialect=dialect, unreadable=tuple(r.unreadable), notes=tuple(r.notes), **fields
        )
    except Exception as exc:  # noqa: BLE001 - a DLQ record must always be listable
        why = f"undecodable: {dialect} headers: {type(exc).__name__}: {str(exc)[:200]}"
        return DlqContext(notes=(why,))


def strip_foreign(headers: RawHeaders | None) -> h.Headers:
    """The headers without any dialect's error context (ours is handled by ``republish_headers``).

    Karafka's ``source_*`` names are generic, so they are dropped only from a Karafka record.
    """
    hs = list(headers or ())
    karafka = detect(hs) == KARAFKA
    out: h.Headers = []
    for k, v in hs:
        if (
            k.startswith(FOREIGN_PREFIXES)
            or k == SPRING_DELIVERY_ATTEMPT
            or (karafka and k in KARAFKA_HEADERS)
        ):
            continue
        out.append((k, v if v is not None else b""))
    return out
