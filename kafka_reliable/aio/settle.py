"""From the producer's threads to the event loop: one future per awaited record.

Each awaited record is watched (``ReliableKafkaProducer.watch``): the producer calls
``on_watch(message_id, status, error_class)`` once when its status becomes final, from
whichever thread served the delivery report or routed the record. Outcomes are queued and the
loop is woken at most once per batch of outcomes (one ``call_soon_threadsafe``, not one per
record). Records nobody awaits cost nothing here (the producer's fast path stays on).
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

#: Outcomes resolved per turn of the loop: each wakes a task, and a thousand tasks woken in
#: one turn would hold the loop for tens of milliseconds.
DELIVER_SLICE = 128

#: What an awaited record resolves to: ``(status, error class or None)``.
Outcome = tuple[str, str | None]


class SettleHub:
    """Futures of awaited records, resolved on the loop when the records settle."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = self._loop = loop
        self._waiters: dict[str, asyncio.Future[Outcome]] = {}
        self._done: collections.deque[tuple[str, str, str | None]] = collections.deque()
        self._wake_pending = False

    def expect(self, message_id: str) -> asyncio.Future[Outcome]:
        """A future for ``message_id`` (register it before the record is handed over)."""
        fut: asyncio.Future[Outcome] = self._loop.create_future()
        self._waiters[message_id] = fut
        return fut

    def forget(self, message_id: str) -> None:
        fut = self._waiters.pop(message_id, None)
        if fut is not None and not fut.done():
            fut.cancel()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    # -- producer threads ------------------------------------------------------------------

    def on_watch(self, message_id: str, status: str, error_class: str | None) -> None:
        """The sync producer's per-record ``watch`` callback (the fast path stays on)."""
        if message_id not in self._waiters:
            return
        self._done.append((message_id, status, error_class))
        if not self._wake_pending:
            self._wake_pending = True
            try:
                self._loop.call_soon_threadsafe(self._deliver)
            except RuntimeError:  # the loop is closed: nobody is left to tell
                self._wake_pending = False

    # -- loop ------------------------------------------------------------------------------

    def _deliver(self) -> None:
        self._wake_pending = False  # first: an outcome appended from now on wakes us again
        done, waiters = self._done, self._waiters
        for _ in range(DELIVER_SLICE):
            if not done:
                return
            mid, status, cls = done.popleft()
            fut = waiters.pop(mid, None)
            if fut is not None and not fut.done():
                fut.set_result((status, cls))
        if done and not self._wake_pending:  # the rest next turn: timers and I/O get theirs first
            self._wake_pending = True
            self._loop.call_soon(self._deliver)

    def resolve_all(self, status_of: Callable[[str], str | None]) -> None:
        """After close: whatever was not reported resolves with the status the producer knows."""
        while self._done:
            self._deliver()
        for mid, fut in list(self._waiters.items()):
            if not fut.done():
                fut.set_result((status_of(mid) or "pending", None))
        self._waiters.clear()
