"""What the send path takes in: the caller's headers (checked and encoded) and a prepared
record (serialized, with its id and dedup key, not yet claimed or sent)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

from kafka_reliable.headers import MESSAGE_ID as _MID

UserHeaders = Mapping[str, str | bytes | None] | Sequence[tuple[str, str | bytes | None]] | None


class PreparedRecord(NamedTuple):
    """A serialized record with its id and dedup key, not yet claimed or sent."""

    topic: str
    value: bytes
    key: bytes | None
    message_id: str
    dedup_key: bytes | None


def encode_headers(headers: UserHeaders, mid: str, with_id: bool) -> list[tuple[str, bytes]]:
    """User headers as ``(str, bytes)`` pairs plus our id header; ValueError names a bad one."""
    out: list[tuple[str, bytes]] = []
    if headers:
        items = headers.items() if isinstance(headers, Mapping) else headers
        for item in items:
            try:
                k, v = item
            except (TypeError, ValueError):
                raise ValueError(
                    f"headers must be a mapping or (name, value) pairs, got {item!r}"
                ) from None
            if not isinstance(k, str):
                raise ValueError(f"header names must be str, got {k!r}")
            if isinstance(v, str):
                out.append((k, v.encode("utf-8")))
            elif v is None or isinstance(v, bytes | bytearray | memoryview):
                out.append((k, bytes(v) if v is not None else b""))
            else:
                raise ValueError(
                    f"header {k!r}: value must be str, bytes or None, got {type(v).__name__}"
                )
    if with_id:
        out.append((_MID, mid.encode()))
    return out
