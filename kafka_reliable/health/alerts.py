"""Health alerts: plain dicts, a cooldown per alert type, recovery alerts, safe dispatch.

An alert is a dict with the feature document's keys plus two of ours::

    {"type": "error_rate", "value": 0.12, "threshold": 0.05, "severity": "warning",
     "timestamp": 1767000000.123,            # epoch seconds (wall clock)
     "message": "error rate 12.00% over the last 60s exceeds 5.00%",
     "recovered": False,                      # True on the alert that says it cleared
     "status": "degraded"}                    # overall health status when it fired

Cooldown: once an alert of a type has fired, the same type does not fire again until
``cooldown_s`` has passed, so a flapping metric cannot flood the callbacks. A recovery
alert is sent only for a condition whose alert was sent, so every delivered alert is
followed by at most one recovery. A condition that is still active when its cooldown
ends fires again at the next evaluation.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

Alert = dict[str, Any]
AlertCallback = Callable[[Alert], None]

#: Severities, least to most urgent.
SEVERITIES = ("info", "warning", "critical")


def make_alert(
    *,
    type: str,
    value: Any,
    threshold: Any,
    severity: str,
    timestamp: float,
    message: str,
    recovered: bool = False,
    **extra: Any,
) -> Alert:
    """One alert dict (see the module docstring for the keys); ``extra`` adds keys such as
    ``topic``."""
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, got {severity!r}")
    return {
        "type": type,
        "value": value,
        "threshold": threshold,
        "severity": severity,
        "timestamp": timestamp,
        "message": message,
        "recovered": recovered,
        **extra,
    }


@dataclass(frozen=True, slots=True)
class Condition:
    """The result of one health rule at one evaluation."""

    type: str
    active: bool
    value: Any
    threshold: Any
    severity: str
    message: str


class AlertManager:
    """Turns rule evaluations into alerts (with cooldown and recovery) and dispatches them."""

    def __init__(
        self,
        *,
        cooldown_s: float = 60.0,
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
    ) -> None:
        if cooldown_s < 0:
            raise ValueError(f"alert cooldown_s must be >= 0, got {cooldown_s!r}")
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._wall_clock = wall_clock
        self._alerted: set[str] = set()
        self._last_fired: dict[str, float] = {}
        self._callbacks: list[AlertCallback] = []
        self._lock = threading.Lock()

    def add_callback(self, cb: AlertCallback) -> None:
        if not callable(cb):
            raise TypeError(f"alert callback must be callable, got {cb!r}")
        with self._lock:
            self._callbacks.append(cb)

    @property
    def active_types(self) -> frozenset[str]:
        """Types whose alert was sent and has not recovered yet."""
        with self._lock:
            return frozenset(self._alerted)

    def evaluate(self, conditions: Iterable[Condition]) -> list[Alert]:
        """New alerts and recovery alerts for these conditions (not dispatched)."""
        now = self._clock()
        out: list[Alert] = []
        with self._lock:
            for c in conditions:
                alert = self._step(c, now)
                if alert is not None:
                    out.append(alert)
        return out

    def _step(self, c: Condition, now: float) -> Alert | None:
        if c.active:
            if c.type in self._alerted:
                return None
            last = self._last_fired.get(c.type)
            if last is not None and now - last < self._cooldown_s:
                return None
            self._alerted.add(c.type)
            self._last_fired[c.type] = now
            return make_alert(
                type=c.type,
                value=c.value,
                threshold=c.threshold,
                severity=c.severity,
                timestamp=self._wall_clock(),
                message=c.message,
            )
        if c.type not in self._alerted:
            return None
        self._alerted.discard(c.type)
        return make_alert(
            type=c.type,
            value=c.value,
            threshold=c.threshold,
            severity="info",
            timestamp=self._wall_clock(),
            message=f"recovered: {c.message}",
            recovered=True,
        )

    def dispatch_event(self, alert: Alert, key: tuple[str, ...]) -> bool:
        """Dispatch an event alert (DLQ trimmed, record quarantined, …) at most once per cooldown
        for ``key`` (e.g. type and topic), so a condition that persists does not flood; return
        whether it was sent. The one cooldown of every alert raised outside the rules."""
        now = self._clock()
        k = "\x00".join(key)
        with self._lock:
            last = self._last_fired.get(k)
            if last is not None and now - last < self._cooldown_s:
                return False
            self._last_fired[k] = now
        self.dispatch([alert])
        return True

    def dispatch(self, alerts: Iterable[Alert]) -> None:
        """Call every callback with every alert; a callback that raises is logged and skipped."""
        with self._lock:
            callbacks = list(self._callbacks)
        for alert in alerts:
            if alert.get("recovered"):
                log.info("health alert recovered: %s", alert["message"])
            else:
                log.warning(
                    "health alert %s (%s): %s", alert["type"], alert["severity"], alert["message"]
                )
            for cb in callbacks:
                try:
                    cb(alert)
                except Exception:
                    log.exception(
                        "health alert callback %r raised on a %s alert", cb, alert["type"]
                    )
