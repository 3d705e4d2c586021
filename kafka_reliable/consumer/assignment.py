"""The partitions a consumer owns: topics and their partition counts, key-order lanes, pausing.

With ``ordering="key"`` source partition ``p`` and retry partition ``p`` form a lane (the range
assignor gives both to one member, because the retry topic has the source's partition count).
A newly assigned lane first reads its retry partition up to the end it had at assignment
(``check_caught_up``); meanwhile its source partition is paused. Flow control pauses the retry
partitions while the look-ahead is full (``ordering="none"``), or the source partitions while
too many records of the group wait in retry (``ordering="key"``: the retry partitions must be
read to their end to know which keys are blocked).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Mapping

from confluent_kafka import Consumer, KafkaException, TopicPartition

from kafka_reliable.consumer.keyorder import KeyLane
from kafka_reliable.consumer.pending import Pending
from kafka_reliable.consumer.routes import GroupTopicNaming
from kafka_reliable.consumer.settings import ConsumerSettings
from kafka_reliable.errors import ConfigurationError
from kafka_reliable.scheduling import TP, DueHeap, Owned
from kafka_reliable.topics import CompanionTopics

log = logging.getLogger(__name__)

#: Resume once the look-ahead drops to this fraction of ``max_pending``.
RESUME_FRACTION = 0.9
#: How long a newly created topic may take to show its partitions in metadata.
METADATA_WAIT_S = 15.0


class Lanes:
    """Topic bookkeeping, key-order lanes and pause/resume of the assigned partitions."""

    def __init__(self, s: ConsumerSettings, naming: GroupTopicNaming, own: Owned[Pending]) -> None:
        self.s = s
        self.naming = naming
        self.own = own
        self._parts: dict[str, int] = {}
        self._source_of: dict[str, str] = {}
        self._lanes: dict[TP, KeyLane[Pending]] = {}
        self._targets: dict[TP, int | None] = {}
        self.hurrying = False

    # ---- topics -------------------------------------------------------------------------
    def add_topic(self, topic: str, companions: CompanionTopics) -> None:
        retry, dlq = self.naming.retry_topic(topic), self.naming.dlq_topic(topic)
        for name in (topic, retry, dlq):
            self._parts[name] = _wait_partitions(companions, name)
        self._source_of[retry] = topic
        if self.s.key_ordering and self._parts[retry] != self._parts[topic]:
            raise ConfigurationError(
                f"ordering='key' needs {retry} to have the partition count of {topic} "
                f"({self._parts[retry]} != {self._parts[topic]})"
            )

    def retry_topics(self) -> list[str]:
        return list(self._source_of)

    def source_of_retry(self, topic: str) -> str | None:
        return self._source_of.get(topic)

    @property
    def retry_sources(self) -> Mapping[str, str]:
        """``{retry topic: its source topic}`` (filled by ``add_topic`` before the loop runs)."""
        return self._source_of

    def partitions(self, topic: str) -> int:
        return self._parts.get(topic, 1)

    # ---- lanes --------------------------------------------------------------------------
    def lane(self, tp: TP) -> KeyLane[Pending] | None:
        """The lane of a source or retry partition (ordering="key" only)."""
        if not self._lanes:
            return None
        source = self._source_of.get(tp[0])
        return self._lanes.get((source, tp[1]) if source is not None else tp)

    def assigned(
        self, consumer: Consumer, partitions: list[TopicPartition], owned: Collection[TP]
    ) -> None:
        if not self.s.key_ordering:
            return
        for p in partitions:
            if p.topic in self._source_of:
                continue
            tp = (p.topic, p.partition)
            retry_tp = (self.naming.retry_topic(p.topic), p.partition)
            caught_up = retry_tp not in owned
            if caught_up:
                log.warning(
                    "%s[%s] assigned without %s[%s]: key order is not guaranteed for it",
                    p.topic,
                    p.partition,
                    *retry_tp,
                )
            self._lanes[tp] = KeyLane(caught_up=caught_up)
            self._targets[tp] = None
            if not caught_up:
                self.own.pause(consumer, [tp])

    def check_caught_up(self, consumer: Consumer) -> list[KeyLane[Pending]]:
        """Lanes that have just read their retry partition to its end at assignment time."""
        done = []
        for tp, lane in self._lanes.items():
            if lane.caught_up:
                continue
            rtp = TopicPartition(self.naming.retry_topic(tp[0]), tp[1])
            try:
                target = self._targets.get(tp)
                if target is None:
                    lo, hi = consumer.get_watermark_offsets(rtp, timeout=5, cached=False)
                    committed = consumer.committed([rtp], timeout=5)[0].offset
                    self._targets[tp] = target = hi
                    if (committed if committed >= 0 else lo) >= hi:
                        lane.caught_up = True
                if not lane.caught_up and consumer.position([rtp])[0].offset >= target:
                    lane.caught_up = True
            except KafkaException as exc:
                log.warning(
                    "cannot tell whether %s[%s] is read to its end yet: %s",
                    rtp.topic,
                    rtp.partition,
                    exc,
                )
                continue
            if lane.caught_up:
                log.info(
                    "%s[%s]: retry state rebuilt (%d records of %d keys waiting)",
                    tp[0],
                    tp[1],
                    lane.pending(),
                    lane.keys_blocked(),
                )
                done.append(lane)
        return done

    def pending(self) -> int:
        return sum(lane.pending() for lane in self._lanes.values())

    def drop(self, tps: Collection[TP]) -> None:
        for tp in tps:
            source = self._source_of.get(tp[0])
            key = (source, tp[1]) if source is not None else tp
            self._lanes.pop(key, None)
            self._targets.pop(key, None)

    # ---- pausing ------------------------------------------------------------------------
    def flow_control(
        self,
        consumer: Consumer,
        owned: Mapping[TP, int],
        heap: DueHeap[Pending],
        hurry: bool = False,
    ) -> None:
        """Pause or resume partitions so that the look-ahead stays bounded; with ``hurry`` (a retry
        record due and still unread) pause the source partitions so it is handed over in time."""
        sources = {tp for tp in owned if tp[0] not in self._source_of}
        want: set[TP] = set()
        if self.s.key_ordering:
            waiting = self.pending() + len(heap)
            limit = (
                self.s.max_pending
                if not self._any_source_paused()
                else self.s.max_pending * RESUME_FRACTION
            )
            for tp in sources:
                lane = self._lanes.get(tp)
                if waiting >= limit or (lane is not None and not lane.caught_up):
                    want.add(tp)
        else:
            limit = (
                self.s.max_pending
                if not self.retry_paused
                else self.s.max_pending * RESUME_FRACTION
            )
            if len(heap) >= limit:
                want = set(owned) - sources
                hurry = False  # the unread record waits behind a full look-ahead anyway
        self.hurrying = hurry
        if hurry:
            want |= sources
        paused = self.own.paused
        if want == paused:
            return
        pause, resume = want - paused, paused - want
        try:
            self.own.pause(consumer, pause)
            self.own.resume(consumer, resume)  # with a seek: fetched at once, not ~500 ms later
        except KafkaException as exc:
            log.warning("pause/resume failed: %s", exc)
            return
        log.debug(
            "paused %d partitions, resumed %d (%d waiting)", len(pause), len(resume), len(heap)
        )

    @property
    def retry_paused(self) -> bool:
        return any(tp[0] in self._source_of for tp in self.own.paused)

    def _any_source_paused(self) -> bool:
        return any(
            tp[0] not in self._source_of and tp in self._lanes and self._lanes[tp].caught_up
            for tp in self.own.paused
        )


def _wait_partitions(companions: CompanionTopics, topic: str) -> int:
    deadline = time.monotonic() + METADATA_WAIT_S
    while True:
        n = companions.partitions(topic)
        if n is not None:
            return n
        if time.monotonic() > deadline:
            raise ConfigurationError(f"topic {topic!r} has no partitions in the cluster metadata")
        time.sleep(0.2)
