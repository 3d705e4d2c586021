"""The partitions a consumer group member owns: heap, offsets, generations, commits, pausing.

Shared by the retry worker and the ReliableConsumer (docs/architecture.md).

Every assignment of a partition gets a new generation; records and acknowledgements carry
it, so one that arrives after the partition was revoked (or rewound) is ignored instead of
finishing an offset of the new owner's reading.

A resumed partition is seeked to its position: librdkafka's fetcher notices a bare resume
only at its next wake-up (~500 ms measured with librdkafka 2.16), long enough for due records
to be read late; a seek starts the fetch at once.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Collection
from typing import Any, Generic, TypeVar

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from kafka_reliable.scheduling.heap import TP, DueHeap
from kafka_reliable.scheduling.offsets import OffsetTracker

log = logging.getLogger(__name__)

T = TypeVar("T")

#: ``note(where, error)``: how an owner reports a client error (rate-limited by the caller).
Note = Callable[[str, Any], object]


def names(partitions: Collection[TopicPartition] | Collection[TP]) -> str:
    """``t[0], t[1] … (+n)``: partitions for a log line."""
    tps = [(p.topic, p.partition) if isinstance(p, TopicPartition) else p for p in partitions]
    shown = ", ".join(f"{t}[{p}]" for t, p in tps[:20])
    return shown + (f" … (+{len(tps) - 20})" if len(tps) > 20 else "")


def _parts(tps: Collection[TP]) -> list[TopicPartition]:
    return [TopicPartition(t, p) for t, p in tps]


class Owned(Generic[T]):
    """Heap + offset tracker + generations of the assigned partitions, commits, pause/resume."""

    def __init__(self, *, max_pending: int) -> None:
        self.heap: DueHeap[T] = DueHeap(max_pending=max_pending)
        self.tracker = OffsetTracker()
        #: Generation of each owned partition (the owned set is its keys).
        self.gens: dict[TP, int] = {}
        self.paused: set[TP] = set()
        self._seq = itertools.count(1)

    # ---- assignment ----------------------------------------------------------------------
    def assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Take the partitions (fresh generations) and make sure none stays paused."""
        for p in partitions:
            tp = (p.topic, p.partition)
            self.gens[tp] = next(self._seq)
            self.paused.discard(tp)
        consumer.assign(partitions)
        consumer.resume(partitions)

    def drop(self, tps: Collection[TP]) -> int:
        """Forget revoked partitions (their pending records are re-read by the next owner);
        returns how many waiting records were dropped."""
        dropped = self.heap.drop_partitions(tps)
        self.tracker.drop_partitions(tps)
        for tp in tps:
            self.gens.pop(tp, None)
            self.paused.discard(tp)
        return dropped

    def current(self, tp: TP, gen: int) -> bool:
        """Whether ``gen`` is the partition's generation (False once revoked or rewound)."""
        return self.gens.get(tp) == gen

    # ---- commits -------------------------------------------------------------------------
    def commit(
        self, consumer: Consumer, only: Collection[TP] | None, asynchronous: bool, note: Note
    ) -> None:
        """Commit the contiguous prefix of finished offsets (of ``only``, if given). An
        asynchronous commit's outcome arrives through ``committed`` (``on_commit``)."""
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
            note("commit", exc.args[0] if exc.args else exc)

    def committed(
        self, err: KafkaError | None, partitions: list[TopicPartition], note: Note
    ) -> None:
        """A commit's outcome (``on_commit``): a failed partition is offered again."""
        failed = [p for p in partitions if err is not None or p.error is not None]
        if failed:
            self.tracker.forget_committed([(p.topic, p.partition) for p in failed])
            note("commit", err if err is not None else failed[0].error)

    # ---- fetch control -------------------------------------------------------------------
    def pause(self, consumer: Consumer, tps: Collection[TP]) -> None:
        """Stop fetching these partitions (KafkaException from librdkafka passes through)."""
        if tps:
            consumer.pause(_parts(tps))
            self.paused.update(tps)

    def resume(self, consumer: Consumer, tps: Collection[TP]) -> None:
        """Fetch these partitions again, at once (resume + seek to the position)."""
        if not tps:
            return
        parts = _parts(tps)
        consumer.resume(parts)
        self.paused.difference_update(tps)
        fetch_now(consumer, parts)

    def rewind(self, consumer: Consumer) -> None:
        """Forget everything read; seek every assigned partition back to its committed offset.

        Raises KafkaException when the committed offsets cannot be read.
        """
        parts = consumer.assignment()
        self.heap.clear()
        self.tracker.drop_partitions(list(self.tracker.partitions()))
        for p in parts:
            self.gens[(p.topic, p.partition)] = next(self._seq)
        for p in consumer.committed(parts, timeout=10):
            off = p.offset if p.offset >= 0 else OFFSET_BEGINNING
            consumer.seek(TopicPartition(p.topic, p.partition, off))
        if self.paused:
            consumer.resume(parts)
            self.paused.clear()


def fetch_now(consumer: Consumer, parts: list[TopicPartition]) -> None:
    """Seek resumed partitions to their position, so librdkafka fetches them at once."""
    try:
        for p in consumer.position(parts):
            if p.offset >= 0:
                consumer.seek(p)
    except KafkaException as exc:  # revoked meanwhile: the next owner reads from the commits
        log.debug("seek after resume failed: %s", exc)
