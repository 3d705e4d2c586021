"""An exact set of 16-byte keys with an expiry each and least-recently-used order, in flat
arrays: about 44 bytes per key instead of ~230 for a dict of ``bytes`` (a Python object per key
costs more than the whole budget).

Layout (entry ``e`` in ``1..capacity``; 0 is the list's sentinel and "empty"):

- ``lo[e]``, ``hi[e]``: the key as two unsigned 64-bit halves (16 B);
- ``exp[e]``: its expiry on the caller's clock (8 B);
- ``prev[e]``, ``nxt[e]``: a doubly-linked list in use order, least recent first (8 B);
- ``hs[e]``: the low 32 bits of its table hash, so moving or evicting it needs no rehash (4 B);
- ``table``: open addressing with linear probing (position: Python's keyed SipHash of the
  16-byte key, so no choice of keys can pile them up), entry numbers, ``2 × capacity + 1``
  slots (at most half full: 8 B per key); deletion shifts followers back, so no tombstones.

The arrays are anonymous memory maps sized for the bound at construction: the kernel gives a
page only when it is first written, so memory grows with the entries (and the table, written
at random, early) and is flat once the store is full; there is never a rehash.

Keys of another length are first reduced to their 16-byte xxh3-128 digest; two such keys
share a slot only if their 128-bit digests collide (the odds of
:mod:`kafka_reliable.dedup.keys`: nil at any realistic volume). No probabilistic filter: a
verdict is never a guess. Not thread-safe on its own (the deduplicator holds a lock).
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Sequence
from typing import Any

import xxhash

from kafka_reliable.errors import ConfigurationError

_KQ = struct.Struct("<QQ")
_unpack = _KQ.unpack
_digest = xxhash.xxh3_128_digest

#: Largest bound: entry numbers are signed 32-bit.
MAX_BOUND = 2**31 - 2

#: Memory per key once written: key 16, expiry 8, use-order list 8, hash 4, table 8.
BYTES_PER_KEY = 44


def _block(fmt: str, n: int) -> Any:
    """``n`` zeroed items of struct format ``fmt`` in an anonymous map (pages on first write)."""
    size = struct.calcsize(fmt) * n
    return memoryview(mmap.mmap(-1, size)).cast(fmt)  # type: ignore[call-overload]


class CompactStore:
    """``claim`` / ``contains`` / ``add`` / ``discard`` / ``purge`` over at most ``bound`` keys."""

    def __init__(self, *, bound: int) -> None:
        if not 1 <= bound <= MAX_BOUND:
            raise ConfigurationError(f"dedup max_entries must be 1..{MAX_BOUND}, got {bound!r}")
        self.bound = bound
        try:
            self._alloc()
        except (OSError, MemoryError) as exc:
            need_gb = BYTES_PER_KEY * bound / 1e9
            raise ConfigurationError(
                f"dedup max_entries={bound} needs {need_gb:.1f} GB of address space for the "
                f"memory store, which this system refused ({exc!r}); lower max_entries"
            ) from None

    def _alloc(self) -> None:
        n = self.capacity = self.bound
        self.size = 0
        self._lo, self._hi, self._exp = _block("Q", n + 1), _block("Q", n + 1), _block("d", n + 1)
        self._prev, self._nxt, self._hs = _block("i", n + 1), _block("i", n + 1), _block("I", n + 1)
        self._slots = 2 * n + 1  # at most half full
        self._table = _block("i", self._slots)
        self._free = 0  # singly-linked through nxt
        self._top = 0  # entries 1..top were handed out at least once

    # -- lookups ----------------------------------------------------------------------------

    def _find(self, key: bytes) -> tuple[int, int]:
        """(table position, entry) of a 16-byte key; entry 0 and the free position when absent."""
        table, slots, los, his = self._table, self._slots, self._lo, self._hi
        lo, hi = _unpack(key)
        pos = (hash(key) & 0xFFFFFFFF) % slots
        while True:
            e = table[pos]
            if e == 0 or (los[e] == lo and his[e] == hi):
                return pos, e
            pos = (pos + 1) % slots

    def _slot_of(self, e: int) -> int:
        """The table position of stored entry ``e`` (no key compare: entry numbers are unique)."""
        table, slots = self._table, self._slots
        pos = self._hs[e] % slots
        while table[pos] != e:
            pos = (pos + 1) % slots
        return pos

    def expiry(self, key: bytes) -> float | None:
        """The key's expiry, or None when it is not stored."""
        e = self._find(key if len(key) == 16 else _digest(key))[1]
        return self._exp[e] if e else None

    # -- updates ----------------------------------------------------------------------------

    def claim(self, key: bytes, now: float, expires_at: float) -> bool:
        """True (stored with ``expires_at``, most recent) unless the key is stored and not
        expired at ``now``: then False, and it becomes the most recently used."""
        if len(key) != 16:
            key = _digest(key)
        lo, hi = _unpack(key)
        table, slots, los, his = self._table, self._slots, self._lo, self._hi
        h = hash(key) & 0xFFFFFFFF
        pos = h % slots
        e = table[pos]
        while e:  # _find and _touch inlined: this is the send path
            if los[e] == lo and his[e] == hi:
                nxt = self._nxt
                n = nxt[e]
                if n:
                    prev = self._prev
                    p, last = prev[e], prev[0]
                    nxt[p], prev[n], prev[e], nxt[e], nxt[last], prev[0] = n, p, last, 0, e, e
                exp = self._exp
                if exp[e] > now:
                    return False
                exp[e] = expires_at
                return True
            pos = (pos + 1) % slots
            e = table[pos]
        if self.size >= self.capacity:
            pos = self._make_room(h)
        self._place(pos, lo, hi, h, expires_at)
        return True

    def claim_many(self, keys: Sequence[bytes], now: float, expires_at: float) -> list[bool]:
        """``[claim(k, now, expires_at) for k in keys]`` with the lookups inlined (send_batch)."""
        out: list[bool] = []
        append, claim = out.append, self.claim
        table, slots, los, his, exp = self._table, self._slots, self._lo, self._hi, self._exp
        for key in keys:
            if len(key) != 16 or self.size >= self.capacity:
                append(claim(key, now, expires_at))
                continue
            lo, hi = _unpack(key)
            h = hash(key) & 0xFFFFFFFF
            pos = h % slots
            e = table[pos]
            while e and (los[e] != lo or his[e] != hi):
                pos = (pos + 1) % slots
                e = table[pos]
            if not e:
                self._place(pos, lo, hi, h, expires_at)
                append(True)
                continue
            self._touch(e)
            fresh = exp[e] <= now
            if fresh:
                exp[e] = expires_at
            append(fresh)
        return out

    def add(self, key: bytes, expires_at: float) -> None:
        """Store the key with ``expires_at`` (a fresh expiry if present), most recent."""
        if len(key) != 16:
            key = _digest(key)
        pos, e = self._find(key)
        if e:
            self._exp[e] = expires_at
            self._touch(e)
        else:
            self._insert(pos, key, expires_at)

    def discard(self, key: bytes) -> None:
        """Forget the key (no error when absent)."""
        pos, e = self._find(key if len(key) == 16 else _digest(key))
        if e:
            self._remove(pos, e)

    def purge(self, now: float) -> None:
        """Drop expired keys from the least recently used end, up to the first live one."""
        nxt, exp = self._nxt, self._exp
        while self.size and exp[nxt[0]] <= now:
            e = nxt[0]
            self._remove(self._slot_of(e), e)

    def clear(self) -> None:
        self._alloc()

    # -- internals --------------------------------------------------------------------------

    def _touch(self, e: int) -> None:
        """Make entry ``e`` the most recently used."""
        prev, nxt = self._prev, self._nxt
        n = nxt[e]
        if n == 0:
            return  # already the most recent
        p = prev[e]
        nxt[p], prev[n] = n, p
        last = prev[0]
        prev[e], nxt[e], nxt[last], prev[0] = last, 0, e, e

    def _insert(self, pos: int, key: bytes, expires_at: float) -> None:
        h = hash(key) & 0xFFFFFFFF
        if self.size >= self.capacity:
            pos = self._make_room(h)
        lo, hi = _unpack(key)
        self._place(pos, lo, hi, h, expires_at)

    def _make_room(self, h: int) -> int:
        """Evict the least recently used (unlink, free, empty its slot: ``_remove`` inlined);
        return the free position for hash ``h``."""
        table, slots, prev, nxt = self._table, self._slots, self._prev, self._nxt
        e = nxt[0]
        n = nxt[e]
        nxt[0], prev[n], nxt[e], self._free = n, 0, self._free, e
        self.size -= 1
        pos = self._hs[e] % slots
        while table[pos] != e:
            pos = (pos + 1) % slots
        self._unslot(pos)
        pos = h % slots
        while table[pos]:
            pos = (pos + 1) % slots
        return pos

    def _place(self, pos: int, lo: int, hi: int, h: int, expires_at: float) -> None:
        """Store an absent key at free table position ``pos``, as the most recently used."""
        e = self._free
        if e:
            self._free = self._nxt[e]
        else:
            e = self._top = self._top + 1
        self._lo[e], self._hi[e], self._exp[e], self._hs[e] = lo, hi, expires_at, h
        self._table[pos] = e
        prev, nxt = self._prev, self._nxt
        last = prev[0]
        prev[e], nxt[e], nxt[last], prev[0] = last, 0, e, e
        self.size += 1

    def _remove(self, pos: int, e: int) -> None:
        prev, nxt = self._prev, self._nxt
        p, n = prev[e], nxt[e]
        nxt[p], prev[n] = n, p
        nxt[e], self._free = self._free, e
        self.size -= 1
        self._unslot(pos)

    def _unslot(self, pos: int) -> None:
        """Empty ``pos`` and shift back the followers whose home is not between."""
        table, slots, hs = self._table, self._slots, self._hs
        j = pos
        while True:
            j = (j + 1) % slots
            e = table[j]
            if e == 0:
                break
            home = hs[e] % slots
            if (pos <= j and (home <= pos or home > j)) or (pos > j and pos >= home > j):
                table[pos] = e
                pos = j
        table[pos] = 0
