"""What the worker does with one ``.retry`` record: decode it, and decide where it goes. Pure.

A record that can never be republished is a poison record: it goes at once (no retries) to
the DLQ of the topic it came from with reason ``poison``. That is a record whose headers
cannot be read (missing or garbled), and one whose ``original.topic`` is not a legal topic
name, is one whose companion names (``<topic>.retry``/``.dlq``) would not be, or is itself a
companion topic (``orders.retry``, ``orders.dlq``, a group's ``orders.g.retry``): republishing
there would feed the worker its own input and create ``orders.retry.retry``.

Decoding reads only what a republish needs (target, attempt, due time, replay count, message
id) and builds the republish headers in the same pass: it runs for every record. The full
failure (``headers.read_failure``) is read only when a republish failed; a record whose other
headers are garbled is poison then.

A record waits in the look-ahead for up to seconds, thousands at a time: it waits as one flat
tuple of atoms (``pack``; headers as ``k, v, k, v, …``), which the garbage collector stops
tracking at its first look, before it reaches the old generation. Waiting records then add
nothing to the full collections that paused the worker for 30-60 ms on a busy 2-core machine
(a nested tuple loses its tracking one level per collection; a dataclass never does).
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any, Final

from kafka_reliable import headers as h
from kafka_reliable.config import RetryConfig, TopicNaming, legal_topic_name
from kafka_reliable.errors import classify
from kafka_reliable.routing import Route, route_failure
from kafka_reliable.scheduling import TP

RawHeaders = Sequence[tuple[str, bytes | None]]
#: Headers kept by a waiting record (a tuple: not tracked by the garbage collector once scanned).
KeptHeaders = tuple[tuple[str, bytes], ...]

#: Every header name of ours: a record carrying only these has no user headers to carry over.
_OURS = frozenset(
    v for k, v in vars(h).items() if k.isupper() and isinstance(v, str) and v.startswith(h.PREFIX)
)


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
    due_ms: int
    #: Why the record can never be republished (poison), else None.
    poison_reason: str | None = None
    #: The ``original.topic`` (for poison: the topic whose DLQ takes it).
    source_topic: str = ""
    #: Failed delivery attempts so far (``kafka_reliable.attempt``).
    attempt: int = 0
    #: The headers of the republished record (user headers, message id, counters).
    out_headers: KeptHeaders | None = None

    def fields(self) -> Fields:
        """The record as a plain tuple, for the look-ahead heap (``RetryRecord(*fields)`` undoes
        it)."""
        return (
            self.tp,
            self.offset,
            self.gen,
            self.key,
            self.value,
            self.timestamp_ms,
            self.headers,
            self.due_ms,
            self.poison_reason,
            self.source_topic,
            self.attempt,
            self.out_headers,
        )


#: A record's fields in ``RetryRecord``'s order: how it waits in the look-ahead heap.
Fields = tuple[
    TP,
    int,
    int,
    "bytes | None",
    "bytes | None",
    int,
    RawHeaders,
    int,
    "str | None",
    str,
    int,
    "KeptHeaders | None",
]
#: Positions in ``Fields``: the due time and the poison reason.
DUE: Final = 7
POISON: Final = 8
#: A record waiting in the look-ahead heap: one flat tuple of atoms (``pack`` / ``unpack``).
Waiting = tuple[Any, ...]
#: ``Waiting``: topic, partition, the fields from offset to attempt, then the raw header count.
_HEAD = 12


def pack(f: Fields) -> Waiting:
    """``f`` flattened: ``(topic, partition, offset, gen, key, value, timestamp, due, poison,
    source topic, attempt, n, k1, v1, … kn, vn, out k1, out v1, …)`` (``None`` for no out
    headers)."""
    tp, hdrs, out = f[0], f[6], f[11]
    return (
        tp[0],
        tp[1],
        f[1],
        f[2],
        f[3],
        f[4],
        f[5],
        f[7],
        f[8],
        f[9],
        f[10],
        len(hdrs),
        *chain.from_iterable(hdrs),
        *(chain.from_iterable(out) if out is not None else (None,)),
    )


def unpack(w: Waiting) -> RetryRecord:
    """The record ``pack`` flattened."""
    end = _HEAD + 2 * w[11]
    raw, rest = w[_HEAD:end], w[end:]
    out = None if rest == (None,) else tuple(zip(rest[::2], rest[1::2], strict=True))
    return RetryRecord(
        (w[0], w[1]),
        w[2],
        w[3],
        w[4],
        w[5],
        w[6],
        tuple(zip(raw[::2], raw[1::2], strict=True)),
        w[7],
        w[8],
        w[9],
        w[10],
        out,
    )


def decode(
    tp: TP,
    offset: int,
    gen: int,
    key: bytes | None,
    value: bytes | None,
    timestamp_ms: int,
    headers: RawHeaders | None,
    naming: TopicNaming,
    now_ms: int,
) -> RetryRecord:
    """Decode one record; poison records come back with ``poison_reason`` set and due now."""
    return RetryRecord(
        *decode_fields(tp, offset, gen, key, value, timestamp_ms, headers, naming, now_ms)
    )


def decode_fields(
    tp: TP,
    offset: int,
    gen: int,
    key: bytes | None,
    value: bytes | None,
    timestamp_ms: int,
    headers: RawHeaders | None,
    naming: TopicNaming,
    now_ms: int,
) -> Fields:
    """``decode`` as ``Fields`` (positional arguments: it runs for every record)."""
    hdrs = tuple(headers) if headers else ()
    ours: dict[str, bytes | None] = dict(hdrs)  # the last value of each header
    if ours.keys() <= _OURS:  # the common case: no user header (a set comparison, no loop)
        user: h.Headers = []
    else:
        prefix = h.PREFIX
        user = [(k, b"" if v is None else v) for k, v in hdrs if not k.startswith(prefix)]
    try:
        topic, attempt, due_ms, replay = _essentials(ours, naming)
    except (ValueError, UnicodeDecodeError) as exc:
        return _poison_fields(tp, offset, gen, key, value, timestamp_ms, hdrs, naming, now_ms, exc)
    # the layout of headers.republish_headers (pinned by a unit test)
    mid = ours.get(h.MESSAGE_ID)
    if mid is not None:
        user.append((h.MESSAGE_ID, mid))
    if attempt:
        user.append((h.ATTEMPT, str(attempt).encode()))
    if replay:
        user.append((h.REPLAY_COUNT, str(replay).encode()))
    return (
        tp,
        offset,
        gen,
        key,
        value,
        timestamp_ms,
        hdrs,
        due_ms,
        None,
        topic,
        attempt,
        tuple(user),
    )


def _poison_fields(
    tp: TP,
    offset: int,
    gen: int,
    key: bytes | None,
    value: bytes | None,
    timestamp_ms: int,
    hdrs: RawHeaders,
    naming: TopicNaming,
    now_ms: int,
    exc: Exception,
) -> Fields:
    """``Fields`` of a record whose headers cannot be read: poison, due now."""
    return (
        tp,
        offset,
        gen,
        key,
        value,
        timestamp_ms,
        hdrs,
        now_ms,
        str(exc),
        poison_source(hdrs, tp[0], naming),
        0,
        None,
    )


def _essentials(ours: dict[str, bytes | None], naming: TopicNaming) -> tuple[str, int, int, int]:
    """``(target topic, attempt, due time, replay count)``; ValueError naming what is wrong."""
    raw = ours.get(h.ORIGINAL_TOPIC)
    if not raw:
        raise ValueError(f"header {h.ORIGINAL_TOPIC} is missing")
    topic, why = _target(raw, naming.retry_suffix, naming.dlq_suffix)
    v = ours.get(h.ATTEMPT)
    attempt = int(v) if v is not None and v.isdigit() else _decimal(ours, h.ATTEMPT)
    if attempt is None or attempt < 0:
        raise ValueError(f"header {h.ATTEMPT} is missing or negative")
    v = ours.get(h.NEXT_ATTEMPT_AT)
    due_ms = int(v) if v is not None and v.isdigit() else _decimal(ours, h.NEXT_ATTEMPT_AT)
    if due_ms is None:
        raise ValueError(f"header {h.NEXT_ATTEMPT_AT} is missing")
    if why is not None:
        raise ValueError(why)
    v = ours.get(h.REPLAY_COUNT)
    if v is None:
        return topic, attempt, due_ms, 0
    return topic, attempt, due_ms, int(v) if v.isdigit() else _decimal(ours, h.REPLAY_COUNT) or 0


@functools.lru_cache(maxsize=4096)
def _target(raw: bytes, retry_suffix: str, dlq_suffix: str) -> tuple[str, str | None]:
    """The ``original.topic`` header as text, and why it is unusable (else None); cached."""
    topic = raw.decode("utf-8", "replace")
    return topic, _unusable(topic, retry_suffix, dlq_suffix)


def _decimal(ours: dict[str, bytes | None], name: str) -> int | None:
    v = ours.get(name)
    if v is None:
        return None
    if v.isdigit():  # bytes: ASCII digits only (the common case, no call)
        return int(v)
    n = h.parse_decimal(v)
    if n is None:
        raise ValueError(f"header {name} is not a decimal number: {v[:40]!r}")
    return n


def unusable_target(topic: str, naming: TopicNaming) -> str | None:
    """Why ``topic`` can never be republished to (or its failures routed), else None."""
    return _unusable(topic, naming.retry_suffix, naming.dlq_suffix)


@functools.lru_cache(maxsize=4096)
def _unusable(topic: str, retry_suffix: str, dlq_suffix: str) -> str | None:
    """``unusable_target`` cached by plain strings (hashing a TopicNaming per record costs more)."""
    if not legal_topic_name(topic):
        return f"{h.ORIGINAL_TOPIC} {topic!r} is not a legal topic name"
    if topic.endswith((retry_suffix, dlq_suffix)):
        return f"{h.ORIGINAL_TOPIC} {topic!r} is a companion topic, never a republish target"
    for companion in (topic + retry_suffix, topic + dlq_suffix):
        if not legal_topic_name(companion):
            return (
                f"{h.ORIGINAL_TOPIC} {topic!r}: its companion topic {companion!r} "
                "would not be a legal name"
            )
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
    assert rec.out_headers is not None
    return list(rec.out_headers)


def failure_route(
    rec: RetryRecord,
    *,
    error_name: str,
    error_message: str,
    fatal: bool,
    retry_config: RetryConfig,
    naming: TopicNaming,
    now_ms: int,
) -> Route:
    """Where a record goes after its republish failed: ``.retry`` (attempt+1) or ``.dlq``
    (``poison`` when its failure headers cannot be read)."""
    try:
        f = h.read_failure(rec.headers)
    except (ValueError, UnicodeDecodeError) as exc:
        rec.poison_reason = str(exc)
        return poison_route(rec, retry_config=retry_config, naming=naming, now_ms=now_ms)
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


def poison_route(
    rec: RetryRecord, *, retry_config: RetryConfig, naming: TopicNaming, now_ms: int
) -> Route:
    """The DLQ route of a poison record (reason ``poison``)."""
    try:
        attempt = h.get_int(rec.headers, h.ATTEMPT) or 0
    except (ValueError, UnicodeDecodeError):
        attempt = 0
    return route_failure(
        topic=rec.source_topic,
        classification=classify("POISON"),
        error_message=f"unusable {naming.retry_suffix} record at "
        f"{rec.tp[0]}[{rec.tp[1]}]@{rec.offset}: "
        f"{rec.poison_reason}",
        attempt=max(attempt, 0),
        retry_config=retry_config,
        naming=naming,
        now_ms=now_ms,
        headers=rec.headers,
        poison=True,
    )
