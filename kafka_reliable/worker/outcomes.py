"""What the retry worker does with its delivery reports: acknowledged records finish their
offset and are counted; a failed republish is routed to ``.retry``/``.dlq`` again; a record
whose companion topic cannot be written waits and is tried later; a fatal producer error
rebuilds the producer (its in-flight records requeued). Mixed into ``RetryWorker``."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from confluent_kafka import Producer

from kafka_reliable.client_errors import ErrorNotes
from kafka_reliable.errors import classify
from kafka_reliable.routing import Route
from kafka_reliable.scheduling import TP, OffsetTracker
from kafka_reliable.worker import records
from kafka_reliable.worker.metrics import WorkerMetrics
from kafka_reliable.worker.partitions import OwnedPartitions
from kafka_reliable.worker.records import RecordKind, RetryRecord
from kafka_reliable.worker.sender import Report
from kafka_reliable.worker.settings import WorkerConfig
from kafka_reliable.worker.transactions import TransactionalCommitter

log = logging.getLogger("kafka_reliable.worker.worker")

#: Delay before retrying a record whose companion topic could not be written.
ROUTE_RETRY_MS = 1_000

#: The ``counts`` key of an acknowledged produce of each kind.
_COUNT_NAME = {
    RecordKind.REPUBLISH: "republished",
    RecordKind.TO_RETRY: "retried",
    RecordKind.TO_DLQ: "dead_lettered",
}


def wall_ms() -> int:
    return int(time.time() * 1000)


class Outcomes:
    """Delivery reports → finished offsets, counts, routes (state is ``RetryWorker``'s)."""

    config: WorkerConfig
    metrics: WorkerMetrics
    counts: dict[str, int]
    _own: OwnedPartitions
    _gens: dict[TP, int]
    _tracker: OffsetTracker
    _tally: Counter[tuple[str, str, str]]
    _txn: TransactionalCommitter | None
    _notes: ErrorNotes
    _rebuild: bool
    _requeue_fatal: bool
    _stop: threading.Event
    sender: Any
    _route: Callable[[RetryRecord, Route], None]
    _new_producer: Callable[[], Producer]

    def _settle(self) -> None:
        """Act on every delivery report collected so far (an acknowledged republish inline)."""
        sender, gens, finish, republish = (
            self.sender,
            self._gens,
            self._tracker.finish,
            RecordKind.REPUBLISH,
        )
        while True:
            batch = sender.take_reports()
            if not batch:
                break
            done: Counter[str] = Counter()
            for report in batch:
                rec, kind, _, err = report
                if err is None and kind is republish and gens.get(rec.tp) == rec.gen:
                    finish(rec.tp, rec.offset)
                    done[rec.source_topic] += 1
                else:
                    self._settle_one(report)
            for topic, n in done.items():
                self._tally[("republished", topic, "")] += n
        if self._txn is None:
            self._count()

    def _settle_one(self, report: Report) -> None:
        rec, kind, reason, err = report
        if self._gens.get(rec.tp) != rec.gen:
            return  # revoked or rewound meanwhile: the next reading decides
        if err is None:
            self._tracker.finish(rec.tp, rec.offset)
            self._tally[(_COUNT_NAME[kind], rec.source_topic, reason or "")] += 1
        elif self._txn is not None:
            self._txn.on_failed(kind, rec, err)
        elif err.fatal() or self._requeue_fatal:
            self._rebuild = True
            self._own.wait(wall_ms(), rec)
        elif kind is RecordKind.REPUBLISH:
            self._on_republish_failed(rec, err.name(), err.str(), False)
        else:
            self._route_failed(rec, f"{err.name()}: {err.str()}")

    def _count(self) -> None:
        """Apply the outcomes tallied so far (at once; in transactional mode when committed)."""
        tally, self._tally = self._tally, Counter()
        if not tally:
            return
        self.metrics.add(self.counts, tally)
        if self._notes.last is not None and any(k[0] == "republished" for k in tally):
            self._notes.recovered("republishing")

    def _on_republish_failed(self, rec: RetryRecord, name: str, message: str, fatal: bool) -> None:
        self._notes.note(f"republish to {rec.source_topic}", name)
        self._tally[("failed", rec.source_topic, classify(name, fatal=fatal).error_class)] += 1
        route = records.failure_route(
            rec,
            error_name=name,
            error_message=message,
            fatal=fatal,
            retry_config=self.config.retry_config,
            naming=self.config.naming,
            now_ms=wall_ms(),
        )
        self._route(rec, route)

    def _route_failed(self, rec: RetryRecord, why: str) -> None:
        """A companion topic could not be written: keep the record (offset uncommitted), retry
        later."""
        self._notes.note("companion topic", why)
        self._own.wait(wall_ms() + ROUTE_RETRY_MS, rec)

    def _rebuild_producer(self) -> None:
        """After a fatal idempotent-producer error: purge, requeue what was in flight, start
        anew."""
        log.warning("producer hit a fatal error; rebuilding it (in-flight records are requeued)")
        self._requeue_fatal = True
        try:
            for report in self.sender.replace(self._new_producer):
                self._settle_one(report)
            self._count()
        finally:
            self._requeue_fatal = False
        self._rebuild = False
