"""Writes to the group's retry topic and DLQ, and their acknowledgements.

A write whose delivery failed is written again after ``REWRITE_DELAY_MS`` (its source offset
stays uncommitted meanwhile); a write of a partition revoked since (another generation) is
forgotten — the new owner re-reads the record.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from kafka_reliable.consumer.pending import DLQ, RETRY, Write
from kafka_reliable.routing import Route
from kafka_reliable.scheduling import TP
from kafka_reliable.sending import produce

#: Delay before writing again a record whose retry/DLQ write failed.
REWRITE_DELAY_MS = 1_000


def _wall_ms() -> int:
    return int(time.time() * 1000)


class Writer:
    """The retry/DLQ producer of one consumer; ``settle`` returns what was acknowledged."""

    def __init__(
        self,
        producer: Producer,
        partitions: Callable[[str], int],
        note_error: Callable[[str, Any], object],
    ) -> None:
        self.producer = producer
        self._partitions = partitions
        self._note_error = note_error
        self._reports: list[tuple[Write, KafkaError | None, int]] = []
        self._rewrites: list[tuple[int, Write]] = []
        self.inflight = 0

    @property
    def failing(self) -> int:
        """Writes waiting to be written again after a failed delivery."""
        return len(self._rewrites)

    @property
    def busy(self) -> bool:
        return bool(self.inflight or self._rewrites)

    def send(
        self,
        route: Route,
        tp: TP,
        offset: int,
        gen: int,
        key: bytes | None,
        value: bytes | None,
        source: str,
        kind: str | None = None,
    ) -> None:
        """Write the record at ``(tp, offset)`` where ``route`` says, to the partition numbered
        like its source partition."""
        f = route.failure
        part = f.original_partition if f.original_partition is not None else tp[1]
        target = route.target_topic
        self.write(
            Write(
                tp,
                offset,
                gen,
                target,
                part % self._partitions(target),
                key,
                value,
                route.headers,
                f.original_timestamp_ms or 0,
                kind or (RETRY if route.to_retry else DLQ),
                source,
                f.dlq_reason,
                f.next_attempt_at_ms if route.to_retry else None,
            )
        )

    def write(self, w: Write) -> None:
        try:
            produce(
                self.producer,
                w.topic,
                w.value,
                w.key,
                w.headers,
                partial(self._on_delivery, w),
                w.timestamp_ms,
                partition=w.partition,
            )
        except KafkaException as exc:
            self._reports.append((w, exc.args[0] if exc.args else None, -1))
        self.inflight += 1

    def _on_delivery(self, w: Write, err: KafkaError | None, msg: Message) -> None:
        self._reports.append((w, err, (msg.offset() or 0) if err is None else -1))

    def settle(self, owned: Mapping[TP, int]) -> list[tuple[Write, int]]:
        """``(write, offset written at)`` of every acknowledged write of a partition still owned."""
        acked: list[tuple[Write, int]] = []
        while self._reports:
            batch, self._reports = self._reports, []
            for w, err, written_at in batch:
                self.inflight = max(0, self.inflight - 1)
                if owned.get(w.tp) != w.gen:
                    continue
                if err is None:
                    acked.append((w, written_at))
                else:
                    self._note_error(f"write to {w.topic}", err)
                    self._rewrites.append((_wall_ms() + REWRITE_DELAY_MS, w))
        return acked

    def rewrite_due(self, owned: Mapping[TP, int]) -> None:
        if not self._rewrites:
            return
        now = _wall_ms()
        due = [w for t, w in self._rewrites if t <= now]
        self._rewrites = [(t, w) for t, w in self._rewrites if t > now]
        for w in due:
            if owned.get(w.tp) == w.gen:
                self.write(w)
