"""Exactly-once hops: republished records and consumed offsets in one Kafka transaction.

A transaction is begun on the first produce after a commit and committed (with
``send_offsets_to_transaction``) at the worker's commit interval. Any failed record, an
abortable error or an unfinished flush aborts it; the worker then re-reads from the committed
offsets. A record whose republish failed is remembered, so after the re-read it is routed to
``.retry``/``.dlq`` inside the next transaction instead of failing the same way again.

The committer knows only its producer: ``commit`` and ``abort`` return a :class:`TxnResult`
and the worker acts on it (mark offsets committed, drop what was in flight and re-read, or stop).
"""

from __future__ import annotations

import enum
import logging
import time
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition

from kafka_reliable.scheduling import TP
from kafka_reliable.worker.records import RecordKind, RetryRecord

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
_TXN_NOISE = frozenset(
    {"_PURGE_QUEUE", "_PURGE_INFLIGHT", "_STATE", "_FENCED", "_PREV_IN_PROGRESS"}
)


class TxnOutcome(enum.Enum):
    """How a commit or abort ended."""

    #: No transaction was open: nothing to do.
    IDLE = "idle"
    #: Records and offsets are committed: mark the offsets committed.
    COMMITTED = "committed"
    #: Aborted: everything in flight is settled (purged); re-read from the committed offsets.
    ABORTED = "aborted"
    #: The producer cannot go on (fenced, fatal error): stop the worker.
    FATAL = "fatal"


@dataclass(frozen=True, slots=True)
class TxnResult:
    outcome: TxnOutcome
    #: Why it was aborted or fatal (for the log), else "".
    detail: str = ""


#: A republish failure remembered across an abort: (error name, error message, fatal).
KnownFailure = tuple[str, str, bool]


class TransactionalCommitter:
    """Begin / commit / abort of the worker's transactions, on one transactional producer."""

    def __init__(self, *, producer: Producer) -> None:
        self._p = producer
        self._open = False
        self._failed = False
        self._known: dict[tuple[TP, int], KnownFailure] = {}
        self._hold_until_ms = 0
        self._backoff_ms = ABORT_BACKOFF_MS
        self._aborts_in_a_row = 0

    @property
    def is_open(self) -> bool:
        return self._open

    def init(self) -> None:
        self._p.init_transactions(TXN_CALL_TIMEOUT_S)

    def begin(self) -> None:
        if not self._open:
            self._p.begin_transaction()
            self._open = True

    def may_produce(self, now_ms: int) -> bool:
        """False during the pause after an abort."""
        return now_ms >= self._hold_until_ms

    @property
    def remembers_failures(self) -> bool:
        """Whether any republish failure of an aborted transaction is remembered."""
        return bool(self._known)

    def known_failure(self, rec: RetryRecord) -> KnownFailure | None:
        """The failure of this record's republish in an aborted transaction, if any. Kept until
        a transaction commits past the record (the one routing it may be aborted too)."""
        return self._known.get((rec.tp, rec.offset)) if self._known else None

    def on_failed(self, kind: RecordKind, rec: RetryRecord, err: KafkaError) -> None:
        """A record of the open transaction failed: the transaction will be aborted."""
        self._failed = True
        if kind is RecordKind.REPUBLISH and err.name() not in _TXN_NOISE and not err.fatal():
            self._known[(rec.tp, rec.offset)] = (err.name(), err.str(), False)

    def commit(self, offsets: dict[TP, int], group_metadata: Any, *, unacked: int) -> TxnResult:
        """Commit the open transaction with ``offsets``; abort when ``unacked`` records remain
        (after the caller's flush) or a record of it failed."""
        if not self._open:
            return TxnResult(TxnOutcome.IDLE)
        if unacked or self._failed:
            return self.abort(f"{unacked} records unacknowledged" if unacked else "a record failed")
        sent = not offsets
        for _ in range(COMMIT_ATTEMPTS):
            try:
                if not sent:
                    self._p.send_offsets_to_transaction(
                        [TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                        group_metadata,
                        TXN_CALL_TIMEOUT_S,
                    )
                    sent = True
                self._p.commit_transaction(TXN_CALL_TIMEOUT_S)
            except KafkaException as exc:
                err: KafkaError = exc.args[0]
                if err.fatal():
                    return TxnResult(TxnOutcome.FATAL, f"transaction commit: {err}")
                if err.txn_requires_abort() or not err.retriable():
                    return self.abort(f"commit failed: {err.name()}")
                continue
            self._committed(offsets)
            return TxnResult(TxnOutcome.COMMITTED)
        return self.abort("commit kept failing")

    def _committed(self, offsets: dict[TP, int]) -> None:
        self._open = False
        if self._known:
            for key in [k for k in self._known if k[0] in offsets and k[1] < offsets[k[0]]]:
                del self._known[key]
        if self._aborts_in_a_row:
            log.info("transactions commit again after %d aborts", self._aborts_in_a_row)
        self._aborts_in_a_row = 0
        self._backoff_ms = ABORT_BACKOFF_MS

    def abort(self, why: str) -> TxnResult:
        """Abort the open transaction and hold produces for a short, growing pause."""
        if not self._open:
            return TxnResult(TxnOutcome.IDLE)
        try:
            self._p.abort_transaction(TXN_CALL_TIMEOUT_S)
        except KafkaException as exc:
            return TxnResult(TxnOutcome.FATAL, f"transaction abort: {exc.args[0]}")
        self._open = False
        self._failed = False
        self._p.poll(0)
        self._hold_until_ms = int(time.time() * 1000) + self._backoff_ms
        self._aborts_in_a_row += 1
        log.warning(
            "transaction aborted (%s); re-reading from committed offsets in %d ms",
            why,
            self._backoff_ms,
        )
        self._backoff_ms = min(self._backoff_ms * 2, ABORT_BACKOFF_MAX_MS)
        return TxnResult(TxnOutcome.ABORTED, why)
