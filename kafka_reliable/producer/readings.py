"""What a ReliableKafkaProducer answers and the DLQ/spool calls it forwards: statuses, stats,
health, DLQ records and the spool drain (a base class of the facade; the state is the
facade's, built in ``producer.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kafka_reliable.dlq import DlqMessage
from kafka_reliable.errors import ProducerClosedError
from kafka_reliable.health import HealthMonitor

if TYPE_CHECKING:
    from kafka_reliable.dedup import Deduplicator
    from kafka_reliable.dlq import DeadLetterQueue
    from kafka_reliable.health import CircuitBreaker
    from kafka_reliable.producer import tracking as T
    from kafka_reliable.producer.connection import ConnectionState
    from kafka_reliable.producer.dlq_watch import DlqWatch
    from kafka_reliable.producer.durable import DurableLedger
    from kafka_reliable.producer.maintenance import Maintenance
    from kafka_reliable.producer.spool_drainer import SpoolDrainer
    from kafka_reliable.spool import Spool

#: Seconds ``get_stats()`` may wait for a first read of the DLQ sizes (never longer).
STATS_READ_TIMEOUT_S = 1.0


class Readings:
    """Statuses, stats, health and the DLQ/spool calls of the producer facade."""

    _closed: bool
    _last_stats: dict[str, Any]
    _tracker: T.MessageTracker
    _dlq_watch: DlqWatch
    _connection: ConnectionState
    _dedup: Deduplicator | None
    _breaker: CircuitBreaker | None
    _ledger: DurableLedger | None
    _health: HealthMonitor
    _maintenance: Maintenance
    _drainer: SpoolDrainer
    spool: Spool
    dlq: DeadLetterQueue
    durability: str

    # ---- status and stats ---------------------------------------------------------------------

    def get_message_status(self, message_id: str) -> str | None:
        """``pending``, ``sent``, ``retrying``, ``dlq``, ``spooled``, ``duplicate``; None when
        unknown."""
        return self._tracker.status(message_id)

    def get_pending_messages(self) -> list[str]:
        """Ids of records handed to Kafka whose delivery is not yet reported."""
        return self._tracker.pending()

    def get_stats(self) -> dict[str, Any]:
        """Counters and sizes; never raises and never waits long on the cluster (parts not read
        yet are reported as unknown). After ``close()``: the stats taken at close."""
        if self._closed:
            return dict(self._last_stats)
        stats = self._tracker.snapshot()
        if self._dlq_watch.counts is None and self._connection.connected:
            self._dlq_watch.refresh_now(STATS_READ_TIMEOUT_S)
        stats["dlq_stats"] = self._dlq_watch.stats(self._tracker.dlq_by_topic())
        if self._dedup is not None:
            stats["deduplication_stats"] = self._dedup.stats()
        if self._breaker is not None:
            stats["circuit_breaker"] = self._breaker.snapshot()
        spool = self.spool.summary()
        stats["spool_size"] = spool["records"]
        stats["spool_quarantined"] = spool["quarantined"]
        stats["connected"] = self._connection.connected
        stats["durability"] = self.durability
        if self._ledger is not None:
            stats["write_ahead_log"] = self._ledger.stats()
        self._last_stats = stats
        return stats

    # ---- health ---------------------------------------------------------------------------

    def get_health_status(self) -> dict[str, Any]:
        """``{"status": healthy|degraded|unhealthy, "metrics": {...}, "issues": [...]}``."""
        self._maintenance.feed_health()
        return self._health.get_status()

    def add_health_alert_callback(self, callback: Callable[[dict[str, Any]], None]) -> None:
        """``callback(alert)`` for each alert and recovery (off the send path)."""
        self._health.add_alert_callback(callback)

    @property
    def health_monitor(self) -> HealthMonitor:
        return self._health

    # ---- DLQ and spool ----------------------------------------------------------------------

    def get_dlq_messages(
        self, topic: str, limit: int | None = 100, **filters: Any
    ) -> list[DlqMessage]:
        """Records in ``<topic>.dlq`` with their error context (any DLQ dialect)."""
        return self.dlq.get_dlq_messages(topic, limit=limit, **filters)

    def clear_dlq(self, topic: str) -> int:
        """Delete every record of ``<topic>.dlq`` (``delete_records``); return the count cleared."""
        n = self.dlq.clear_dlq(topic)
        self._dlq_watch.forget(topic)
        return n

    def replay_dlq_messages(
        self, topic: str, max_messages: int | None = None, **options: Any
    ) -> int:
        """Re-publish DLQ records to their original topic; return the count replayed."""
        return self.dlq.replay_dlq_messages(topic, max_messages=max_messages, **options)

    def drain_spool(self, max_records: int = 5000, timeout_s: float = 30.0) -> int:
        """Re-send spooled records oldest first; return how many were delivered or routed."""
        if self._closed:
            raise ProducerClosedError("drain_spool() after close()")
        return self._drainer.drain(max_records, timeout_s)
