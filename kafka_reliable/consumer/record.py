"""What a handler receives, and how values are turned back into objects.

A deserializer is ``callable(data, topic) -> value``; anything it raises makes the record a
poison record (DLQ, reason ``poison``, raw bytes intact). JSON is the default; an object with
a ``decode(data)`` method (``kafka_reliable.avro.AvroDecoder``) is accepted as it is, and
:class:`AvroDeserializer` is that decoder with the callable signature.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kafka_reliable import headers as h
from kafka_reliable.avro import AvroDecoder

Deserializer = Callable[[bytes | None, str], Any]
RawHeaders = Sequence[tuple[str, bytes | None]]


@dataclass(slots=True)
class ConsumerRecord:
    """One delivery of a record to the handler.

    ``topic``/``partition``/``offset``/``timestamp`` are those of the ORIGINAL record, also when
    it is delivered again from the group's retry topic (``attempt`` > 0); ``delivered_from`` is
    where this delivery was read. ``headers`` are the producer's own headers (our
    ``kafka_reliable.*`` namespace left out); ``message_id`` is the ``kafka_reliable.message.id``
    header, or ``<topic>-<partition>-<offset>`` when the record has none — the same on every hop.
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: Any
    headers: list[tuple[str, bytes]]
    timestamp: int
    message_id: str
    attempt: int
    raw_value: bytes | None = None
    group: str = ""
    delivered_from: tuple[str, int, int] = ("", -1, -1)
    #: ``ErrorClass: message`` of the previous failed attempt (None on first delivery).
    last_error: str | None = None
    #: The ``next.attempt.at`` (epoch ms) this delivery was due at; None on first delivery.
    due_at_ms: int | None = None


_decode = json.JSONDecoder().decode


def json_deserializer(data: bytes | None, topic: str) -> Any:
    """UTF-8 JSON (RFC 8259); ``None`` (a tombstone) stays ``None``. Other encodings ``json``
    detects (a BOM, UTF-16/32) are read too, through ``json.loads``."""
    if data is None:
        return None
    try:
        return _decode(data.decode())
    except ValueError:  # not UTF-8, a BOM, or not JSON: json.loads decides (and names the error)
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
