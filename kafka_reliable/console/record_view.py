"""A DLQ record made readable: headers, the error context per dialect, the value decoded.

The error context comes from :func:`kafka_reliable.dlq.decode.decode_message` (the dialects'
public decoding step); this module only presents it. A value is shown as pretty JSON when it
is JSON, decoded when it is Avro (bundled schemas; single-object or, with a registry, the
Confluent wire format), as text when it is UTF-8, else as hex. Nothing here raises on bad
bytes: what cannot be decoded is shown raw with a note.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from kafka_reliable.dlq import dialects
from kafka_reliable.dlq.decode import decode_message
from kafka_reliable.dlq.model import DlqMessage, bytes_to_text, ms_to_iso

#: Values longer than this are cut on the page (the export has them whole).
MAX_SHOWN_VALUE_BYTES = 256 * 1024


@dataclass(frozen=True, kw_only=True)
class HeaderView:
    name: str
    text: str
    raw_hex: str
    note: str | None = None


@dataclass(frozen=True, kw_only=True)
class ValueView:
    kind: str  # json | avro | text | binary | empty
    text: str
    note: str | None = None


@dataclass(frozen=True, kw_only=True)
class RecordView:
    m: DlqMessage
    headers: list[HeaderView]
    value: ValueView
    context: list[tuple[str, str]]
    hops: list[tuple[str, str]]
    #: ``undecodable: …`` lines of headers the dialect could not decode.
    notes: tuple[str, ...] = ()
    #: Why a plain redrive cannot send this record (None: it can).
    replay: str | None = None


def _header(name: str, raw: bytes, dialect: str) -> HeaderView:
    text = bytes_to_text(raw) or ""
    note = None
    if text.startswith("base64:") and dialect == dialects.SPRING and len(raw) in (4, 8):
        note = f"big-endian number {dialects.int_binary_first(raw, len(raw))}"
    elif text.startswith("base64:"):
        note = f"binary, {len(raw)} bytes"
    return HeaderView(name=name, text=text, raw_hex=raw[:4096].hex(" "), note=note)


@lru_cache(maxsize=4)
def _decoder(registry_url: str | None) -> Any:
    from kafka_reliable.avro import AvroDecoder

    return AvroDecoder(registry_url=registry_url)


def _avro(raw: bytes, registry_url: str | None) -> ValueView | None:
    from kafka_reliable.avro import CONFLUENT_MAGIC, SINGLE_OBJECT_MAGIC

    confluent = raw[:1] == CONFLUENT_MAGIC and len(raw) >= 5
    if raw[:2] != SINGLE_OBJECT_MAGIC and not confluent:
        return None
    try:
        decoder = _decoder(registry_url)
        schema = decoder.writer_schema_of(raw)
        data = decoder.decode(raw)
    except Exception as exc:  # noqa: BLE001 - any decoding failure is shown, not raised
        framing = "Confluent wire format" if confluent else "Avro single-object"
        return ValueView(
            kind="binary", text=raw[:4096].hex(" "), note=f"{framing}, not decoded: {exc}"
        )
    return ValueView(
        kind="avro",
        text=json.dumps(data, indent=2, default=str, ensure_ascii=False),
        note=f"Avro, schema {schema.name}",
    )


def value_view(raw: bytes | None, registry_url: str | None = None) -> ValueView:
    if raw is None:
        return ValueView(kind="empty", text="", note="null value (tombstone)")
    cut = len(raw) > MAX_SHOWN_VALUE_BYTES
    note = (
        f"first {MAX_SHOWN_VALUE_BYTES} of {len(raw)} bytes (export has it whole)" if cut else None
    )
    avro = _avro(raw, registry_url)
    if avro is not None:
        return avro
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return ValueView(kind="binary", text=raw[:4096].hex(" "), note=f"binary, {len(raw)} bytes")
    try:
        return ValueView(
            kind="json", text=json.dumps(json.loads(text), indent=2, ensure_ascii=False), note=note
        )
    except ValueError:
        return ValueView(kind="text", text=text[:MAX_SHOWN_VALUE_BYTES], note=note)


def _when(ms: int | None) -> str:
    return "" if ms is None else f"{ms_to_iso(ms)} ({ms})"


def _pairs(items: list[tuple[str, object]]) -> list[tuple[str, str]]:
    return [(k, str(v)) for k, v in items if v not in (None, "")]


def _context(fields: dict[str, Any]) -> list[tuple[str, str]]:
    """The decoded error context, times as ISO-8601 with their epoch ms."""
    out = []
    for name, value in fields.items():
        if name.endswith("_iso") or name == "message_id":
            continue
        if name.endswith("_ms"):
            value = _when(value)
            name = name[:-3]
        out.append((name.replace("_", " "), str(value)))
    return out


def build(m: DlqMessage, registry_url: str | None = None) -> RecordView:
    """The page's view of ``m``; the error context from the dialects' public decoding step."""
    decoded = decode_message(m)
    replays = m.replay_count if m.replay_count_readable else "unreadable"
    hops = _pairs(
        [
            ("message id", m.message_id),
            ("failed attempts", m.retry_count),
            ("first failure", _when(m.first_failed_at_ms)),
            ("last failure", _when(m.last_failed_at_ms)),
            ("replayed", replays),
            ("DLQ record time", _when(m.timestamp_ms)),
        ]
    )
    return RecordView(
        m=m,
        headers=[_header(k, v, m.dialect) for k, v in m.headers],
        value=value_view(m.value, registry_url),
        context=_context(decoded.fields),
        hops=hops,
        notes=decoded.notes,
        replay=decoded.replay,
    )
