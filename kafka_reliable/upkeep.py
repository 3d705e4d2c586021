"""The producer's background work: serving delivery reports, draining the spool,
keeping DLQs within their max size, feeding health and metrics once a tick, and the
librdkafka client callbacks (connection state, statistics) that feed the same state.

A mixin of ``ReliableKafkaProducer`` (the state it uses is declared below); kept apart so
the send path in ``producer.py`` reads on its own.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from confluent_kafka import KafkaError, Message, Producer

from kafka_reliable import tracking as T
from kafka_reliable.config import TopicNaming
from kafka_reliable.dedup import Deduplicator
from kafka_reliable.delivery import FailedRecord, FailureRouter
from kafka_reliable.dlq import DeadLetterQueue
from kafka_reliable.health import CircuitBreaker, HealthMonitor
from kafka_reliable.metrics import ProducerMetrics
from kafka_reliable.spool import Spool
from kafka_reliable.topics import CompanionTopics

log = logging.getLogger(__name__)

#: Seconds between checks for DLQ records about to expire by retention.
DLQ_EXPIRY_CHECK_INTERVAL_S = 60.0
#: The background poller serves delivery reports this often (seconds).
POLL_INTERVAL_S = 0.01


class ProducerUpkeep:
    """Background loops of the producer (poller and maintenance threads)."""

    _producer: Producer
    _tracker: T.MessageTracker
    _router: FailureRouter
    _health: HealthMonitor
    _metrics: ProducerMetrics | None
    _breaker: CircuitBreaker | None
    _dedup: Deduplicator | None
    _stop: threading.Event
    _drain_lock: threading.Lock
    _fatal: threading.Event
    _connected: bool
    _topics_seen: dict[str, None]
    _dlq_counts: dict[str, int]
    _dlq_checked_at: float
    _expiry_checked_at: float
    _dlq_check_interval_s: float
    _trimmed: int
    _outside_alerts: dict[tuple[str, str], float]
    dlq_max_size: int
    dlq: DeadLetterQueue
    spool: Spool
    naming: TopicNaming
    companions: CompanionTopics

    if TYPE_CHECKING:

        def _new_producer(self) -> Producer: ...

    # ---- loops -------------------------------------------------------------------------

    def _poll_loop(self) -> None:
        """Serve delivery reports when the caller is not sending.

        While the caller sends, ``_produce`` serves them itself every ``POLL_EVERY`` records,
        in its own thread: reports handled in bulk there cost far less than a second thread
        waking for each one and fighting the sender for the GIL.
        """
        while not self._stop.wait(POLL_INTERVAL_S):
            self._producer.poll(0)

    def _maintenance_loop(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            try:
                self._maintain()
            except Exception:  # noqa: BLE001 - background work must not die
                log.exception("producer maintenance failed")

    def _maintain(self) -> None:
        if self._fatal.is_set():
            self._rebuild()
        breaker_open = self._breaker is not None and self._breaker.state == "open"
        if self._connected and not breaker_open and self.spool.count():
            self.drain_spool()
        if time.monotonic() - self._dlq_checked_at >= self._dlq_check_interval_s:
            self._refresh_dlq_counts()
            self._enforce_dlq_limits()
        h = self._health
        self._feed_health()
        h.tick()
        if self._metrics is not None:
            status = h.last_status
            if status is not None:
                self._metrics.set_health(status["status"])
            if self._breaker is not None:
                self._metrics.set_circuit(self._breaker.state)
            for t, n in self._dlq_counts.items():
                self._metrics.set_dlq_size(t, n)

    def _feed_health(self) -> None:
        """Hand the monitor what it judges: deliveries since last time, DLQ size, backends."""
        h = self._health
        h.record_deliveries(*self._tracker.take_delivery_deltas())
        h.set_dlq_size(sum(self._dlq_counts.values()))
        if self._dedup is not None:
            h.set_dedup_available(self._dedup.available)
        if self._breaker is not None:
            h.set_circuit_state(self._breaker.state)

    def _enforce_dlq_limits(self) -> None:
        """Trim each DLQ to ``dlq_max_size`` (oldest first); warn before retention drops records."""
        for t, n in list(self._dlq_counts.items()):
            if self.dlq_max_size and n > self.dlq_max_size:
                trimmed = self.dlq.enforce_max_size(t, self.dlq_max_size)
                self._trimmed += trimmed
                self._dlq_counts[t] = n - trimmed
                log.warning("DLQ of %s over its max size %d: trimmed the %d oldest records", t, self.dlq_max_size, trimmed)
        # Retention expiry moves in hours: look once a minute, not at every DLQ count.
        # (The size threshold is the health monitor's dlq_size rule.)
        if time.monotonic() - self._expiry_checked_at >= DLQ_EXPIRY_CHECK_INTERVAL_S:
            self._expiry_checked_at = time.monotonic()
            for t, n in list(self._dlq_counts.items()):
                if n:
                    self.dlq.check_alerts(t)

    def _rebuild(self) -> None:
        self._fatal.clear()
        old, self._producer = self._producer, self._new_producer()
        old.purge(in_queue=True, in_flight=True)
        old.flush(5.0)

    def _refresh_dlq_counts(self) -> None:
        self._dlq_checked_at = time.monotonic()
        counts: dict[str, int] = {}
        for t in list(self._topics_seen):
            dlq = self.naming.dlq_topic(t)
            n = self.companions.count(dlq)
            if n:
                counts[t] = n
        self._dlq_counts = counts

    # ---- spool --------------------------------------------------------------------------------

    def drain_spool(self, max_records: int = 5000, timeout_s: float = 30.0) -> int:
        """Re-send spooled records oldest first; return how many were delivered or routed.

        One drain at a time (the maintenance thread and a caller may both ask): a second
        caller returns 0 at once instead of sending the same rows again.
        """
        if not self._drain_lock.acquire(blocking=False):
            return 0
        try:
            return self._drain_spool(max_records, timeout_s)
        finally:
            self._drain_lock.release()

    def _drain_spool(self, max_records: int, timeout_s: float) -> int:
        recs = self.spool.oldest(max_records)
        if not recs:
            return 0
        done: list[int] = []
        lock = threading.Lock()
        for r in recs:
            def cb(err: KafkaError | None, msg: Message, _r: Any = r) -> None:
                if self._breaker is not None:
                    self._breaker.record(err is None)  # drained records are the half-open probes
                if err is None:
                    self._tracker.delivered(_r.message_id, None, retried=True)
                    self._tracker.count("drained")
                elif err.code() in (KafkaError._MSG_TIMED_OUT, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN):
                    return  # still unreachable: the row stays in the spool
                else:
                    self._tracker.count("failed")
                    self._router.submit(FailedRecord(
                        _r.message_id, _r.topic, _r.key, _r.value, list(_r.headers), _r.timestamp_ms,
                        err.name(), err.str(), err.fatal(),
                    ))
                with lock:
                    done.append(_r.row_id)

            kwargs: dict[str, Any] = {"key": r.key, "value": r.value, "headers": r.headers, "on_delivery": cb}
            if r.timestamp_ms:
                kwargs["timestamp"] = r.timestamp_ms
            while True:
                try:
                    self._producer.produce(r.topic, **kwargs)
                    break
                except BufferError:
                    self._producer.poll(0.05)
        self._producer.flush(timeout_s)
        self.spool.delete(done)
        if done:
            log.info("drained %d records from the spool (%d left)", len(done), self.spool.count())
        return len(done)

    # ---- client callbacks: connection state, routed records, outside alerts ----

    def _on_error(self, err: KafkaError) -> None:
        code = err.code()
        self._health.record_connection_error(err.name(), err.str())
        if code == KafkaError._ALL_BROKERS_DOWN:
            if self._connected:
                log.warning("all brokers down: failed records are spooled until the cluster answers")
            self._connected = False
            if self._breaker is not None:
                self._breaker.record_unreachable()
        if err.fatal():
            log.error("fatal producer error %s: rebuilding the producer", err.name())
            self._fatal.set()

    def _on_stats(self, raw: str) -> None:
        try:
            stats = json.loads(raw)
        except ValueError:
            return
        self._health.record_stats(stats)
        up = any(b.get("state") == "UP" for b in stats.get("brokers", {}).values())
        if up and not self._connected:
            log.warning("cluster answers again")
        if up and self._breaker is not None:
            self._breaker.record_reachable()
        self._connected = up

    def _on_routed(self, rec: FailedRecord, status: str, reason: str | None) -> None:
        """A failed record reached ``.retry``, ``.dlq`` or the spool (router thread)."""
        if status == T.DLQ and self._dedup is not None and rec.value is not None:
            self._dedup.release([self._dedup.key_for(rec.topic, rec.key, rec.value)])
        m = self._metrics
        if m is not None:
            if status == T.RETRYING:
                m.retried(rec.topic)
            elif status == T.DLQ:
                m.dead_lettered(rec.topic, reason or "non_retriable")
            else:
                m.spooled(rec.topic)

    def _dispatch_alert(self, alert: dict[str, Any]) -> None:
        """DLQ alerts (trimming, retention expiry) to the health callbacks, at most once per
        cooldown for each alert type and topic, so a DLQ that stays full does not flood."""
        key = (str(alert.get("type")), str(alert.get("topic")))
        now = time.monotonic()
        last = self._outside_alerts.get(key)
        if last is not None and now - last < self._health.alert_cooldown_s:
            log.debug("alert %s for %s within its cooldown: not sent again", *key)
            return
        self._outside_alerts[key] = now
        self._health.dispatch([alert])
