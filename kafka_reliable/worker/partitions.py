"""The ``.retry`` partitions a worker owns: read-ahead state, generations, fetch pausing.

The look-ahead bound (``max_pending``) is shared fairly: each assigned partition may hold
``max_pending / partitions`` records waiting for their due time before its fetching is paused,
so one partition read far ahead cannot keep the others' due records unread.

A record already due when it is read skips the heap: it waits in ``ready`` and is handed to
the producer in the same loop turn (a backlog drains without a push and a pop per record).

Every assignment of a partition gets a new generation; records and delivery reports carry
it, so an acknowledgement that arrives after the partition was revoked (or rewound) is
ignored instead of finishing an offset of the new owner's reading.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Collection
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from kafka_reliable.config import TopicNaming
from kafka_reliable.worker import records
from kafka_reliable.worker.records import DUE, POISON, RetryRecord, Waiting, pack, unpack
from kafka_reliable.worker.scheduler import TP, DueHeap, OffsetTracker

log = logging.getLogger(__name__)

#: Resume fetching a partition once its look-ahead drops to this fraction of its share.
RESUME_FRACTION = 0.9


def names(partitions: list[TopicPartition]) -> str:
    shown = ", ".join(f"{p.topic}[{p.partition}]" for p in partitions[:20])
    return shown + (f" … (+{len(partitions) - 20})" if len(partitions) > 20 else "")


class OwnedPartitions:
    """Heap + offset tracker + generations of the assigned partitions, and pause/resume."""

    def __init__(self, *, max_pending: int) -> None:
        #: Records waiting for their due time, as flat tuples (``records.pack``): not GC-tracked.
        self.heap: DueHeap[Waiting] = DueHeap(max_pending=max_pending)
        self.tracker = OffsetTracker()
        self.gens: dict[TP, int] = {}
        self.paused: set[TP] = set()
        #: Records read already due, to be dispatched this loop turn (never counted in the heap).
        self.ready: list[RetryRecord] = []
        self._seq = itertools.count(1)

    def assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Take the partitions (fresh generations) and make sure none stays paused."""
        for p in partitions:
            tp = (p.topic, p.partition)
            self.gens[tp] = next(self._seq)
            self.paused.discard(tp)
        consumer.assign(partitions)
        consumer.resume(partitions)
        log.info("assigned %d partitions: %s", len(partitions), names(partitions))

    def drop(self, tps: Collection[TP]) -> None:
        """Forget revoked partitions: pending records are re-read by the next owner."""
        dropped = self.heap.drop_partitions(tps)
        if self.ready:
            self.ready = [r for r in self.ready if r.tp not in tps]
        self.tracker.drop_partitions(tps)
        for tp in tps:
            self.gens.pop(tp, None)
            self.paused.discard(tp)
        if dropped:
            log.info("dropped %d pending records of revoked partitions (they will be re-read)", dropped)

    def read(self, msgs: list[Message], naming: TopicNaming, now_ms: int,
             note: Callable[[str, Any], object]) -> list[RetryRecord]:
        """Track and decode fetched records: those to republish go into ``ready`` when due at
        ``now_ms``, else into the heap by due time; the poison ones are returned (to be
        dead-lettered). Errors go to ``note``."""
        poison: list[RetryRecord] = []
        gens, track, push, decode, ready = self.gens, self.tracker.track, self.heap.push, records.decode_fields, self.ready
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
            f = decode(tp, offset, gen, m.key(), m.value(), ts if ts_type != 0 and ts > 0 else 0,
                       m.headers(), naming, now_ms)  # type: ignore[arg-type]
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
        """Producing must wait (after an aborted transaction): the ready records go into the heap."""
        for rec in self.take_ready():
            self.wait(rec.due_ms, rec)

    def commit(self, consumer: Consumer, only: set[TP] | None, asynchronous: bool,
               note: Callable[[str, Any], object]) -> None:
        """Commit the contiguous prefix of finished offsets (of ``only``, if given). The periodic
        commit is asynchronous (a synchronous one stalled the loop 1-50 ms, making records late);
        ``committed`` makes a failed one be sent again."""
        offsets = self.tracker.committable()
        if only is not None:
            offsets = {tp: o for tp, o in offsets.items() if tp in only}
        if not offsets:
            return
        parts = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        try:
            if asynchronous:
                consumer.commit(offsets=parts, asynchronous=True)
            else:
                consumer.commit(offsets=parts, asynchronous=False)
            self.tracker.mark_committed(offsets)
        except KafkaException as exc:
            note("commit", str(exc.args[0]))

    def committed(self, err: KafkaError | None, partitions: list[TopicPartition],
                  note: Callable[[str, Any], object]) -> None:
        """A commit's outcome (``on_commit``, served by poll): a failed partition is offered again."""
        failed = [p for p in partitions if err is not None or p.error is not None]
        if failed:
            self.tracker.forget_committed([(p.topic, p.partition) for p in failed])
            note("commit", err if err is not None else failed[0].error)

    def flow_control(self, consumer: Consumer) -> None:
        """Pause a partition whose look-ahead reached its share; resume it when it has room."""
        if not self.gens:
            return
        heap, paused = self.heap, self.paused
        share = max(1, heap.max_pending // len(self.gens))
        stop = [tp for tp in self.gens if tp not in paused and heap.count(tp) >= share]
        go = [tp for tp in paused if heap.count(tp) <= share * RESUME_FRACTION]
        if stop:
            consumer.pause([TopicPartition(t, p) for t, p in stop])
            paused.update(stop)
            log.debug("look-ahead share (%d) reached: fetching paused for %s", share, stop)
        if go:
            parts = [TopicPartition(t, p) for t, p in go]
            consumer.resume(parts)
            _fetch_now(consumer, parts)
            paused.difference_update(go)
            log.debug("look-ahead has room: fetching resumed for %s", go)

    def rewind(self, consumer: Consumer) -> None:
        """Forget everything read; seek every assigned partition back to its committed offset.

        Raises KafkaException when the committed offsets cannot be read.
        """
        parts = consumer.assignment()
        self.heap.clear()
        self.ready = []
        self.tracker.drop_partitions(list(self.tracker.partitions()))
        for p in parts:
            self.gens[(p.topic, p.partition)] = next(self._seq)
        for p in consumer.committed(parts, timeout=10):
            off = p.offset if p.offset >= 0 else OFFSET_BEGINNING
            consumer.seek(TopicPartition(p.topic, p.partition, off))
        if self.paused:
            consumer.resume(parts)
            self.paused.clear()


def _fetch_now(consumer: Consumer, parts: list[TopicPartition]) -> None:
    """Seek resumed partitions to their position: librdkafka's fetcher notices a bare resume only
    at its next wake-up (~500 ms measured with librdkafka 2.16), long enough for a partition's
    look-ahead to run dry and its due records to be read late; a seek starts the fetch at once."""
    try:
        for p in consumer.position(parts):
            if p.offset >= 0:
                consumer.seek(p)
    except KafkaException as exc:  # revoked meanwhile: the next owner reads from the commits
        log.debug("seek after resume failed: %s", exc)
