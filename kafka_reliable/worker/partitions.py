"""The ``.retry`` partitions a worker owns: the shared ``scheduling.Owned`` plus read-ahead.

The look-ahead bound (``max_pending``) is shared fairly: each assigned partition may hold
``max_pending / partitions`` records waiting for their due time before its fetching is paused,
so one partition read far ahead cannot keep the others' due records unread.

A record already due when it is read skips the heap: it waits in ``ready`` and is handed to
the producer in the same loop turn (a backlog drains without a push and a pop per record).
Generations, commits and pause/resume (with the seek) are ``scheduling.Owned``'s.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from typing import Any

from confluent_kafka import Consumer, Message, TopicPartition

from kafka_reliable.config import TopicNaming
from kafka_reliable.scheduling import TP, Owned, names
from kafka_reliable.worker import records
from kafka_reliable.worker.records import DUE, POISON, RetryRecord, Waiting, pack, unpack

log = logging.getLogger(__name__)

#: Resume fetching a partition once its look-ahead drops to this fraction of its share.
RESUME_FRACTION = 0.9

__all__ = ["OwnedPartitions", "names"]


class OwnedPartitions(Owned[Waiting]):
    """``Owned`` of flat waiting tuples (``records.pack``: not GC-tracked), plus ``ready``."""

    def __init__(self, *, max_pending: int) -> None:
        super().__init__(max_pending=max_pending)
        #: Records read already due, to be dispatched this loop turn (never counted in the heap).
        self.ready: list[RetryRecord] = []

    def assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        super().assigned(consumer, partitions)
        log.info("assigned %d partitions: %s", len(partitions), names(partitions))

    def drop(self, tps: Collection[TP]) -> int:
        """Forget revoked partitions: pending records are re-read by the next owner."""
        if self.ready:
            self.ready = [r for r in self.ready if r.tp not in tps]
        dropped = super().drop(tps)
        if dropped:
            log.info("dropped %d pending records of revoked partitions (re-read later)", dropped)
        return dropped

    def read(
        self,
        msgs: list[Message],
        naming: TopicNaming,
        now_ms: int,
        note: Callable[[str, Any], object],
    ) -> list[RetryRecord]:
        """Track and decode fetched records: those to republish go into ``ready`` when due at
        ``now_ms``, else into the heap by due time; the poison ones are returned (to be
        dead-lettered). Errors go to ``note``."""
        poison: list[RetryRecord] = []
        gens, track, push, decode, ready = (
            self.gens,
            self.tracker.track,
            self.heap.push,
            records.decode_fields,
            self.ready,
        )
        for m in msgs:
            if m.error() is not None:
                note("consumer", m.error())
                continue
            tp: TP = (m.topic() or "", m.partition() or 0)
            offset = m.offset() or 0
            gen = gens.get(tp)
            if gen is None or not track(tp, offset):
                continue  # revoked meanwhile, or a re-delivery
            ts_type, ts = m.timestamp()
            f = decode(
                tp,
                offset,
                gen,
                m.key(),
                m.value(),
                ts if ts_type != 0 and ts > 0 else 0,
                m.headers(),  # type: ignore[arg-type]
                naming,
                now_ms,
            )
            if f[POISON] is not None:
                poison.append(RetryRecord(*f))
            elif f[DUE] <= now_ms:
                ready.append(RetryRecord(*f))
            else:
                push(f[DUE], tp, pack(f))
        return poison

    def wait(self, due_ms: int, rec: RetryRecord) -> None:
        """Put a record (back) into the look-ahead heap until ``due_ms``."""
        self.heap.push(due_ms, rec.tp, pack(rec.fields()))

    def pop_due(self, now_ms: int, limit: int) -> list[RetryRecord]:
        """Up to ``limit`` records of the heap due at ``now_ms``, then every ready record."""
        out = [unpack(w) for _, w in self.heap.pop_due(now_ms, limit)]
        out += self.take_ready()
        return out

    def take_ready(self) -> list[RetryRecord]:
        """The records read already due (oldest first); ``ready`` is empty afterwards."""
        out, self.ready = self.ready, []
        return out

    def hold_ready(self) -> None:
        """Producing must wait (after an aborted transaction): the ready records go into the
        heap."""
        for rec in self.take_ready():
            self.wait(rec.due_ms, rec)

    def flow_control(self, consumer: Consumer) -> None:
        """Pause a partition whose look-ahead reached its share; resume it when it has room."""
        if not self.gens:
            return
        heap, paused = self.heap, self.paused
        share = max(1, heap.max_pending // len(self.gens))
        stop = [tp for tp in self.gens if tp not in paused and heap.count(tp) >= share]
        go = [tp for tp in paused if heap.count(tp) <= share * RESUME_FRACTION]
        if stop:
            self.pause(consumer, stop)
            log.debug("look-ahead share (%d) reached: fetching paused for %s", share, stop)
        if go:
            self.resume(consumer, go)
            log.debug("look-ahead has room: fetching resumed for %s", go)

    def rewind(self, consumer: Consumer) -> None:
        """Forget everything read (``ready`` too) and re-read from the committed offsets."""
        self.ready = []
        super().rewind(consumer)
