"""In-process dedup for a single producer instance: TTL plus a bounded LRU, thread-safe."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from kafka_reliable.dedup.base import DEFAULT_MAX_ENTRIES, DEFAULT_TTL_S, DedupBase, validate
from kafka_reliable.dedup.keys import KeyFn


class MemoryDeduplicator(DedupBase):
    """Claims live ``ttl_s`` seconds; at most ``max_entries`` are kept.

    When full, the least recently used claim is evicted first (a duplicate hit counts as a use,
    so content that keeps repeating stays caught). A hit does not extend the TTL, as with Redis
    ``SET NX EX``. Expired claims are dropped lazily. Not shared between processes: use
    :class:`~kafka_reliable.dedup.RedisDeduplicator` for that.
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
        self._entries: OrderedDict[bytes, float] = OrderedDict()
        self._lock = self._stats_lock
        self._purge_every_s = min(1.0, self.ttl_s / 10)
        self._purge_at = clock()

    def __len__(self) -> int:
        return len(self._entries)

    def check(self, keys: Sequence[bytes]) -> list[bool]:
        """Claim each key; ``True`` = first seen within the TTL (send it), ``False`` = duplicate."""
        now = self._clock()
        expires_at = now + self.ttl_s
        entries = self._entries
        out: list[bool] = []
        duplicates = 0
        with self._lock:
            for k in keys:
                exp = entries.get(k)
                if exp is not None and exp > now:
                    entries.move_to_end(k)
                    out.append(False)
                    duplicates += 1
                    continue
                entries[k] = expires_at
                if exp is not None:
                    entries.move_to_end(k)
                out.append(True)
            self._trim(now)
            self._checks += len(out)
            self._duplicates += duplicates
        return out

    def check_one(self, k: bytes) -> bool:
        """``check([k])[0]`` without the lists: the send path's per-record claim."""
        now = self._clock()
        entries = self._entries
        with self._lock:
            self._checks += 1
            exp = entries.get(k)
            if exp is not None and exp > now:
                entries.move_to_end(k)
                self._duplicates += 1
                return False
            entries[k] = now + self.ttl_s
            if exp is not None:
                entries.move_to_end(k)
            if now >= self._purge_at or len(entries) > self.max_entries:
                self._trim(now)
        return True

    def contains(self, keys: Sequence[bytes]) -> list[bool]:
        """Whether each key is claimed (and not expired); claims nothing."""
        now = self._clock()
        with self._lock:
            return [(exp := self._entries.get(k)) is not None and exp > now for k in keys]

    def add(self, keys: Sequence[bytes]) -> None:
        """Claim keys unconditionally (a fresh TTL each)."""
        now = self._clock()
        expires_at = now + self.ttl_s
        with self._lock:
            for k in keys:
                self._entries[k] = expires_at
                self._entries.move_to_end(k)
            self._trim(now)

    def release(self, keys: Sequence[bytes]) -> None:
        """Forget keys, so the same content may be sent again (its record went to the DLQ)."""
        with self._lock:
            for k in keys:
                self._entries.pop(k, None)

    def ping(self) -> bool:
        return True

    def close(self) -> None:
        """Drop every claim."""
        with self._lock:
            self._entries.clear()

    def _trim(self, now: float) -> None:
        entries = self._entries
        while len(entries) > self.max_entries:
            entries.popitem(last=False)
        if now < self._purge_at:
            return
        self._purge_at = now + self._purge_every_s
        while entries:
            k, exp = next(iter(entries.items()))
            if exp > now:
                break
            del entries[k]
