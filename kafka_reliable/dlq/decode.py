"""One public decoding step per DLQ record, for anything that shows DLQ records (CLI, console).

:func:`decode_record` takes a record's headers (and key/value) and returns the dialect, the
decoded error-context fields, the ``undecodable: …`` notes of headers that could not be
decoded, and what a plain replay would do with the record. It never raises.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kafka_reliable.dlq import dialects
from kafka_reliable.dlq.model import DlqMessage, ms_to_iso
from kafka_reliable.dlq.targets import replay_refusal

_FIELDS = (
    "original_topic",
    "original_partition",
    "original_offset",
    "original_timestamp_ms",
    "error_class",
    "error_code",
    "error_message",
    "stacktrace",
    "retry_count",
    "reason",
    "first_failed_at_ms",
    "last_failed_at_ms",
    "message_id",
)


@dataclass(frozen=True, kw_only=True)
class DecodedRecord:
    """What one DLQ record says, whoever wrote it.

    ``fields``: the decoded error context (JSON-safe; absent fields left out; ``*_ms`` times
    also as ISO-8601 ``*_at``/``*_timestamp`` text). ``notes``: one ``undecodable: …`` line per
    header that could not be decoded. ``replay``: None when a plain replay can resend the
    record, else the one-line reason it cannot.
    """

    dialect: str
    fields: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    headers_only: bool = False
    replay: str | None = None


def _fields(ctx: dialects.DlqContext) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in _FIELDS:
        v = getattr(ctx, name)
        if v is not None:
            out[name] = v
            if name.endswith("_ms"):
                out[name[:-3] + "_iso"] = ms_to_iso(v)
    if ctx.replay_count:
        out["replay_count"] = ctx.replay_count
    out.update(ctx.extra)
    return out


def decode_record(
    headers: Sequence[tuple[str, bytes | None]] | None,
    *,
    key: bytes | None = None,
    value: bytes | None = None,
) -> DecodedRecord:
    """Decode one DLQ record's headers (any dialect); never raises."""
    hs = [(k, v) for k, v in headers or () if isinstance(k, str)]
    ctx = dialects.parse(hs)
    m = DlqMessage(
        id="",
        topic="",
        partition=0,
        offset=0,
        key=key,
        value=value,
        headers=[(k, v or b"") for k, v in hs],
        timestamp_ms=None,
        dialect=ctx.dialect,
        original_topic=ctx.original_topic,
        original_partition=ctx.original_partition,
        original_offset=ctx.original_offset,
        extra=dict(ctx.extra),
        notes=ctx.notes,
    )
    reason = replay_refusal(m, to_topic=None, from_source=False)
    if reason is None and m.original_topic is None:
        reason = "no original topic in its headers; replay it only with --to-topic"
    return DecodedRecord(
        dialect=ctx.dialect,
        fields=_fields(ctx),
        notes=ctx.notes,
        headers_only=m.headers_only,
        replay=reason,
    )


def decode_message(m: DlqMessage) -> DecodedRecord:
    """:func:`decode_record` of a record read by :class:`~kafka_reliable.dlq.DlqReader`."""
    return decode_record(m.headers, key=m.key, value=m.value)
