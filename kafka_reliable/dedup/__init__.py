"""Deduplication: content checksums in Redis (many producers) or in memory (one instance).

The producer asks ``dedup.key_for(topic, key, value)`` for each record (the content key, or
the caller's ``key_fn`` when one was given to :func:`make_deduplicator`), then
``dedup.check(keys)`` once per ``send_message`` / ``send_batch``; ``False`` means duplicate:
not sent. A record that ends in the DLQ is ``release``-d so the same content can be sent again.
Retry worker and DLQ replay never run content dedup; consumers dedup hops with
:class:`ProcessedMessages` on the ``kafka_reliable.message.id`` header.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kafka_reliable.dedup.base import (
    DEFAULT_MAX_ENTRIES,
    DEFAULT_TTL_S,
    POLICIES,
    Deduplicator,
    OnUnavailable,
    validate,
)
from kafka_reliable.dedup.keys import KeyFn, content_key, derive_key
from kafka_reliable.dedup.memory import MemoryDeduplicator
from kafka_reliable.dedup.processed import ProcessedMessages, message_id_of
from kafka_reliable.dedup.redis_backend import DEFAULT_KEY_PREFIX, RedisDeduplicator
from kafka_reliable.errors import ConfigurationError

__all__ = [
    "DEFAULT_KEY_PREFIX",
    "DEFAULT_MAX_ENTRIES",
    "DEFAULT_TTL_S",
    "POLICIES",
    "Deduplicator",
    "KeyFn",
    "MemoryDeduplicator",
    "OnUnavailable",
    "ProcessedMessages",
    "RedisDeduplicator",
    "content_key",
    "derive_key",
    "make_deduplicator",
    "message_id_of",
]


def make_deduplicator(
    *,
    redis_client: Any = None,
    redis_url: str | None = None,
    ttl_s: float = DEFAULT_TTL_S,
    key_prefix: str = DEFAULT_KEY_PREFIX,
    max_entries: int = DEFAULT_MAX_ENTRIES,
    on_unavailable: OnUnavailable = "fail_open",
    key_fn: KeyFn | None = None,
    probe_interval_s: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
) -> RedisDeduplicator | MemoryDeduplicator:
    """The feature document's choice: ``redis_client`` (or ``redis_url``) → Redis; else memory.

    ``key_fn(topic, key, value) -> bytes | str`` replaces the content checksum (applied by
    ``key_for``). ``max_entries`` and ``clock`` apply to memory; ``key_prefix``,
    ``on_unavailable`` and ``probe_interval_s`` to Redis (a memory store never becomes
    unavailable, but a policy name it could never honour is refused all the same).
    ``redis_url`` may name a cluster: ``redis+cluster://host:port[,host:port…]``.
    """
    validate(ttl_s=ttl_s, on_unavailable=on_unavailable, max_entries=max_entries)
    if redis_client is not None and redis_url is not None:
        raise ConfigurationError("give redis_client or redis_url for deduplication, not both")
    if redis_client is not None or redis_url is not None:
        return RedisDeduplicator(
            client=redis_client,
            url=redis_url,
            ttl_s=ttl_s,
            key_prefix=key_prefix,
            on_unavailable=on_unavailable,
            key_fn=key_fn,
            probe_interval_s=probe_interval_s,
        )
    return MemoryDeduplicator(ttl_s=ttl_s, max_entries=max_entries, clock=clock, key_fn=key_fn)
