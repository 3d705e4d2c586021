"""What the producer knows about the cluster: reachable or not, and whether librdkafka
reported a fatal error (the client must be rebuilt).

Fed by librdkafka's ``error_cb`` and ``stats_cb`` (any thread that polls); read by the send
path, the companion writer and the maintenance loop.
"""

from __future__ import annotations

import logging
import threading

from confluent_kafka import KafkaError

from kafka_reliable.client_errors import ErrorNotes, read_stats
from kafka_reliable.health import CircuitBreaker, HealthMonitor

log = logging.getLogger(__name__)


class ConnectionState:
    """Reachability of the cluster and the fatal-error flag, from client callbacks."""

    def __init__(self, health: HealthMonitor, breaker: CircuitBreaker | None) -> None:
        self._health = health
        self._breaker = breaker
        self.connected = True
        self.fatal = threading.Event()
        self._notes = ErrorNotes(logger=log)

    def on_error(self, err: KafkaError) -> None:
        self._health.record_connection_error(err.name(), err.str())
        if not err.fatal() and err.code() != KafkaError._ALL_BROKERS_DOWN:
            self._notes.note("producer", err)  # once per kind and window, not per reconnect
        if err.code() == KafkaError._ALL_BROKERS_DOWN:
            if self.connected:
                log.warning(
                    "all brokers down: failed records are spooled until the cluster answers"
                )
            self.connected = False
            if self._breaker is not None:
                self._breaker.record_unreachable()
        if err.fatal():
            log.error("fatal producer error %s: rebuilding the producer", err.name())
            self.fatal.set()

    def on_stats(self, raw: str) -> None:
        stats = read_stats(raw)
        if stats is None:
            return
        self._health.record_stats(stats)
        up = any(b.get("state") == "UP" for b in stats.get("brokers", {}).values())
        if up and not self.connected:
            log.warning("cluster answers again")
            self._notes.recovered("producer: cluster answers")
        if up and self._breaker is not None:
            self._breaker.record_reachable()
        self.connected = up
