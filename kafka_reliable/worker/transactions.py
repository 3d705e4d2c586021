"""Exactly-once hops: republished records and consumed offsets in one Kafka transaction.

A transaction is begun on the first produce after a commit and committed (with
``send_offsets_to_transaction``) at the worker's commit interval. Any failed record, an
abortable error or an unfinished flush aborts it; the worker then re-reads from the committed
offsets. A record whose republish failed is remembered, so after the re-read it is routed to
``.retry``/``.dlq`` inside the next transaction instead of failing the same way again.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition

from kafka_reliable.worker.records import RetryRecord
from kafka_reliable.worker.scheduler import TP

if TYPE_CHECKING:
    from kafka_reliable.worker.worker import RetryWorker

log = logging.getLogger(__name__)

#: Timeout of init/commit/abort calls.
TXN_CALL_TIMEOUT_S = 30.0
#: How long a commit waits for the transaction's records to be acknowledged.
FLUSH_TIMEOUT_S = 10.0
#: Commit attempts on retriable errors before aborting.
COMMIT_ATTEMPTS = 3
#: Pause before producing again after an abort: doubles per consecutive abort, capped.
ABORT_BACKOFF_MS, ABORT_BACKOFF_MAX_MS = 100, 5_000
#: Delivery errors that only say "your transaction was aborted", not what is wrong with a record.
_TXN_NOISE = frozenset({"_PURGE_QUEUE", "_PURGE_INFLIGHT", "_STATE", "_FENCED", "_PREV_IN_PROGRESS"})


class TransactionalCommitter:
    """Begin / commit / abort-and-rewind for a RetryWorker in ``transactional`` mode."""

    def __init__(self, *, producer: Producer, worker: RetryWorker) -> None:
        self._p = producer
        self._w = worker
        self._open = False
        self._failed = False
        self._known: dict[tuple[TP, int], tuple[str, str, bool]] = {}
        self._hold_until_ms = 0
        self._backoff_ms = ABORT_BACKOFF_MS
        self._aborts_in_a_row = 0

    def init(self) -> None:
        self._p.init_transactions(TXN_CALL_TIMEOUT_S)

    def begin(self) -> None:
        if not self._open:
            self._p.begin_transaction()
            self._open = True

    def may_produce(self, now_ms: int) -> bool:
        return now_ms >= self._hold_until_ms

    def known_failure(self, rec: RetryRecord) -> tuple[str, str, bool] | None:
        """The failure of this record's republish in an aborted transaction, if any."""
        return self._known.pop((rec.tp, rec.offset), None) if self._known else None

    def on_failed(self, kind: str, rec: RetryRecord, err: KafkaError) -> None:
        self._failed = True
        if kind == "republish" and err.name() not in _TXN_NOISE and not err.fatal():
            self._known[(rec.tp, rec.offset)] = (err.name(), err.str(), False)

    def commit(self, rewind: bool = True) -> None:
        """Commit the open transaction with the committable offsets; abort (and rewind) on failure."""
        if not self._open:
            return
        w = self._w
        remaining = self._p.flush(FLUSH_TIMEOUT_S)
        w.settle()
        if remaining or self._failed:
            self.abort(f"{remaining} records unacknowledged" if remaining else "a record failed", rewind)
            return
        offsets = w.tracker.committable()
        sent = not offsets
        for _ in range(COMMIT_ATTEMPTS):
            try:
                if not sent:
                    self._p.send_offsets_to_transaction(
                        [TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                        w.consumer.consumer_group_metadata(), TXN_CALL_TIMEOUT_S)
                    sent = True
                self._p.commit_transaction(TXN_CALL_TIMEOUT_S)
            except KafkaException as exc:
                err: KafkaError = exc.args[0]
                if err.fatal():
                    w.fail(f"transaction commit: {err}")
                    return
                if err.txn_requires_abort() or not err.retriable():
                    self.abort(f"commit failed: {err.name()}", rewind)
                    return
                continue
            self._open = False
            w.tracker.mark_committed(offsets)
            if self._aborts_in_a_row:
                log.info("transactions commit again after %d aborts", self._aborts_in_a_row)
            self._aborts_in_a_row = 0
            self._backoff_ms = ABORT_BACKOFF_MS
            return
        self.abort("commit kept failing", rewind)

    def abort(self, why: str, rewind: bool = True) -> None:
        """Abort the open transaction; re-read from the committed offsets after a short pause."""
        if not self._open:
            return
        try:
            self._p.abort_transaction(TXN_CALL_TIMEOUT_S)
        except KafkaException as exc:
            err: KafkaError = exc.args[0]
            self._w.fail(f"transaction abort: {err}")
            return
        self._open = False
        self._failed = False
        self._p.poll(0)
        self._w.drop_inflight()
        if rewind:
            self._w.rewind()
        self._hold_until_ms = int(time.time() * 1000) + self._backoff_ms
        self._aborts_in_a_row += 1
        log.warning("transaction aborted (%s); re-reading from committed offsets in %d ms",
                    why, self._backoff_ms)
        self._backoff_ms = min(self._backoff_ms * 2, ABORT_BACKOFF_MAX_MS)
