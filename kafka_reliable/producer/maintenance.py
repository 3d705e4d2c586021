"""The producer's background threads.

- the poller serves delivery reports when the caller is not sending (while it sends, the
  send path serves them itself every few hundred records: reports handled in bulk in the
  sending thread cost far less than a second thread fighting it for the GIL), and deletes
  the spool rows of settled records in durable mode;
- the maintenance loop rebuilds the client after a fatal error, drains the spool when the
  cluster answers, keeps DLQs within their size, and feeds health and metrics once a tick.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import Producer

from kafka_reliable.dedup import Deduplicator
from kafka_reliable.health import CircuitBreaker, HealthMonitor
from kafka_reliable.producer import tracking as T
from kafka_reliable.producer.connection import ConnectionState
from kafka_reliable.producer.dlq_watch import DlqWatch
from kafka_reliable.producer.durable import DurableLedger
from kafka_reliable.producer.metrics import ProducerMetrics
from kafka_reliable.producer.spool_drainer import SpoolDrainer
from kafka_reliable.spool import Spool

log = logging.getLogger(__name__)

#: The background poller waits at most this long for a delivery report (seconds).
POLL_INTERVAL_S = 0.05
#: While the sending thread serves reports itself, the poller looks again after this long.
SENDER_SERVES_S = 0.005


@dataclass(kw_only=True)
class Upkeep:
    """What the background threads look after (all owned by the producer facade)."""

    client: Callable[[], Producer]
    rebuild: Callable[[], None]
    connection: ConnectionState
    tracker: T.MessageTracker
    spool: Spool
    drainer: SpoolDrainer
    dlq_watch: DlqWatch
    health: HealthMonitor
    dedup: Deduplicator | None = None
    breaker: CircuitBreaker | None = None
    metrics: ProducerMetrics | None = None
    ledger: DurableLedger | None = None
    #: Whether the sending thread served delivery reports within the last few milliseconds.
    sender_serving: Callable[[], bool] = lambda: False


class Maintenance:
    """Starts and stops the poller and maintenance threads."""

    def __init__(self, upkeep: Upkeep, interval_s: float = 1.0) -> None:
        self.u = upkeep
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._poll_loop, name="kafka-reliable-poller", daemon=True),
            threading.Thread(target=self._maintenance_loop, name="kafka-reliable-maintenance", daemon=True),
        ]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout_s)

    def _poll_loop(self) -> None:
        ledger = self.u.ledger
        tracker = self.u.tracker
        stop = self._stop
        serving = self.u.sender_serving
        while not stop.is_set():
            if serving():
                # The sending thread serves the reports itself (every ~1 ms while it sends): a
                # second thread taking them would wait for the GIL the sender holds.
                stop.wait(SENDER_SERVES_S)
            else:
                # Blocks in librdkafka (GIL released) until a report arrives: a status says
                # "sent" as soon as the acknowledgement is in, not at the next tick.
                self.u.client().poll(POLL_INTERVAL_S)
            tracker.fold()
            if ledger is not None:
                try:
                    ledger.flush()
                except Exception:  # noqa: BLE001 - rows stay in flight: resent later, not lost
                    log.exception("could not delete settled rows from the spool")

    def _maintenance_loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - background work must not die
                log.exception("producer maintenance failed")

    def tick(self) -> None:
        u = self.u
        if u.connection.fatal.is_set():
            u.rebuild()
        breaker_open = u.breaker is not None and u.breaker.state == "open"
        if u.connection.connected and not breaker_open and u.spool.count(include_quarantined=False):
            u.drainer.drain()
        u.drainer.flush_deletes()
        if u.dlq_watch.due() and u.connection.connected:
            u.dlq_watch.refresh()
        self.feed_health()
        u.health.tick()
        self._export_metrics()

    def feed_health(self) -> None:
        """Hand the monitor what it judges: deliveries since last time, DLQ size, backends."""
        u = self.u
        h = u.health
        h.record_deliveries(*u.tracker.take_delivery_deltas())
        h.set_dlq_size(u.dlq_watch.total)
        if u.dedup is not None:
            h.set_dedup_available(u.dedup.available)
        if u.breaker is not None:
            h.set_circuit_state(u.breaker.state)

    def _export_metrics(self) -> None:
        m = self.u.metrics
        if m is None:
            return
        status = self.u.health.last_status
        if status is not None:
            m.set_health(status["status"])
        if self.u.breaker is not None:
            m.set_circuit(self.u.breaker.state)
        for t, n in (self.u.dlq_watch.counts or {}).items():
            m.set_dlq_size(t, n)
