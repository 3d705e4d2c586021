"""Value and key serialization. A value that cannot be encoded raises SerializationError."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

from kafka_reliable.errors import SerializationError


class Serializer(Protocol):
    """Turns a value for ``topic`` into bytes, or raises SerializationError."""

    def __call__(self, value: Any, topic: str) -> bytes: ...


class JsonSerializer:
    """Compact UTF-8 JSON; bytes and str pass through unchanged."""

    def __init__(self, default: Callable[[Any], Any] | None = None) -> None:
        self._dumps = json.JSONEncoder(
            separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=default
        ).encode

    def __call__(self, value: Any, topic: str) -> bytes:
        if isinstance(value, bytes):
            return value
        if isinstance(value, str):
            return value.encode("utf-8")
        try:
            return self._dumps(value).encode("utf-8")
        except (TypeError, ValueError, RecursionError) as exc:
            raise SerializationError(
                f"value for topic {topic!r} cannot be encoded as JSON: {exc}"
            ) from exc


def serialize_key(key: Any) -> bytes | None:
    """Keys: None, bytes, str (UTF-8) or int (decimal text)."""
    if key is None or isinstance(key, bytes):
        return key
    if isinstance(key, str):
        return key.encode("utf-8")
    if isinstance(key, int) and not isinstance(key, bool):
        return str(key).encode()
    raise SerializationError(f"key must be str, bytes, int or None, got {type(key).__name__}")
