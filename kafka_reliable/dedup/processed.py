"""Consumer side: remember which ``kafka_reliable.message.id`` values were already processed.

Retries and DLQ replays republish a record on purpose, with the same message id; a consumer
that must act once per record (charge a card, send a mail) asks this helper. Two patterns:

- at-least-once, idempotent effect: ``if not seen(mid): handle(msg); mark(mid)`` — a crash
  between the two re-handles the record, never skips it;
- several consumers racing on the same id: ``if check_and_mark(mid): handle(msg)`` — exactly one
  wins; call ``forget(mid)`` when handling fails so a redelivery is handled again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kafka_reliable.dedup.base import DEFAULT_MAX_ENTRIES, OnUnavailable, validate
from kafka_reliable.dedup.memory import MemoryDeduplicator
from kafka_reliable.dedup.redis_backend import RedisDeduplicator
from kafka_reliable.headers import MESSAGE_ID

#: Default Redis namespace of processed-message marks.
DEFAULT_PROCESSED_PREFIX = "kafka_reliable:processed:"

#: Default lifetime of a processed mark (a day: longer than a retry or replay usually takes).
DEFAULT_PROCESSED_TTL_S = 86_400.0


def message_id_of(msg: Any) -> str | None:
    """The ``kafka_reliable.message.id`` header of a ``confluent_kafka.Message``, or None."""
    found: bytes | None = None
    for name, value in msg.headers() or ():
        if name == MESSAGE_ID:
            found = value
    return None if found is None else found.decode("utf-8", "replace")


class ProcessedMessages:
    """Processed-message ids in Redis (``redis_client`` / ``redis_url``) or in memory.

    ``namespace`` separates independent consumers (use the consumer group id): one group having
    processed a record says nothing about another. With Redis unavailable and ``fail_open``,
    ``seen`` answers False (handle it: at-least-once) and ``mark`` is skipped; with
    ``fail_closed`` they raise :class:`~kafka_reliable.errors.DeduplicationUnavailableError`.
    """

    def __init__(
        self,
        *,
        namespace: str = "default",
        redis_client: Any = None,
        redis_url: str | None = None,
        ttl_s: float = DEFAULT_PROCESSED_TTL_S,
        key_prefix: str = DEFAULT_PROCESSED_PREFIX,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        on_unavailable: OnUnavailable = "fail_open",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        validate(ttl_s=ttl_s, on_unavailable=on_unavailable, max_entries=max_entries)
        self.namespace = namespace
        self._store: RedisDeduplicator | MemoryDeduplicator
        if redis_client is not None or redis_url is not None:
            self._store = RedisDeduplicator(
                client=redis_client,
                url=redis_url,
                ttl_s=ttl_s,
                key_prefix=f"{key_prefix}{namespace}:",
                on_unavailable=on_unavailable,
            )
        else:
            self._store = MemoryDeduplicator(ttl_s=ttl_s, max_entries=max_entries, clock=clock)

    @property
    def backend(self) -> str:
        return self._store.backend

    @property
    def available(self) -> bool:
        return self._store.available

    @staticmethod
    def _key(message_id: str | bytes) -> bytes:
        if isinstance(message_id, bytes):
            return message_id
        if isinstance(message_id, str):
            return message_id.encode("utf-8")
        raise TypeError(
            f"message id must be str or bytes, got {type(message_id).__name__} "
            "(a record without a kafka_reliable.message.id header has no id; see message_id_of)"
        )

    def seen(self, message_id: str | bytes) -> bool:
        """Whether this id was marked processed (within the TTL)."""
        return self._store.contains([self._key(message_id)])[0]

    def mark(self, message_id: str | bytes) -> None:
        """Mark this id processed."""
        self._store.add([self._key(message_id)])

    def check_and_mark(self, message_id: str | bytes) -> bool:
        """Atomically mark this id; ``True`` when this call marked it (first time: handle it),
        ``False`` when it was already marked (skip it)."""
        return self._store.check([self._key(message_id)])[0]

    def forget(self, message_id: str | bytes) -> None:
        """Remove the mark, so the id is handled again when redelivered."""
        self._store.release([self._key(message_id)])

    def stats(self) -> dict[str, Any]:
        return self._store.stats()

    def close(self) -> None:
        self._store.close()
