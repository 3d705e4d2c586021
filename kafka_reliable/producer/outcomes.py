"""What follows when the companion writer settles a failed record: the dedup claim of a
dead-lettered record is released (sending it again later is not a duplicate), a record that
came from the spool is settled with the drainer, metrics count it, and a quarantined record
raises an alert (once per cooldown per topic)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kafka_reliable.dedup import Deduplicator
from kafka_reliable.health import HealthMonitor
from kafka_reliable.health.alerts import make_alert
from kafka_reliable.producer import tracking as T
from kafka_reliable.producer.metrics import ProducerMetrics
from kafka_reliable.record import OutgoingRecord


class RoutingOutcomes:
    """Callbacks of the companion writer (its thread) and of the DLQ tools."""

    def __init__(
        self,
        *,
        dedup: Deduplicator | None,
        metrics: ProducerMetrics | None,
        health: HealthMonitor,
        spool_path: Path,
        on_spool_routed: Callable[[OutgoingRecord, str], None],
    ) -> None:
        self._dedup = dedup
        self._metrics = metrics
        self._health = health
        self._spool_path = spool_path
        #: The spool drainer's ``on_routed`` (late-bound: the drainer needs the writer, which
        #: needs these callbacks).
        self._on_spool_routed = on_spool_routed

    def on_routed(self, rec: OutgoingRecord, status: str, reason: str | None) -> None:
        """A failed record reached ``.retry``, ``.dlq`` or the spool."""
        if status == T.DLQ and self._dedup is not None and rec.value is not None:
            self._dedup.release([self._dedup.key_for(rec.topic, rec.key, rec.value)])
        self._on_spool_routed(rec, status)
        m = self._metrics
        if m is not None:
            if status == T.RETRYING:
                m.retried(rec.topic)
            elif status == T.DLQ:
                m.dead_lettered(rec.topic, reason or "non_retriable")
            else:
                m.spooled(rec.topic)

    def on_quarantined(self, rec: OutgoingRecord, reason: str) -> None:
        self._health.raise_event(
            make_alert(
                type="spool_quarantine",
                value=1,
                threshold=0,
                severity="critical",
                timestamp=time.time(),
                message=f"a record for {rec.topic} can never be delivered; "
                f"quarantined in the spool "
                f"({self._spool_path}): {reason}",
                topic=rec.topic,
                message_id=rec.message_id,
            ),
            rec.topic,
        )

    def on_dlq_alert(self, alert: dict[str, Any]) -> None:
        """DLQ alerts (trimming, retention expiry): at most once per cooldown per type and topic."""
        self._health.raise_event(alert, str(alert.get("topic")))
