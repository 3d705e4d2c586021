"""What a handler receives, and how values are turned back into objects.

A deserializer is ``callable(data, topic) -> value``; anything it raises makes the record a
poison record (DLQ, reason ``poison``, raw bytes intact). JSON is the default; an object with
a ``decode(data)`` method (``kafka_reliable.avro.AvroDecoder``) is accepted as it is, and
:class:`AvroDeserializer` is that decoder with the callable signature.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from kafka_reliable import headers as h
from kafka_reliable.avro import AvroDecoder

Deserializer = Callable[[bytes | None, str], Any]
RawHeaders = Sequence[tuple[str, bytes | None]]


_FIELDS = (
    "topic", "partition", "offset", "key", "value", "headers", "timestamp", "message_id",
    "attempt", "raw_value", "group", "delivered_from", "last_error", "due_at_ms",
)  # fmt: skip


class ConsumerRecord:
    """One delivery of a record to the handler.

    ``topic``/``partition``/``offset``/``timestamp`` are those of the ORIGINAL record, also when
    it is delivered again from the group's retry topic (``attempt`` > 0); ``delivered_from`` is
    where this delivery was read. ``headers`` are the producer's own headers (our
    ``kafka_reliable.*`` namespace left out); ``message_id`` is the ``kafka_reliable.message.id``
    header, or ``<topic>-<partition>-<offset>`` when the record has none — the same on every hop.
    ``last_error`` is ``ErrorClass: message`` of the previous failed attempt and ``due_at_ms``
    the ``next.attempt.at`` this delivery was due at (None on first delivery).

    ``headers`` and ``message_id`` are worked out from the record's headers when first read
    (a handler that reads neither costs no header scan); given ``message_id=None``, it comes
    from the headers and the position.
    """

    __slots__ = ("topic", "partition", "offset", "key", "value", "_raw", "_headers", "timestamp",
                 "_message_id", "attempt", "raw_value", "group", "delivered_from", "last_error",
                 "due_at_ms")  # fmt: skip

    def __init__(self, topic: str, partition: int, offset: int, key: bytes | None, value: Any,
                 headers: RawHeaders, timestamp: int, message_id: str | None, attempt: int,
                 raw_value: bytes | None = None, group: str = "",
                 delivered_from: tuple[str, int, int] = ("", -1, -1),
                 last_error: str | None = None, due_at_ms: int | None = None) -> None:  # fmt: skip
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self._raw = headers
        self._headers: list[tuple[str, bytes]] | None = None
        self.timestamp = timestamp
        self._message_id = message_id
        self.attempt = attempt
        self.raw_value = raw_value
        self.group = group
        self.delivered_from = delivered_from
        self.last_error = last_error
        self.due_at_ms = due_at_ms

    @property
    def headers(self) -> list[tuple[str, bytes]]:
        if self._headers is None:
            self._headers = h.user_headers(self._raw) if self._raw else []
        return self._headers

    @headers.setter
    def headers(self, value: list[tuple[str, bytes]]) -> None:
        self._headers = value

    @property
    def message_id(self) -> str:
        if self._message_id is None:
            self._message_id = message_id(self._raw, self.topic, self.partition, self.offset)
        return self._message_id

    @message_id.setter
    def message_id(self, value: str) -> None:
        self._message_id = value

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in _FIELDS)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ConsumerRecord):
            return NotImplemented
        return self._values() == other._values()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        shown = ", ".join(f"{n}={v!r}" for n, v in zip(_FIELDS, self._values(), strict=True))
        return f"ConsumerRecord({shown})"


_raw_decode = json.JSONDecoder().raw_decode


def json_deserializer(data: bytes | None, topic: str) -> Any:
    """UTF-8 JSON (RFC 8259); ``None`` (a tombstone) stays ``None``. A value with white space
    around it, or in another encoding ``json`` detects (a BOM, UTF-16/32), goes through
    ``json.loads``, which also names what is wrong with one that is not JSON."""
    if data is None:
        return None
    try:
        text = data.decode()
        value, end = _raw_decode(text)
        if end == len(text):
            return value
    except ValueError:
        pass
    return json.loads(data)


class AvroDeserializer(AvroDecoder):
    """``AvroDecoder`` as a ``ReliableConsumer`` deserializer: ``(data, topic) -> record``."""

    def __call__(self, data: bytes | None, topic: str) -> Any:
        if data is None:
            return None
        return self.decode(data)


def as_deserializer(obj: Any) -> Deserializer:
    """The caller's deserializer as ``(data, topic) -> value``; None means JSON."""
    if obj is None:
        return json_deserializer
    if callable(obj) and not isinstance(obj, AvroDecoder):
        return obj
    decode = getattr(obj, "decode", None)
    if callable(decode):
        return lambda data, _topic: None if data is None else decode(data)
    if callable(obj):
        return obj
    raise TypeError(
        f"deserializer must be callable(data, topic) or have decode(data), got {type(obj).__name__}"
    )


def message_id(headers: RawHeaders | None, topic: str, partition: int, offset: int) -> str:
    """The record's message id header, or a stable id from its original position."""
    raw = h.get(headers, h.MESSAGE_ID) if headers else None
    if raw is not None:
        return raw.decode("utf-8", "replace")
    return f"{topic}-{partition}-{offset}"


def exception_name(exc: BaseException) -> str:
    """``ValueError`` for builtins, ``package.module.Class`` otherwise."""
    cls = type(exc)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"
