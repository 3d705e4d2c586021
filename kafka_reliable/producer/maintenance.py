"""The producer's background threads.

- the poller serves delivery reports when the caller is not sending (while it sends, the
  send path serves them itself every few hundred records: reports handled in bulk in the
  sending thread cost far less than a second thread fighting it for the GIL), and writes
  the write-ahead log's settlements once per tick;
- the maintenance loop rebuilds the client after a fatal error, drains the spool when the
  cluster answers, keeps DLQs within their size, and feeds health and metrics once a tick.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

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


class Poller:
    """Serves delivery reports when the caller is not sending, folds fast-path acks and writes
    the write-ahead log's settlements once per tick."""

    def __init__(
        self,
        *,
        client: Callable[[], Producer],
        tracker: T.MessageTracker,
        ledger: DurableLedger | None,
        sender_serving: Callable[[], bool],
    ) -> None:
        self._client = client
        self._tracker = tracker
        self._ledger = ledger
        self._sender_serving = sender_serving

    def run(self, stop: threading.Event) -> None:
        ledger, tracker, serving = self._ledger, self._tracker, self._sender_serving
        while not stop.is_set():
            if serving():
                # The sending thread serves the reports itself (every ~1 ms while it sends): a
                # second thread taking them would wait for the GIL the sender holds.
                stop.wait(SENDER_SERVES_S)
            else:
                # Blocks in librdkafka (GIL released) until a report arrives: a status says
                # "sent" as soon as the acknowledgement is in, not at the next tick.
                self._client().poll(POLL_INTERVAL_S)
            tracker.fold()
            if ledger is not None:
                try:
                    ledger.flush()
                except Exception:  # noqa: BLE001 - records stay unsettled: resent later, not lost
                    log.exception("could not record settlements in the write-ahead log")


class Maintenance:
    """Starts and stops the poller and the maintenance loop; one ``tick`` of upkeep a second:
    rebuild after a fatal error, drain the spool, keep DLQs within size, feed health and metrics."""

    def __init__(
        self,
        *,
        poller: Poller,
        rebuild: Callable[[], None],
        connection: ConnectionState,
        tracker: T.MessageTracker,
        spool: Spool,
        drainer: SpoolDrainer,
        dlq_watch: DlqWatch,
        health: HealthMonitor,
        dedup: Deduplicator | None = None,
        breaker: CircuitBreaker | None = None,
        metrics: ProducerMetrics | None = None,
        interval_s: float = 1.0,
    ) -> None:
        self._rebuild = rebuild
        self._connection = connection
        self._tracker = tracker
        self._spool = spool
        self._drainer = drainer
        self._dlq_watch = dlq_watch
        self._health = health
        self._dedup = dedup
        self._breaker = breaker
        self._metrics = metrics
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(
                target=poller.run, args=(self._stop,), name="kafka-reliable-poller", daemon=True
            ),
            threading.Thread(
                target=self._maintenance_loop, name="kafka-reliable-maintenance", daemon=True
            ),
        ]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout_s)

    def _maintenance_loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - background work must not die
                log.exception("producer maintenance failed")

    def tick(self) -> None:
        if self._connection.fatal.is_set():
            self._rebuild()
        breaker_open = self._breaker is not None and self._breaker.state == "open"
        if (
            self._connection.connected
            and not breaker_open
            and self._spool.count(include_quarantined=False)
        ):
            self._drainer.drain()
        self._drainer.flush_deletes()
        if self._dlq_watch.due() and self._connection.connected:
            self._dlq_watch.refresh()
        self.feed_health()
        self._health.tick()
        self._export_metrics()

    def feed_health(self) -> None:
        """Hand the monitor what it judges: deliveries since last time, DLQ size, backends."""
        h = self._health
        h.record_deliveries(*self._tracker.take_delivery_deltas())
        h.set_dlq_size(self._dlq_watch.total)
        if self._dedup is not None:
            h.set_dedup_available(self._dedup.available)
        if self._breaker is not None:
            h.set_circuit_state(self._breaker.state)

    def _export_metrics(self) -> None:
        m = self._metrics
        if m is None:
            return
        status = self._health.last_status
        if status is not None:
            m.set_health(status["status"])
        if self._breaker is not None:
            m.set_circuit(self._breaker.state)
        for t, n in (self._dlq_watch.counts or {}).items():
            m.set_dlq_size(t, n)
