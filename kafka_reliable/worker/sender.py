"""The worker's producer: hands records over and collects their delivery reports.

Reports are collected by the producer's callbacks (during ``poll``/``flush``) and taken by the
worker in one batch per loop turn, so the decisions stay on the worker's thread and in order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from kafka_reliable.sending import produce
from kafka_reliable.worker.records import RecordKind, RetryRecord


@dataclass(slots=True)
class Report:
    """The outcome of one produce: ``err`` None means acknowledged."""

    kind: RecordKind
    rec: RetryRecord
    #: The DLQ reason of a ``TO_DLQ`` produce, else None.
    reason: str | None
    err: KafkaError | None


class Sender:
    """One producer (replaced after a fatal error), the reports it produced, the count in flight."""

    def __init__(self, producer: Producer) -> None:
        self.producer = producer
        self.inflight = 0
        self._reports: list[Report] = []

    def produce(self, topic: str, rec: RetryRecord, headers: list[tuple[str, bytes]], kind: RecordKind,
                reason: str | None) -> None:
        """Hand one record to the producer; a refusal other than a full queue becomes a report."""
        reports = self._reports

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            reports.append(Report(kind, rec, reason, err))

        try:
            produce(self.producer, topic, rec.value, rec.key, headers, on_delivery, rec.timestamp_ms)
        except KafkaException as exc:
            reports.append(Report(kind, rec, reason, exc.args[0]))
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
        del self._reports[: len(batch)]
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
