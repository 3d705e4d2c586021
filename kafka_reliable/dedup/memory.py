"""In-process dedup for a single producer instance: TTL plus a bounded LRU, thread-safe, in a
compact store (:mod:`kafka_reliable.dedup.compact`, about 44 bytes per key)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence

from kafka_reliable.dedup.base import DEFAULT_MAX_ENTRIES, DEFAULT_TTL_S, DedupBase, validate
from kafka_reliable.dedup.compact import CompactStore
from kafka_reliable.dedup.keys import KeyFn


class MemoryDeduplicator(DedupBase):
    """Claims live ``ttl_s`` seconds; at most ``max_entries`` are kept.

    When full, the least recently used claim is evicted first (a duplicate hit counts as a use,
    so content that keeps repeating stays caught). A hit does not extend the TTL, as with Redis
    ``SET NX EX``. Expired claims are dropped lazily. Not shared between processes: use
    :class:`~kafka_reliable.dedup.RedisDeduplicator` for that. Memory: about 44 bytes per key,
    allocated as the store fills (doubling) and flat once it holds ``max_entries``.
    """

    backend = "memory"

    def __init__(
        self,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
        key_fn: KeyFn | None = None,
    ) -> None:
        validate(ttl_s=ttl_s, max_entries=max_entries)
        super().__init__(key_fn=key_fn)
        self.ttl_s = float(ttl_s)
        self.max_entries = int(max_entries)
        self.available = True
        self._clock = clock
        self._store = CompactStore(bound=self.max_entries)
        self._lock = self._stats_lock
        self._purge_every_s = min(1.0, self.ttl_s / 10)
        self._purge_at = clock()

    def __len__(self) -> int:
        return self._store.size

    def check(self, keys: Sequence[bytes]) -> list[bool]:
        """Claim each key; ``True`` = first seen within the TTL (send it), ``False`` = duplicate."""
        now = self._clock()
        expires_at = now + self.ttl_s
        with self._lock:
            out = self._store.claim_many(keys, now, expires_at)
            self._checks += len(out)
            self._duplicates += len(out) - sum(out)
            self._maybe_purge(now)
        return out

    def check_chunks(self, chunks: Iterable[Sequence[bytes]]) -> Iterator[list[bool]]:
        """``check`` of each chunk in turn (the Redis backend overlaps them with the caller)."""
        for chunk in chunks:
            yield self.check(chunk)

    def check_one(self, k: bytes) -> bool:
        """``check([k])[0]`` without the lists: the send path's per-record claim."""
        now = self._clock()
        with self._lock:
            self._checks += 1
            fresh = self._store.claim(k, now, now + self.ttl_s)
            if not fresh:
                self._duplicates += 1
            if now >= self._purge_at:
                self._maybe_purge(now)
        return fresh

    def contains(self, keys: Sequence[bytes]) -> list[bool]:
        """Whether each key is claimed (and not expired); claims nothing."""
        now = self._clock()
        with self._lock:
            return [(exp := self._store.expiry(k)) is not None and exp > now for k in keys]

    def add(self, keys: Sequence[bytes]) -> None:
        """Claim keys unconditionally (a fresh TTL each)."""
        now = self._clock()
        with self._lock:
            for k in keys:
                self._store.add(k, now + self.ttl_s)
            self._maybe_purge(now)

    def release(self, keys: Sequence[bytes]) -> None:
        """Forget keys, so the same content may be sent again (its record went to the DLQ)."""
        with self._lock:
            for k in keys:
                self._store.discard(k)

    def ping(self) -> bool:
        return True

    def close(self) -> None:
        """Drop every claim."""
        with self._lock:
            self._store.clear()

    def _maybe_purge(self, now: float) -> None:
        if now >= self._purge_at:
            self._purge_at = now + self._purge_every_s
            self._store.purge(now)
