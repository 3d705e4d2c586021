"""``ordering="key"``: per-key order through retries, for one partition lane. Pure.

A lane is source partition ``p`` together with retry partition ``p`` (the consumer writes a
record's retries to the retry partition numbered like its source partition, and the range
assignor gives both to the same member). Records of one key are identified by their original
``(partition, offset)`` and handed over in that order:

- a key is *blocked* while the lane knows a record of it in the retry topic, or on its way
  there (``expect``); later source records of a blocked key are parked behind it;
- only the lowest record of a key is scheduled (at its due time), and only when no lower
  record of that key is still on its way to the retry topic;
- a record that fails again is on its way again (``requeue``): its followers keep waiting;
- the state is rebuilt after a restart or rebalance by reading the retry partition to its end
  (``caught_up``) before anything of the lane is handed to the handler.

Two copies of one record (a re-sent write, a re-read source record) collapse into one: the
later attempt wins and the other copy is returned as *superseded* (its offset is finished).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

T = TypeVar("T")

#: A record's identity: its original ``(partition, offset)``.
Ident = tuple[int, int]
#: Which copy of one record wins: ``(attempt, retry offset)``.
Rank = tuple[int, int]


class KeyLane(Generic[T]):
    """Per-key queues of one lane (see the module docstring)."""

    def __init__(self, *, caught_up: bool = False) -> None:
        self.caught_up = caught_up
        #: Source messages read while the lane was still catching up (handled after it).
        self.backlog: list[object] = []
        self._queues: dict[Hashable, list[tuple[Ident, Rank, T]]] = {}
        self._awaiting: dict[Hashable, set[Ident]] = {}
        self._scheduled: dict[Hashable, Ident] = {}

    def blocked(self, key: Hashable) -> bool:
        """Whether a source record of ``key`` must be parked."""
        return key in self._queues or key in self._awaiting

    def blocker(self, key: Hashable) -> Ident | None:
        """The lowest record of ``key`` the lane knows (what a parked record waits behind)."""
        q = self._queues.get(key)
        cands: list[Ident] = [q[0][0]] if q else []
        cands.extend(self._awaiting.get(key, ()))
        return min(cands) if cands else None

    def known(self, key: Hashable, ident: Ident) -> bool:
        """Whether this record is already in the retry topic or on its way (a re-delivery)."""
        return ident in self._awaiting.get(key, ()) or any(
            e[0] == ident for e in self._queues.get(key, ())
        )

    def expect(self, key: Hashable, ident: Ident) -> None:
        """A record of ``key`` was sent to the retry topic: the key stays blocked until it is
        read."""
        self._awaiting.setdefault(key, set()).add(ident)

    def arrived(
        self, key: Hashable, ident: Ident, rank: Rank, item: T
    ) -> tuple[T | None, T | None]:
        """A retry record was read. Returns ``(superseded copy or None, item to schedule or
        None)``."""
        aw = self._awaiting.get(key)
        if aw is not None:
            aw.discard(ident)
            if not aw:
                del self._awaiting[key]
        q = self._queues.setdefault(key, [])
        superseded: T | None = None
        for i, (eid, erank, eitem) in enumerate(q):
            if eid == ident:
                if self._scheduled.get(key) == ident or rank < erank:
                    superseded = item
                else:
                    superseded, q[i] = eitem, (ident, rank, item)
                break
        else:
            pos = len(q)
            while pos and q[pos - 1][0] > ident:
                pos -= 1
            q.insert(pos, (ident, rank, item))
        return superseded, self.next_head(key)

    def next_head(self, key: Hashable) -> T | None:
        """The record of ``key`` to schedule now, or None (nothing, not yet, or already
        scheduled)."""
        if not self.caught_up or key in self._scheduled:
            return None
        q = self._queues.get(key)
        if not q:
            return None
        ident = q[0][0]
        aw = self._awaiting.get(key)
        if aw and min(aw) < ident:
            return None
        self._scheduled[key] = ident
        return q[0][2]

    def heads(self) -> list[T]:
        """Every record to schedule now (after catching up)."""
        out = []
        for key in list(self._queues):
            item = self.next_head(key)
            if item is not None:
                out.append(item)
        return out

    def _remove(self, key: Hashable, ident: Ident) -> None:
        q = self._queues.get(key)
        if q is not None:
            q[:] = [e for e in q if e[0] != ident]
            if not q:
                del self._queues[key]
        if self._scheduled.get(key) == ident:
            del self._scheduled[key]

    def done(self, key: Hashable, ident: Ident) -> T | None:
        """The record was handled (or dead-lettered): return the key's next record to
        schedule."""
        self._remove(key, ident)
        return self.next_head(key)

    def requeue(self, key: Hashable, ident: Ident) -> None:
        """The record failed again and was sent back to the retry topic: its followers keep
        waiting."""
        self._remove(key, ident)
        self.expect(key, ident)

    def pending(self) -> int:
        """Records of the lane read from the retry topic and not yet done."""
        return sum(len(q) for q in self._queues.values())

    def keys_blocked(self) -> int:
        return len(set(self._queues) | set(self._awaiting))
