"""Sends spooled records again, oldest first, when the cluster answers.

A drain never stops on one record: a record whose send fails for good is handed to the
companion writer (``.retry`` / ``.dlq``, or quarantine when Kafka can never take it); a
record that fails because the cluster is still unreachable stays for the next pass. Each row
is sent by one pass at a time and deleted exactly once, after its acknowledgement (or after
its companion write).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from kafka_reliable.health import CircuitBreaker
from kafka_reliable.producer import tracking as T
from kafka_reliable.record import OutgoingRecord
from kafka_reliable.sending import QueueFullTimeout, produce
from kafka_reliable.spool import Spool

log = logging.getLogger(__name__)

#: Delivery errors that mean "still unreachable": the row stays for the next pass.
UNREACHABLE = frozenset(
    {KafkaError._MSG_TIMED_OUT, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN}
)


class SpoolDrainer:
    """Drains the spool through the producer's client; one pass at a time."""

    def __init__(
        self,
        *,
        spool: Spool,
        client: Callable[[], Producer],
        tracker: T.MessageTracker,
        submit_failure: Callable[[OutgoingRecord], None],
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self._spool = spool
        self._client = client
        self._tracker = tracker
        self._submit_failure = submit_failure
        self._breaker = breaker
        self._pass_lock = threading.Lock()
        self._lock = threading.Lock()
        #: Rows sent and not yet settled (never sent twice at once).
        self._in_flight: set[int] = set()
        #: Rows acknowledged, to be deleted (in one transaction per pass).
        self._acked: list[int] = []
        self._settled = 0

    @property
    def in_flight(self) -> int:
        with self._lock:
            return len(self._in_flight)

    def drain(self, max_records: int = 5000, timeout_s: float = 30.0) -> int:
        """One pass: send up to ``max_records`` spooled rows, wait up to ``timeout_s`` for their
        outcomes; return how many left the spool (delivered or routed) during the pass.

        A second caller while a pass runs returns 0 at once instead of sending the same rows.
        """
        if not self._pass_lock.acquire(blocking=False):
            return 0
        try:
            with self._spool.drain_lock() as ours:
                # another process (a producer or `spool drain`) is sending these rows now
                return self._pass(max_records, timeout_s) if ours else 0
        finally:
            self._pass_lock.release()

    def _pass(self, max_records: int, timeout_s: float) -> int:
        deadline = time.monotonic() + timeout_s
        with self._lock:
            start = self._settled
            busy = set(self._in_flight)
        recs = [r for r in self._spool.oldest(max_records + len(busy)) if r.row_id not in busy][
            :max_records
        ]
        p = self._client()
        for r in recs:
            if time.monotonic() >= deadline:
                break
            self._send(p, r, deadline)
        while self.in_flight and time.monotonic() < deadline:
            p.poll(min(0.05, max(0.0, deadline - time.monotonic())))
        self.flush_deletes()
        with self._lock:
            n = self._settled - start
        if n:
            log.info(
                "drained %d records from the spool (%d left)",
                n,
                self._spool.count(include_quarantined=False),
            )
        return n

    def _send(self, p: Producer, r: OutgoingRecord, deadline: float) -> None:
        assert r.row_id is not None
        with self._lock:
            self._in_flight.add(r.row_id)

        def on_delivery(
            err: KafkaError | None, _msg: Message | None, _r: OutgoingRecord = r
        ) -> None:
            self._on_delivery(_r, err)

        try:
            produce(p, r.topic, r.value, r.key, r.headers, on_delivery, r.timestamp_ms, deadline)
        except QueueFullTimeout:
            with self._lock:
                self._in_flight.discard(r.row_id)
        except KafkaException as exc:  # refused at once (too large, illegal topic, …)
            self._on_delivery(r, exc.args[0] if exc.args else KafkaError(KafkaError._FAIL))
        except (TypeError, ValueError) as exc:  # a row Kafka's client cannot even take
            self._on_delivery(r, KafkaError(KafkaError._INVALID_ARG, str(exc)))

    def _on_delivery(self, r: OutgoingRecord, err: KafkaError | None) -> None:
        if self._breaker is not None:
            self._breaker.record(err is None)  # drained records are the half-open probes
        if err is None:
            self._tracker.delivered(r.message_id, None, retried=True)
            self._tracker.count("drained")
            self._settle(r, acked=True)
        elif err.code() in UNREACHABLE:
            self._release(r)  # still unreachable: the row stays for the next pass
        else:
            self._tracker.count("failed")
            self._submit_failure(
                OutgoingRecord(
                    r.message_id,
                    r.topic,
                    r.key,
                    r.value,
                    list(r.headers),
                    r.timestamp_ms,
                    row_id=r.row_id,
                    spool_reason=r.spool_reason,
                ).failed(err.name(), err.str(), err.fatal())
            )

    def on_routed(self, rec: OutgoingRecord, status: str) -> None:
        """The companion writer finished with a record that came from the spool."""
        if rec.row_id is None:
            return
        if status in (T.RETRYING, T.DLQ):
            self._settle(rec, acked=True)  # now on .retry / .dlq: the row goes
        else:
            self._release(
                rec
            )  # spooled again (row kept) or quarantined (row kept, out of the drain)

    def _settle(self, r: OutgoingRecord, *, acked: bool) -> None:
        with self._lock:
            if r.row_id in self._in_flight:
                self._in_flight.discard(r.row_id)
                if acked:
                    self._acked.append(r.row_id)
                    self._settled += 1

    def _release(self, r: OutgoingRecord) -> None:
        with self._lock:
            self._in_flight.discard(r.row_id)

    def flush_deletes(self) -> int:
        """Delete acknowledged rows (one transaction); return how many."""
        with self._lock:
            ids, self._acked = self._acked, []
        return self._spool.delete(ids) if ids else 0

    def stats(self) -> dict[str, Any]:
        return {"in_flight": self.in_flight}
