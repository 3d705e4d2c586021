"""Dedup keys: a content checksum over (topic, key, value), or the caller's own function.

Why xxh3-128 (package ``xxhash``, maintained, C implementation): about 0.06 µs for 100 bytes
and well distributed; 128 bits keep accidental collisions out of reach. For ``n`` distinct
records alive within one TTL window the chance that any two share a key is about
``n² / 2¹²⁹``: 1.5e-21 for a billion records, 1.5e-15 for a trillion. A collision would drop
a distinct record as a "duplicate", so the odds matter, and at these sizes they are nil.

xxh3 is not a cryptographic hash: someone who chooses record contents on purpose could build
two records with one key and so suppress the second. When producers send attacker-controlled
content and that matters, pass a ``key_fn`` built on ``hashlib.blake2b``.
"""

from __future__ import annotations

from collections.abc import Callable

import xxhash

#: A caller-supplied dedup key: ``key_fn(topic, key, value) -> bytes | str`` (str is UTF-8 encoded).
KeyFn = Callable[[str, bytes | None, bytes], bytes | str]

_NO_KEY = b"\xff\xff\xff\xff"
_MAX_CACHED_TOPICS = 4096
_topic_heads: dict[str, bytes] = {}
_digest = xxhash.xxh3_128_digest


def _topic_head(topic: str) -> bytes:
    head = _topic_heads.get(topic)
    if head is None:
        raw = topic.encode("utf-8")
        head = len(raw).to_bytes(4, "big") + raw
        if len(_topic_heads) >= _MAX_CACHED_TOPICS:
            _topic_heads.clear()
        _topic_heads[topic] = head
    return head


def content_key(topic: str, key: bytes | None, value: bytes) -> bytes:
    """The 16-byte xxh3-128 digest of ``len(topic) topic len(key) key value``.

    Lengths are 4-byte big-endian; a missing key is written as length ``0xFFFFFFFF`` so that
    ``key=None`` and ``key=b""`` differ. The value comes last, so its length is implied and no
    two different (topic, key, value) triples share an encoding.
    """
    if key is None:
        return _digest(b"".join((_topic_head(topic), _NO_KEY, value)))
    return _digest(b"".join((_topic_head(topic), len(key).to_bytes(4, "big"), key, value)))


def derive_key(topic: str, key: bytes | None, value: bytes, key_fn: KeyFn | None = None) -> bytes:
    """The dedup key of one record: ``key_fn``'s result when given, else :func:`content_key`.

    A caller's key is used verbatim (after UTF-8 encoding of a ``str``); it is the caller's
    choice whether it includes the topic.
    """
    if key_fn is None:
        return content_key(topic, key, value)
    out = key_fn(topic, key, value)
    if isinstance(out, bytes):
        return out
    if isinstance(out, str):
        return out.encode("utf-8")
    raise TypeError(f"dedup key function must return bytes or str, got {type(out).__name__}")
