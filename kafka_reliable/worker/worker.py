"""RetryWorker: consumes ``<topic>.retry``, republishes each record when due (docs/architecture.md).

One thread does everything: ``_poll`` reads ahead into the due-time heap, ``_dispatch`` hands
due records to the :class:`Sender`, ``_settle`` acts on the delivery reports, and ``_commit``
commits per partition only the contiguous prefix of acknowledged offsets (or, with
``transactional``, commits a Kafka transaction that carries the republished records and the
offsets together; the committer returns an outcome the worker acts on).
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections import Counter
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from prometheus_client import CollectorRegistry

from kafka_reliable import tracing
from kafka_reliable.client_errors import ErrorNotes
from kafka_reliable.routing import Route
from kafka_reliable.scheduling import TP
from kafka_reliable.topics import CompanionTopics
from kafka_reliable.worker import clients, records
from kafka_reliable.worker.metrics import WorkerMetrics, serve
from kafka_reliable.worker.outcomes import Outcomes, wall_ms
from kafka_reliable.worker.partitions import OwnedPartitions, names
from kafka_reliable.worker.records import RecordKind, RetryRecord
from kafka_reliable.worker.sender import Sender
from kafka_reliable.worker.settings import WorkerConfig
from kafka_reliable.worker.startup import WorkerError, prepare_topics, wait_for_cluster
from kafka_reliable.worker.transactions import (
    FLUSH_TIMEOUT_S,
    TransactionalCommitter,
    TxnOutcome,
    TxnResult,
)

log = logging.getLogger(__name__)

__all__ = ["RetryWorker", "WorkerError"]

#: Longest single wait inside poll(); bounds the lateness of newly read, already-due records.
MAX_POLL_WAIT_S = 0.05
#: Records read in one loop turn when a record is due within ``NEAR_DUE_MS``: decoding a full
#: ``poll_batch`` first would make it late.
NEAR_DUE_BATCH, NEAR_DUE_MS = 100, 20
#: Due records handed to the producer per loop turn (keeps delivery reports flowing).
DISPATCH_BATCH = 2_000
#: With nothing in flight, commit after this fraction of ``commit_interval_ms`` (1/4).
IDLE_COMMIT_FRACTION = 4


class RetryWorker(Outcomes):
    """The retry worker. ``run()`` blocks until ``stop()`` (thread-safe, signal-safe)."""

    def __init__(self, *, config: WorkerConfig, registry: CollectorRegistry | None = None) -> None:
        self.config = config
        self.metrics = WorkerMetrics(registry=registry)
        self.counts = {"republished": 0, "retried": 0, "dead_lettered": 0, "poison": 0, "failed": 0}
        self.exit_code = 0
        self._own = OwnedPartitions(max_pending=config.max_pending)
        self._heap = self._own.heap
        self._tracker = self._own.tracker
        self._gens = self._own.gens
        self._stop = threading.Event()
        self._requeue_fatal = False
        self._rebuild = False
        self._last_commit_ms = 0
        self._notes = ErrorNotes(logger=log)
        #: Outcomes not yet counted: (count name, topic, detail) -> n.
        self._tally: Counter[tuple[str, str, str]] = Counter()
        self._consumer: Consumer | None = None
        self._sender: Sender | None = None
        self._txn: TransactionalCommitter | None = None
        self._companions = CompanionTopics(
            {**clients.admin_config(config), "error_cb": self._notes.on_client_error},
            naming=config.naming,
        )
        self._metrics_server: Any = None
        self._shutdown_deadline: float | None = None

    # ---- public -------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def assignment(self) -> set[TP]:
        return set(self._gens)

    def run(self) -> int:
        """Run until ``stop()``; returns the exit code (0 after a graceful stop)."""
        try:
            self._start()
            while not self._stop.is_set():
                self._step()
        finally:
            self._shutdown()
        return self.exit_code

    # ---- lifecycle ----------------------------------------------------------------------
    def _start(self) -> None:
        cfg = self.config
        log.info("retry worker starting: %s", cfg.describe())
        if cfg.metrics_port is not None:
            self._metrics_server = serve(self.metrics.registry, cfg.metrics_port)
        try:
            metadata = wait_for_cluster(self._companions, cfg, self._notes, self._stop.is_set)
            if metadata is None:
                return  # stopped while waiting
            prepare_topics(self._companions, cfg, metadata)
            self._sender = Sender(self._new_producer())
            self._consumer = Consumer(
                clients.consumer_config(cfg, self._on_consumer_error, self._on_commit)
            )
            self._consumer.subscribe(
                cfg.subscription(),
                on_assign=self._on_assign,
                on_revoke=self._on_revoke,
                on_lost=self._on_lost,
            )
        except KafkaException as exc:
            err = exc.args[0] if exc.args else exc
            text = f"{err.name()}: {err.str()}" if isinstance(err, KafkaError) else str(err)
            raise WorkerError(f"retry worker could not start: {text}") from exc
        log.info("retry worker running: subscribed to %s", cfg.subscription())

    def _new_producer(self) -> Producer:
        producer = Producer(clients.producer_config(self.config, self._on_producer_error))
        if self.config.transactional:
            self._txn = TransactionalCommitter(producer=producer)
            self._txn.init()
        return producer

    def _shutdown(self) -> None:
        deadline = self._shutdown_deadline = time.monotonic() + self.config.shutdown_timeout_s
        sender, consumer = self._sender, self._consumer
        log.info(
            "retry worker stopping: %d pending, %d in flight",
            len(self._heap),
            sender.inflight if sender else 0,
        )
        if consumer is not None and sender is not None:
            with contextlib.suppress(KafkaException):
                consumer.pause(consumer.assignment())
            self._finish_inflight(deadline)
            self._commit(rewind=False)
            consumer.close()
        if sender is not None:
            sender.flush(max(0.0, deadline - time.monotonic()))
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
        self._companions.close()
        log.info("retry worker stopped: %s", self.counts)

    def _finish_inflight(self, deadline: float) -> None:
        """Wait (bounded) for the acknowledgements of what was handed to the producer."""
        sender = self.sender
        while sender.inflight > 0 and time.monotonic() < deadline:
            sender.poll(min(0.05, max(0.0, deadline - time.monotonic())))
            self._settle()

    @property
    def sender(self) -> Sender:
        assert self._sender is not None
        return self._sender

    @property
    def consumer(self) -> Consumer:
        assert self._consumer is not None
        return self._consumer

    # ---- the loop -----------------------------------------------------------------------
    def _step(self) -> None:
        self._poll()
        self.sender.poll(0)
        self._settle()
        self._dispatch(wall_ms())
        if self._rebuild:
            self._rebuild_producer()
        self._own.flow_control(self.consumer)
        now_ms = wall_ms()
        since_ms, interval_ms = now_ms - self._last_commit_ms, self.config.commit_interval_ms
        # all handed over is acknowledged: commit sooner (a drained backlog, a transaction)
        if since_ms >= interval_ms or (
            not self.sender.inflight and since_ms * IDLE_COMMIT_FRACTION >= interval_ms
        ):
            self._commit(asynchronous=True)
            self._last_commit_ms = now_ms
        self.metrics.pending.set(self._tracker.pending())

    def _poll(self) -> None:
        wait_s = MAX_POLL_WAIT_S
        n = max(1, min(self.config.poll_batch, self._heap.room))
        nxt = self._heap.next_due_ms()
        if nxt is not None:
            until_due_ms = nxt - time.time() * 1000
            # whole milliseconds (librdkafka's unit): a shorter wait returns at once and spins
            wait_s = min(wait_s, max(0, math.ceil(until_due_ms)) / 1000)
            if until_due_ms < NEAR_DUE_MS:
                n = min(n, NEAR_DUE_BATCH)
        if self.sender.inflight:
            wait_s = min(wait_s, 0.005)
        msgs = self.consumer.consume(num_messages=n, timeout=wait_s)
        if msgs:
            now_ms = wall_ms()
            for rec in self._own.read(msgs, self.config.naming, now_ms, self._notes.note):
                self._poison(rec, now_ms)

    def _poison(self, rec: RetryRecord, now_ms: int) -> None:
        log.debug(
            "poison record %s[%s]@%s: %s", rec.tp[0], rec.tp[1], rec.offset, rec.poison_reason
        )
        self._tally[("poison", rec.source_topic, "")] += 1
        route = records.poison_route(
            rec, retry_config=self.config.retry_config, naming=self.config.naming, now_ms=now_ms
        )
        self._route(rec, route)

    def _dispatch(self, now_ms: int) -> None:
        txn = self._txn
        if txn is not None and not txn.may_produce(now_ms):
            self._own.hold_ready()
            return
        recs = self._own.pop_due(now_ms, DISPATCH_BATCH)
        if not recs:
            return
        if not tracing.configured() and (txn is None or not txn.remembers_failures):
            if txn is not None:
                txn.begin()
            produce, kind = self.sender.produce, RecordKind.REPUBLISH
            for rec in recs:
                if rec.out_headers is None:  # poison whose DLQ write failed: try that again
                    self._poison(rec, now_ms)
                else:
                    produce(rec.source_topic, rec, list(rec.out_headers), kind, None)
        else:
            for rec in recs:
                self._dispatch_one(txn, rec, now_ms)
        self.metrics.lateness.observe_due([rec.due_ms for rec in recs], time.time())

    def _dispatch_one(
        self, txn: TransactionalCommitter | None, rec: RetryRecord, now_ms: int
    ) -> None:
        if rec.out_headers is None:
            self._poison(rec, now_ms)
            return
        if txn is not None:
            known = txn.known_failure(rec)
            if known is not None:
                self._on_republish_failed(rec, *known)
                return
            txn.begin()
        if tracing.configured():
            self._republish_traced(rec)
        else:
            self._republish(rec)

    def _republish(self, rec: RetryRecord) -> None:
        self.sender.produce(
            rec.source_topic, rec, records.republish_headers(rec), RecordKind.REPUBLISH, None
        )

    def _republish_traced(self, rec: RetryRecord) -> None:
        with tracing.span(
            tracing.SPAN_RETRY,
            headers=rec.headers,
            attributes={
                "messaging.destination.name": rec.source_topic,
                "kafka_reliable.attempt": rec.attempt,
            },
        ):
            self._republish(rec)

    def _route(self, rec: RetryRecord, route: Route) -> None:
        """Send a record to ``.retry`` or ``.dlq`` (companion topics ensured first)."""
        try:
            self._companions.ensure(route.failure.original_topic)
        except KafkaException as exc:
            self._route_failed(rec, f"ensure companion topics: {exc}")
            return
        kind = RecordKind.TO_RETRY if route.to_retry else RecordKind.TO_DLQ
        self._produce(route.target_topic, rec, route.headers, kind, route.failure.dlq_reason)

    def _produce(
        self,
        topic: str,
        rec: RetryRecord,
        headers: list[tuple[str, bytes]],
        kind: RecordKind,
        reason: str | None,
    ) -> None:
        if self._txn is not None:
            self._txn.begin()
        self.sender.produce(topic, rec, headers, kind, reason)

    # ---- commits and rebalance ---------------------------------------------------------
    def _commit(
        self, only: set[TP] | None = None, rewind: bool = True, asynchronous: bool = False
    ) -> None:
        """Commit the contiguous prefix of finished offsets (or the open transaction)."""
        if self._txn is not None:
            self._commit_transaction(self._txn, rewind)
            return
        self._own.commit(self.consumer, only, asynchronous, self._notes.note)

    def _commit_transaction(self, txn: TransactionalCommitter, rewind: bool) -> None:
        if not txn.is_open:
            return
        unacked = self.sender.flush(FLUSH_TIMEOUT_S)
        self._settle()
        offsets = self._tracker.committable()
        result = txn.commit(offsets, self.consumer.consumer_group_metadata(), unacked=unacked)
        if result.outcome is TxnOutcome.COMMITTED:
            self._tracker.mark_committed(offsets)
            self._count()
        else:
            self._after_abort(result, rewind)

    def _after_abort(self, result: TxnResult, rewind: bool) -> None:
        """An aborted transaction settled (purged) all it carried: re-read from the commits."""
        if result.outcome is TxnOutcome.FATAL:
            self.fail(result.detail)
        elif result.outcome is TxnOutcome.ABORTED:
            self._tally.clear()  # what the aborted transaction carried is done again
            self.sender.drop_inflight()
            if rewind:
                self._rewind()

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._own.assigned(consumer, partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        tps = {(p.topic, p.partition) for p in partitions}
        if self._sender is not None:
            bound = time.monotonic() + min(self.config.shutdown_timeout_s, 10.0)
            self._finish_inflight(min(bound, self._shutdown_deadline or bound))
            self._commit(only=tps, rewind=False)
        self._own.drop(tps)
        log.info("revoked %d partitions: %s", len(partitions), names(partitions))

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self._txn is not None:
            self._after_abort(self._txn.abort("partitions lost"), rewind=False)
        self._own.drop({(p.topic, p.partition) for p in partitions})
        log.warning("lost %d partitions (no commit): %s", len(partitions), names(partitions))

    def _rewind(self) -> None:
        """After an aborted transaction: re-read every partition from its committed offset."""
        try:
            self._own.rewind(self.consumer)
        except KafkaException as exc:
            self.fail(f"cannot rewind to the committed offsets: {exc}")

    def fail(self, why: str) -> None:
        """Stop with exit code 1 (fatal client error)."""
        log.error("retry worker stopping on a fatal error: %s", why)
        self.exit_code = 1
        self._stop.set()

    # ---- client errors (rate-limited log lines) ------------------------------------------
    def _on_producer_error(self, err: KafkaError) -> None:
        if err.fatal():
            if self._txn is not None:
                self.fail(f"transactional producer: {err}")
            else:
                self._rebuild = True
        self._notes.note("producer", err)

    def _on_commit(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        self._own.committed(err, partitions, self._notes.note)

    def _on_consumer_error(self, err: KafkaError) -> None:
        if err.fatal():
            self.fail(f"consumer: {err}")
        self._notes.note("consumer", err)
