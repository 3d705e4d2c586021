"""HealthMonitor: error rate, latency, DLQ size, memory and connection, judged against thresholds.

Fed by the producer (and the retry worker): ``record_delivery`` from the delivery-report
path (O(1), no rule evaluation), ``record_connection_error`` from librdkafka's ``error_cb``,
``record_stats`` from its ``stats_cb``, and setters for DLQ size, dedup backend and circuit
state. ``tick()`` (called ~1/s by a background thread, never per message) evaluates the rules
and sends alerts; ``get_status()`` answers the same rules on demand.

Rules (thresholds: ``HealthThresholds``, the feature document's defaults)

========================  ==============================================  ==========
alert ``type``            active when                                      makes
========================  ==============================================  ==========
``connection``            the cluster is unreachable (see below)           unhealthy
``circuit_breaker``       the circuit breaker is ``open``                  unhealthy
                          … is ``half_open`` (probing)                     degraded
``error_rate``            failed / all deliveries in the window            degraded
                          > ``error_rate_threshold`` (judged only once the
                          window holds ``min_samples`` deliveries)
                          … and >= max(UNHEALTHY_ERROR_RATE, threshold)    unhealthy
``latency``               mean delivery latency in the window              degraded
                          > ``latency_threshold_ms``
``dlq_size``              DLQ records > ``dlq_size_threshold``             degraded
``memory_usage``          memory fraction > ``memory_usage_threshold``     degraded
``deduplication``         the dedup backend (Redis) is unavailable         degraded
========================  ==============================================  ==========

``status`` is ``unhealthy`` when any unhealthy rule is active, else ``degraded`` when any
rule is active, else ``healthy``. ``issues`` has one sentence per active rule.

Connection: ``_ALL_BROKERS_DOWN`` marks the cluster unreachable; so do ``_TRANSPORT``,
``_RESOLVE``, ``_AUTHENTICATION`` and ``_SSL`` unless the last statistics showed another
broker UP (one broker restarting in a cluster is not an outage). It is reachable again
when statistics show a broker in state ``UP`` or a delivery succeeds. Statistics without any
broker UP mark it unreachable only after a broker had been seen UP (at start-up brokers
are still connecting; a failed first connection arrives through ``error_cb``).

Memory: the default probe is this process's RSS over the machine's RAM, or over the
cgroup memory limit when one is set (a container).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from kafka_reliable.config import HealthThresholds
from kafka_reliable.health._window import SlidingWindow
from kafka_reliable.health.alerts import Alert, AlertCallback, AlertManager, Condition
from kafka_reliable.health.memory import process_memory_usage

log = logging.getLogger(__name__)

#: An error rate at or above this (or the threshold, if higher) makes the status unhealthy.
UNHEALTHY_ERROR_RATE = 0.5
#: Deliveries the window must hold before its error rate is judged.
DEFAULT_MIN_SAMPLES = 10
#: error_cb codes that mean this client lost the cluster (or never reached it).
DISCONNECT_CODES = frozenset(
    {"_ALL_BROKERS_DOWN", "_TRANSPORT", "_RESOLVE", "_AUTHENTICATION", "_SSL"}
)
#: Circuit breaker states.
CIRCUIT_STATES = ("closed", "half_open", "open")

HEALTHY, DEGRADED, UNHEALTHY = "healthy", "degraded", "unhealthy"


class HealthMonitor:
    """Health of one producer (or worker): see the module docstring for the rules."""

    def __init__(
        self,
        *,
        thresholds: HealthThresholds | Mapping[str, Any] | None = None,
        window_s: float = 60.0,
        alert_cooldown_s: float = 60.0,
        min_samples: int = DEFAULT_MIN_SAMPLES,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        memory_probe: Callable[[], float] | None = None,
    ) -> None:
        self.thresholds = HealthThresholds.from_mapping(thresholds)
        if min_samples < 1:
            raise ValueError(f"min_samples must be >= 1, got {min_samples!r}")
        self.window_s = float(window_s)
        self.min_samples = min_samples
        self._clock = clock
        self._window = SlidingWindow(window_s=self.window_s, clock=clock)
        self.alert_cooldown_s = float(alert_cooldown_s)
        self._alerts = AlertManager(cooldown_s=alert_cooldown_s, clock=clock, wall_clock=wall_clock)
        self._wall_clock = wall_clock
        self._memory_probe = memory_probe or process_memory_usage
        self._events = itertools.count(1)  # orders up/down evidence (clock ticks may tie)
        self._down_seq = 0
        self._up_seq = 0
        self._seen_up = False
        self._oks = 0  # successful deliveries, as evidence of connectivity
        self._oks_at_down = 0
        self._brokers_up: int | None = None
        self._queued: int | None = None
        self._last_error: str | None = None
        self._dlq_size = 0
        self._dedup_available: bool | None = None
        self._circuit_state = "closed"
        self._last_status: dict[str, Any] | None = None

    # ---- feeding (producer / worker threads) -------------------------------------------

    def record_delivery(self, ok: bool, latency_ms: float | None) -> None:
        """One delivery report. Hot path: O(1), no rule evaluation."""
        self._window.add(ok, latency_ms)
        if ok:
            self._oks += 1

    def record_deliveries(
        self, ok: int, failed: int, latency_sum_ms: float = 0.0, latency_n: int = 0
    ) -> None:
        """Aggregated delivery reports (e.g. once per tick) for the error-rate and latency rules.

        Unlike ``record_delivery`` these are not taken as evidence of connectivity: they may
        arrive after a disconnect was seen, though they happened before it.
        """
        self._window.add_many(ok, failed, latency_sum_ms, latency_n)

    def record_connection_error(self, code: str, message: str) -> None:
        """An ``error_cb`` error (``KafkaError.name()`` and ``str()``)."""
        self._last_error = f"{code}: {message}"
        if code not in DISCONNECT_CODES:
            return
        if code != "_ALL_BROKERS_DOWN" and (self._brokers_up or 0) > 1:
            return
        self._mark_down()

    def _mark_down(self) -> None:
        self._down_seq = next(self._events)
        self._oks_at_down = self._oks

    def record_stats(self, stats: Mapping[str, Any]) -> None:
        """librdkafka statistics (the parsed ``stats_cb`` JSON)."""
        up = _brokers_up(stats.get("brokers") or {})
        self._brokers_up = up
        msg_cnt = stats.get("msg_cnt")
        if isinstance(msg_cnt, int):
            self._queued = msg_cnt
        if up:
            self._seen_up = True
            self._up_seq = next(self._events)
        elif self._seen_up and self.connected:
            self._mark_down()

    def record_metadata(self, brokers_up: int) -> None:
        """The cluster answered a metadata request (from any broker): reachable, with
        ``brokers_up`` live brokers registered (what a one-shot check like ``kafka-reliable
        health`` judges by, rather than per-connection errors of one bootstrap entry)."""
        self._brokers_up = int(brokers_up)
        self._seen_up = True
        self._up_seq = next(self._events)

    def set_dlq_size(self, n: int) -> None:
        self._dlq_size = int(n)

    def set_dedup_available(self, ok: bool) -> None:
        self._dedup_available = bool(ok)

    def set_circuit_state(self, state: str) -> None:
        if state not in CIRCUIT_STATES:
            raise ValueError(f"circuit state must be one of {CIRCUIT_STATES}, got {state!r}")
        self._circuit_state = state

    def dispatch(self, alerts: list[Alert]) -> None:
        """Send alerts raised elsewhere (e.g. DLQ retention) to this monitor's callbacks."""
        self._alerts.dispatch(alerts)

    def raise_event(self, alert: Alert, *key: str) -> bool:
        """An alert raised outside the rules (DLQ trimmed, spool quarantine, …): sent to the
        callbacks at most once per cooldown for ``(alert type, *key)``."""
        return self._alerts.dispatch_event(alert, (str(alert.get("type")), *key))

    def add_alert_callback(self, cb: AlertCallback) -> None:
        """``cb(alert_dict)`` is called from ``tick()``; if it raises, that is logged and
        ignored."""
        self._alerts.add_callback(cb)

    # ---- judging ------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._up_seq >= self._down_seq or self._oks > self._oks_at_down

    @property
    def brokers_up(self) -> int | None:
        """Brokers in state UP in the last statistics (None before the first)."""
        return self._brokers_up

    @property
    def last_status(self) -> dict[str, Any] | None:
        """The status computed by the last ``tick()`` (None before the first)."""
        return self._last_status

    def tick(self) -> list[Alert]:
        """Evaluate the rules, send new and recovery alerts (cooldown applies); return them."""
        status, conditions = self._evaluate()
        alerts = self._alerts.evaluate(conditions)
        for alert in alerts:
            alert["status"] = status["status"]
        self._last_status = status
        self._alerts.dispatch(alerts)
        return alerts

    def get_status(self) -> dict[str, Any]:
        """``{"status", "metrics", "issues", "timestamp"}`` (see the module docstring)."""
        return self._evaluate()[0]

    def _metrics(self) -> dict[str, Any]:
        ok, failed = self._window.totals()
        total = ok + failed
        try:
            memory: float | None = float(self._memory_probe())
        except Exception as exc:  # a probe must never break health reporting
            log.debug("memory probe failed: %s", exc)
            memory = None
        return {
            "avg_error_rate": failed / total if total else 0.0,
            "avg_latency_ms": self._window.avg_latency_ms(),
            "dlq_size": self._dlq_size,
            "memory_usage": memory,
            "connected": self.connected,
            "deliveries_in_window": total,
            "failures_in_window": failed,
            "window_s": self.window_s,
            "brokers_up": self._brokers_up,
            "queued_messages": self._queued,
            "circuit_state": self._circuit_state,
            "dedup_available": self._dedup_available,
            "last_connection_error": self._last_error,
        }

    def _evaluate(self) -> tuple[dict[str, Any], list[Condition]]:
        m = self._metrics()
        conditions = self._conditions(m)
        active = [c for c in conditions if c.active]
        if any(c.severity == "critical" for c in active):
            status = UNHEALTHY
        elif active:
            status = DEGRADED
        else:
            status = HEALTHY
        result = {
            "status": status,
            "metrics": m,
            "issues": [c.message for c in active],
            "timestamp": self._wall_clock(),
        }
        return result, conditions

    def _conditions(self, m: Mapping[str, Any]) -> list[Condition]:
        t = self.thresholds
        return [
            _connection(m),
            _circuit(m),
            _error_rate(m, t.error_rate_threshold, self.min_samples),
            Condition(
                "latency",
                m["avg_latency_ms"] > t.latency_threshold_ms,
                round(m["avg_latency_ms"], 3),
                t.latency_threshold_ms,
                "warning",
                f"average delivery latency {m['avg_latency_ms']:.1f} ms over the last "
                f"{m['window_s']:g}s (threshold {t.latency_threshold_ms:g} ms)",
            ),
            Condition(
                "dlq_size",
                m["dlq_size"] > t.dlq_size_threshold,
                m["dlq_size"],
                t.dlq_size_threshold,
                "warning",
                f"DLQ holds {m['dlq_size']} records (threshold {t.dlq_size_threshold})",
            ),
            _memory(m, t.memory_usage_threshold),
            Condition(
                "deduplication",
                m["dedup_available"] is False,
                False,
                True,
                "warning",
                "deduplication backend unavailable"
                if m["dedup_available"] is False
                else "deduplication backend available",
            ),
        ]


def _brokers_up(brokers: Mapping[str, Any]) -> int:
    """Distinct brokers in state UP: by node id, a bootstrap entry (node id -1, the same broker
    under another name) counted only when no broker has a node id yet."""
    ids: set[int] = set()
    bootstrap_up = False
    for b in brokers.values():
        if not isinstance(b, Mapping) or b.get("source") == "internal" or b.get("state") != "UP":
            continue
        nodeid = b.get("nodeid", -1)
        if isinstance(nodeid, int) and nodeid >= 0:
            ids.add(nodeid)
        else:
            bootstrap_up = True
    return len(ids) or int(bootstrap_up)


def _connection(m: Mapping[str, Any]) -> Condition:
    if m["connected"]:
        msg = "connected to the Kafka cluster"
    else:
        msg = "Kafka cluster unreachable"
        if m["last_connection_error"]:
            msg += f" ({m['last_connection_error']})"
    return Condition("connection", not m["connected"], m["connected"], True, "critical", msg)


def _circuit(m: Mapping[str, Any]) -> Condition:
    state = m["circuit_state"]
    severity = "critical" if state == "open" else "warning"
    return Condition(
        "circuit_breaker",
        state != "closed",
        state,
        "closed",
        severity,
        f"circuit breaker is {state}",
    )


def _error_rate(m: Mapping[str, Any], threshold: float, min_samples: int) -> Condition:
    rate = m["avg_error_rate"]
    judged = m["deliveries_in_window"] >= min_samples
    severity = "critical" if rate >= max(UNHEALTHY_ERROR_RATE, threshold) else "warning"
    return Condition(
        "error_rate",
        judged and rate > threshold,
        round(rate, 6),
        threshold,
        severity,
        f"error rate {rate:.2%} over the last {m['window_s']:g}s "
        f"({m['failures_in_window']}/{m['deliveries_in_window']} deliveries failed; "
        f"threshold {threshold:.2%})",
    )


def _memory(m: Mapping[str, Any], threshold: float) -> Condition:
    usage = m["memory_usage"]
    active = usage is not None and usage > threshold
    shown = "unknown" if usage is None else f"{usage:.1%}"
    return Condition(
        "memory_usage",
        active,
        None if usage is None else round(usage, 4),
        threshold,
        "warning",
        f"memory usage {shown} (threshold {threshold:.0%})",
    )
