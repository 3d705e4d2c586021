"""CircuitBreaker: stop handing records to librdkafka while the cluster is unreachable.

States::

    closed ──(failure rate >= threshold over >= min_calls in window_s, or unreachable)──▶ open
    open ──(open_duration_s elapsed, or record_reachable() after an outage)──▶ half_open
    half_open ──(half_open_max_calls trial deliveries all succeed)──▶ closed
    half_open ──(any trial fails, or unreachable)──▶ open (timer restarts)

``allow()`` is on the send path: in ``closed`` it is one attribute read. In ``half_open`` it
admits up to ``half_open_max_calls`` trial records; the rest are refused. What the producer
does with a refused record is ``mode``: ``"spool"`` (keep it in the local spool, drained
when the breaker closes) or ``"fail_fast"`` (raise ``CircuitOpenError`` to the caller).
Off by default in the producer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from kafka_reliable.errors import KafkaReliableError
from kafka_reliable.health._window import SlidingWindow

log = logging.getLogger(__name__)

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
#: What the producer does with a record the breaker refuses.
MODES = ("spool", "fail_fast")

StateListener = Callable[[str, str], None]


class CircuitOpenError(KafkaReliableError):
    """The circuit breaker is open (mode ``fail_fast``): the record was not sent."""


class CircuitBreaker:
    """Closed / open / half-open breaker over delivery outcomes (see the module docstring)."""

    def __init__(
        self,
        *,
        failure_rate_threshold: float = 0.5,
        min_calls: int = 20,
        window_s: float = 30.0,
        open_duration_s: float = 10.0,
        half_open_max_calls: int = 5,
        mode: str = "spool",
        clock: Callable[[], float] = time.monotonic,
        on_state_change: StateListener | None = None,
    ) -> None:
        if not 0.0 < failure_rate_threshold <= 1.0:
            raise ValueError(
                f"failure_rate_threshold must be in (0, 1], got {failure_rate_threshold!r}"
            )
        if min_calls < 1 or half_open_max_calls < 1:
            raise ValueError("min_calls and half_open_max_calls must be >= 1")
        if window_s <= 0 or open_duration_s < 0:
            raise ValueError("window_s must be > 0 and open_duration_s >= 0")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.failure_rate_threshold = failure_rate_threshold
        self.min_calls = min_calls
        self.open_duration_s = open_duration_s
        self.half_open_max_calls = half_open_max_calls
        self.mode = mode
        self._clock = clock
        self._window = SlidingWindow(window_s=window_s, clock=clock)
        self._lock = threading.Lock()
        self._state = CLOSED
        self._opened_at = 0.0
        self._open_reason: str | None = None
        self._trials = 0
        self._trial_successes = 0
        self._listeners: list[StateListener] = [on_state_change] if on_state_change else []

    def add_listener(self, cb: StateListener) -> None:
        """``cb(old_state, new_state)`` on every transition (called outside the lock)."""
        self._listeners.append(cb)

    @property
    def state(self) -> str:
        """``"closed"``, ``"open"`` or ``"half_open"`` (an elapsed open period reads as
        half_open)."""
        if self._state == OPEN:
            with self._lock:
                changed = self._maybe_half_open()
            self._notify(changed)
        return self._state

    def allow(self) -> bool:
        """May a record be handed to librdkafka now? Send path: cheap when closed."""
        if self._state == CLOSED:
            return True
        with self._lock:
            changed = self._maybe_half_open()
            if self._state == HALF_OPEN and self._trials < self.half_open_max_calls:
                self._trials += 1
                allowed = True
            else:
                allowed = self._state == CLOSED
        self._notify(changed)
        return allowed

    def record(self, ok: bool) -> None:
        """The outcome of one delivery."""
        state = self._state
        if state == CLOSED:
            n_ok, n_failed = self._window.add(ok)
            total = n_ok + n_failed
            if (
                not ok
                and total >= self.min_calls
                and n_failed / total >= self.failure_rate_threshold
            ):
                self._trip_from((CLOSED,), "failure_rate")
        elif state == HALF_OPEN:
            if not ok:
                self._trip_from((HALF_OPEN,), "probe_failed")
                return
            with self._lock:
                changed = None
                if self._state == HALF_OPEN:
                    self._trial_successes += 1
                    if self._trial_successes >= self.half_open_max_calls:
                        changed = self._set(CLOSED)
            self._notify(changed)

    def record_unreachable(self) -> None:
        """The cluster is unreachable (``_ALL_BROKERS_DOWN``): open now."""
        self._trip_from((CLOSED, HALF_OPEN), "unreachable")

    def record_reachable(self) -> None:
        """A broker is up again: after an outage, probe now instead of waiting."""
        if self._state != OPEN:
            return
        with self._lock:
            changed = (
                self._set(HALF_OPEN)
                if self._state == OPEN and self._open_reason == "unreachable"
                else None
            )
        self._notify(changed)

    def snapshot(self) -> dict[str, Any]:
        """State and the figures behind it (for stats and health)."""
        n_ok, n_failed = self._window.totals()
        total = n_ok + n_failed
        return {
            "state": self.state,
            "mode": self.mode,
            "open_reason": self._open_reason,
            "calls_in_window": total,
            "failure_rate": n_failed / total if total else 0.0,
        }

    # ---- transitions (hold the lock; return (old, new) to notify after releasing it) ---

    def _trip_from(self, states: tuple[str, ...], reason: str) -> None:
        with self._lock:
            changed = None
            if self._state in states:
                self._open_reason = reason
                changed = self._set(OPEN)
        self._notify(changed)

    def _maybe_half_open(self) -> tuple[str, str] | None:
        if self._state == OPEN and self._clock() - self._opened_at >= self.open_duration_s:
            return self._set(HALF_OPEN)
        return None

    def _set(self, new: str) -> tuple[str, str]:
        old = self._state
        if new == OPEN:
            self._opened_at = self._clock()
        elif new == HALF_OPEN:
            self._trials = 0
            self._trial_successes = 0
        else:
            self._window.clear()
            self._open_reason = None
        self._state = new
        log.log(
            logging.WARNING if new == OPEN else logging.INFO,
            "circuit breaker %s -> %s (reason: %s)",
            old,
            new,
            self._open_reason,
        )
        return old, new

    def _notify(self, changed: tuple[str, str] | None) -> None:
        if changed is None:
            return
        for cb in list(self._listeners):
            try:
                cb(*changed)
            except Exception:
                log.exception("circuit breaker listener %r raised", cb)
