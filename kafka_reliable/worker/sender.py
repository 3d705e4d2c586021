"""The worker's producer: hands records over and collects their delivery reports.

Reports are collected by the producer's callbacks (during ``poll``/``flush``) and taken by the
worker in one batch per loop turn, so the decisions stay on the worker's thread and in order.
Per record this costs one ``functools.partial`` (the callback) and one plain tuple (the report).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from kafka_reliable.sending import produce
from kafka_reliable.worker.records import RecordKind, RetryRecord

#: The outcome of one produce: ``(record, kind, DLQ reason of a TO_DLQ produce or None, error)``;
#: error None means acknowledged.
Report = tuple[RetryRecord, RecordKind, str | None, KafkaError | None]


class Sender:
    """One producer (replaced after a fatal error), the reports it produced, the count in flight."""

    def __init__(self, producer: Producer) -> None:
        self.producer = producer
        self.inflight = 0
        self._reports: list[Report] = []
        self._add = self._reports.append
        self._on_delivery = self._delivered  # bound once, not per record

    def _delivered(
        self,
        rec: RetryRecord,
        kind: RecordKind,
        reason: str | None,
        err: KafkaError | None,
        _msg: Message,
    ) -> None:
        self._add((rec, kind, reason, err))

    def produce(
        self,
        topic: str,
        rec: RetryRecord,
        headers: list[tuple[str, bytes]],
        kind: RecordKind,
        reason: str | None,
    ) -> None:
        """Hand one record to the producer; a refusal other than a full queue becomes a report."""
        try:
            produce(
                self.producer,
                topic,
                rec.value,
                rec.key,
                headers,
                functools.partial(self._on_delivery, rec, kind, reason),
                rec.timestamp_ms,
            )
        except KafkaException as exc:
            self._add((rec, kind, reason, exc.args[0]))
        self.inflight += 1

    def poll(self, timeout_s: float = 0.0) -> None:
        self.producer.poll(timeout_s)

    def flush(self, timeout_s: float) -> int:
        """Wait for every acknowledgement (bounded); return how many are still unacknowledged."""
        return int(self.producer.flush(timeout_s))

    def take_reports(self) -> list[Report]:
        """The reports collected since the last call, oldest first."""
        if not self._reports:
            return []
        batch = self._reports[:]
        self._reports.clear()
        self.inflight = max(0, self.inflight - len(batch))
        return batch

    def drop_inflight(self) -> None:
        """Forget every report and record in flight (an aborted transaction settled them all)."""
        self._reports.clear()
        self.inflight = 0

    def replace(self, make_producer: Callable[[], Producer]) -> list[Report]:
        """After a fatal error: purge the old producer, return its last reports, start a new one."""
        old = self.producer
        old.purge(in_queue=True, in_flight=True)
        old.flush(5.0)
        reports = self.take_reports()
        self.inflight = 0
        self.producer = make_producer()
        return reports
