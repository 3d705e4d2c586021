"""The ReliableConsumer's engine: one thread reads the source topics and the group's retry topic.

``_poll`` reads records: a source record becomes a handler call at once; a retry record goes
into the due-time heap (``scheduling``) and becomes a call when due — never early, and a long
delay never holds up a short one. A call is begun, run by the driver (``run()``: inline;
``run_async``: on the event loop) and finished (:mod:`~kafka_reliable.consumer.steps`). A
failure is written to the group's retry topic or DLQ (``send``); its offset is finished only
when that write is acknowledged (``_settle``). ``_commit`` commits per partition the
contiguous prefix of finished offsets. Waiting is done in ``consume()``, never in a sleep, so
the group stays alive; partitions are paused (and resumed with a seek) to bound the look-ahead.
"""

from __future__ import annotations

import logging
import threading
import time

from confluent_kafka import Consumer, KafkaException, Message, Producer, TopicPartition

from kafka_reliable.consumer import settings
from kafka_reliable.consumer.assignment import Lanes
from kafka_reliable.consumer.errors import ConsumerError
from kafka_reliable.consumer.events import ClientEvents
from kafka_reliable.consumer.expected import ExpectedRetries
from kafka_reliable.consumer.invoke import Call, CallDriver, Invoker
from kafka_reliable.consumer.keyorder import KeyLane
from kafka_reliable.consumer.metrics import ConsumerMetrics
from kafka_reliable.consumer.pending import PARK, RETRY, Pending, Write
from kafka_reliable.consumer.record import Deserializer
from kafka_reliable.consumer.routes import GroupTopicNaming
from kafka_reliable.consumer.settings import ConsumerSettings
from kafka_reliable.consumer.stats import ConsumerStats
from kafka_reliable.consumer.steps import Steps, wall_ms
from kafka_reliable.consumer.writer import Writer
from kafka_reliable.health.monitor import HealthMonitor
from kafka_reliable.scheduling import TP, Owned, names
from kafka_reliable.topics import CompanionTopics

log = logging.getLogger(__name__)

__all__ = ["ConsumerError", "Engine"]

#: Longest wait inside consume(); bounds the lateness of a retry that becomes due meanwhile.
MAX_POLL_WAIT_S = 0.05


class Engine:
    """State and loop of one ``run`` / ``run_async``; ``driver`` runs the handler calls."""

    def __init__(
        self,
        *,
        s: ConsumerSettings,
        bootstrap: str,
        deserializer: Deserializer,
        naming: GroupTopicNaming,
        metrics: ConsumerMetrics,
        health: HealthMonitor,
        stats: ConsumerStats,
        stop: threading.Event,
    ) -> None:
        self.s, self.bootstrap, self.deser = s, bootstrap, deserializer
        self.naming, self.metrics, self.health, self.stats = naming, metrics, health, stats
        self.stop_event = stop
        self._keyed = s.key_ordering
        self.own: Owned[Pending] = Owned(max_pending=s.max_pending)
        self.heap, self.tracker, self.gens = self.own.heap, self.own.tracker, self.own.gens
        self.lanes = Lanes(s, naming, self.own)
        self.invoker = Invoker(
            s=s, naming=naming, stats=stats, metrics=metrics, health=health, stop=stop
        )
        self.steps = Steps(self)
        #: Bound once for the per-record path (each lookup costs on every record).
        self._retry_sources = self.lanes.retry_sources
        self._begin, self._finish = self.steps.begin_source, self.steps.finish
        self.driver: CallDriver | None = None
        self.events = ClientEvents(health=health, metrics=metrics, stop=stop, owned=self.gens)
        self.companions = CompanionTopics(settings.admin_conf(s, bootstrap), naming=naming)
        self.expected = ExpectedRetries()
        self.writer: Writer | None = None
        self._last_commit_ms = 0
        #: Set by ``shutdown``: the revoke that ``close()`` triggers waits no longer than it.
        self._deadline: float | None = None
        self.consumer: Consumer | None = None
        self.producer: Producer | None = None

    # ---- lifecycle ----------------------------------------------------------------------
    def start(self, driver: CallDriver) -> None:
        """Create the group's retry/DLQ topics (first use), the clients, and subscribe."""
        self.driver = driver
        self._run = driver.hand
        ev = self.events
        try:
            for topic in self.s.topics:
                if self.companions.partitions(topic) is None:
                    raise ConsumerError(f"topic {topic!r} does not exist")
                self.companions.ensure(topic)
                self.lanes.add_topic(topic, self.companions)
            self.producer = Producer(
                settings.producer_conf(self.s, self.bootstrap, ev.on_producer_error)
            )
            self.writer = Writer(self.producer, self.lanes.partitions, ev.note)
            self.consumer = Consumer(
                settings.consumer_conf(self.s, self.bootstrap, ev.on_consumer_error, ev.on_stats)
            )
            subscription = [*self.s.topics, *self.lanes.retry_topics()]
            self.consumer.subscribe(
                subscription,
                on_assign=self._on_assign,
                on_revoke=self._on_revoke,
                on_lost=self._on_lost,
            )
        except KafkaException as exc:
            why = exc.args[0] if exc.args else exc
            raise ConsumerError(f"consumer could not start: {why}") from exc
        log.info("consumer group %s subscribed to %s", self.s.group_id, subscription)

    def run(self, driver: CallDriver) -> None:
        """Start, step until stopped, shut down (within ``shutdown_timeout_s``)."""
        try:
            self.start(driver)
            while not self.stop_event.is_set():
                self.step()
        finally:
            self.shutdown()
        if self.events.fatal:
            raise ConsumerError(f"consumer stopped on a fatal client error: {self.events.fatal}")

    def shutdown(self) -> None:
        """Let open calls come back, finish what was handed to the producer, commit, leave the
        group: all within one ``shutdown_timeout_s``."""
        deadline = self._deadline = time.monotonic() + self.s.shutdown_timeout_s
        consumer, producer = self.consumer, self.producer
        if consumer is not None:
            try:
                consumer.pause(consumer.assignment())
                if self.driver is not None:
                    self.driver.drain(deadline, None)
                if producer is not None:
                    self._finish_inflight(deadline)
                    self._commit()
            except (KafkaException, RuntimeError) as exc:
                log.warning("consumer shutdown: %s", exc)
            consumer.close()
        self.invoker.flush_health()
        if producer is not None:
            producer.flush(max(0.0, deadline - time.monotonic()))
        self.companions.close()

    def _finish_inflight(self, deadline: float) -> None:
        assert self.producer is not None
        while self.writer is not None and self.writer.inflight > 0 and time.monotonic() < deadline:
            self.producer.poll(min(0.05, max(0.0, deadline - time.monotonic())))
            self._settle()

    # ---- the loop -----------------------------------------------------------------------
    def step(self) -> None:
        assert self.producer is not None and self.consumer is not None
        assert self.driver is not None and self.writer is not None
        self._poll()
        self.producer.poll(0)
        self._settle()
        self._dispatch()
        self.writer.rewrite_due(self.gens)
        for lane in self.lanes.check_caught_up(self.consumer):
            self._on_caught_up(lane)
        hurry = bool(self.expected) and self.expected.hurry(wall_ms(), self.gens)
        self.lanes.flow_control(self.consumer, self.gens, self.heap, hurry=hurry)
        now = wall_ms()
        if now - self._last_commit_ms >= self.s.commit_interval_ms:
            self._commit()
            self._last_commit_ms = now
        self.driver.collect()
        self.metrics.set_pending(self.pending())
        self.invoker.flush_health()

    def pending(self) -> int:
        return self.lanes.pending() + len(self.heap)

    def hand(self, call: Call) -> None:
        """Give a begun call to the driver; finish it now when it ran inline."""
        assert self.driver is not None
        if self.driver.hand(call):
            self.steps.finish(call)

    def _poll(self) -> None:
        assert self.consumer is not None and self.driver is not None
        self.driver.collect()
        if not self.driver.ready():
            return
        wait_s = MAX_POLL_WAIT_S
        nxt = self.heap.next_due_ms()
        if nxt is not None:
            wait_s = min(wait_s, max(0.0, (nxt - time.time() * 1000) / 1000))
        if (self.writer is not None and self.writer.busy) or self.lanes.hurrying:
            wait_s = min(wait_s, 0.005)
        n = self.s.max_poll_records
        if not self.s.key_ordering and not self.lanes.retry_paused:
            n = max(1, min(n, self.heap.room))  # the look-ahead never overshoots by a whole batch
        waiting, stop, on_message = self.heap.entries, self.stop_event, self._on_message
        for m in self.consumer.consume(num_messages=n, timeout=wait_s):
            on_message(m)
            if waiting and waiting[0][0] <= wall_ms():
                self._dispatch()
            if stop.is_set():
                break  # the rest is re-read by the next owner (offsets not finished)
        self.invoker.fold()  # the batch's successes counted at once

    def _on_message(self, m: Message) -> None:
        err = m.error()
        if err is not None:
            self.events.note("consumer", err)
            return
        tp: TP = (m.topic() or "", m.partition() or 0)
        gen = self.gens.get(tp)
        if gen is None:
            return
        source = self._retry_sources.get(tp[0])
        if source is not None:
            self.steps.on_retry(m, tp, gen, source)
            return
        lane = self.lanes.lane(tp) if self._keyed else None
        if lane is not None and not lane.caught_up:
            lane.backlog.append(m)
            return
        call = self._begin(m, tp, gen, lane)
        if call is not None and self._run(call):
            self._finish(call)

    def _on_caught_up(self, lane: KeyLane[Pending]) -> None:
        now = wall_ms()
        for head in lane.heads():
            self.heap.push(max(head.due_ms, now), head.tp, head)
        backlog, lane.backlog = lane.backlog, []
        for m in backlog:
            tp: TP = (m.topic() or "", m.partition() or 0)  # type: ignore[attr-defined]
            gen = self.gens.get(tp)
            if gen is None:
                continue
            call = self.steps.begin_source(m, tp, gen, lane)  # type: ignore[arg-type]
            if call is not None:
                self.hand(call)

    def _dispatch(self) -> None:
        for call in self.steps.due():
            self.hand(call)

    # ---- writes to the retry topic / DLQ ------------------------------------------------
    def _settle(self) -> None:
        if self.writer is not None:
            for w, written_at in self.writer.settle(self.gens):
                self._acked(w, written_at)

    def _acked(self, w: Write, written_at: int) -> None:
        self.tracker.finish(w.tp, w.offset)
        counts = self.stats.counts
        if w.kind == RETRY:
            if w.due_ms is not None:  # a parked record waits for its key anyway
                self.expected.written((w.topic, w.partition), written_at, w.due_ms)
            counts["retried"] += 1
            self.metrics.retried(w.source_topic)
        elif w.kind == PARK:
            counts["parked"] += 1
            self.metrics.parked(w.source_topic)
        else:
            counts["dead_lettered"] += 1
            by_topic = self.stats.dlq_by_topic
            by_topic[w.source_topic] = by_topic.get(w.source_topic, 0) + 1
            self.metrics.dead_lettered(w.source_topic, w.reason or "")
        self.events.recovered("write", "writes to the retry topic/DLQ")

    # ---- commits and rebalances ---------------------------------------------------------
    def _commit(self, only: set[TP] | None = None) -> None:
        assert self.consumer is not None
        self.own.commit(self.consumer, only, False, self.events.note)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.own.assigned(consumer, partitions)
        self.lanes.assigned(consumer, partitions, set(self.gens))
        self.stats.counts["rebalances"] += 1
        log.info("group %s: assigned %s", self.s.group_id, names(partitions))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        tps = {(p.topic, p.partition) for p in partitions}
        deadline = time.monotonic() + min(self.s.shutdown_timeout_s, 10.0)
        if self._deadline is not None:
            deadline = min(deadline, self._deadline)
        if self.driver is not None:
            self.driver.drain(deadline, tps)
        if self.producer is not None:
            self._finish_inflight(deadline)
            self._commit(only=tps)
        self._drop(tps)
        log.info("group %s: revoked %s", self.s.group_id, names(partitions))

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._drop({(p.topic, p.partition) for p in partitions})
        log.warning("group %s: lost %s (nothing committed)", self.s.group_id, names(partitions))

    def _drop(self, tps: set[TP]) -> None:
        """Forget revoked partitions: what was pending is re-read by the next owner."""
        self.own.drop(tps)
        self.lanes.drop(tps)
        self.expected.drop(tps)
        for tp in tps:
            if self.events.lag.pop(tp, None) is not None:
                self.metrics.forget_lag(*tp)
