"""The ReliableConsumer's loop: one thread reads the source topics and the group's retry topic.

``_poll`` reads records: a source record is handed to the handler at once; a retry record goes
into the due-time heap (the worker's ``DueHeap``) and is handed over when due — never early,
and a long delay never holds up a short one. A failure is written to the group's retry topic
or DLQ (``_send``); its offset is finished only when that write is acknowledged
(``_settle``). ``_commit`` commits per partition the contiguous prefix of finished offsets
(the worker's ``OffsetTracker``). Waiting is done in ``consume()``, never in a sleep, so the
group stays alive; the retry partitions are paused while the look-ahead is full.
"""

from __future__ import annotations

import logging
import threading
import time

from confluent_kafka import Consumer, KafkaException, Message, Producer, TopicPartition

from kafka_reliable.consumer import routes, settings
from kafka_reliable.consumer.assignment import Lanes
from kafka_reliable.consumer.events import ClientEvents
from kafka_reliable.consumer.expected import ExpectedRetries
from kafka_reliable.consumer.invoke import Handler, Invoker
from kafka_reliable.consumer.keyorder import KeyLane
from kafka_reliable.consumer.metrics import ConsumerMetrics
from kafka_reliable.consumer.pending import (
    PARK,
    RETRY,
    Pending,
    Write,
    decode_retry,
    poison_origin,
)
from kafka_reliable.consumer.record import ConsumerRecord, Deserializer, exception_name, message_id
from kafka_reliable.consumer.routes import GroupTopicNaming, Origin
from kafka_reliable.consumer.settings import ConsumerSettings
from kafka_reliable.consumer.stats import ConsumerStats
from kafka_reliable.consumer.writer import Writer
from kafka_reliable.errors import Classification, ErrorKind, KafkaReliableError
from kafka_reliable.headers import user_headers
from kafka_reliable.health.monitor import HealthMonitor
from kafka_reliable.routing import Route
from kafka_reliable.scheduling import TP, Owned, names
from kafka_reliable.topics import CompanionTopics

log = logging.getLogger(__name__)

#: Longest wait inside consume(); bounds the lateness of a retry that becomes due meanwhile.
MAX_POLL_WAIT_S = 0.05
#: Longest stretch of handing over due retries before polling again.
DISPATCH_SLICE_S = 0.2
_POISON = Classification(routes.POISON, "PoisonRecordError", ErrorKind.NON_RETRIABLE)



class ConsumerError(KafkaReliableError):
    """The consumer could not start or had to stop (the message says why)."""


def wall_ms() -> int:
    return int(time.time() * 1000)


class Engine:
    """State and steps of the loop (the facade ``ReliableConsumer`` owns one per ``run``)."""

    def __init__(self, *, s: ConsumerSettings, bootstrap: str, handler: Handler, deserializer: Deserializer,
                 naming: GroupTopicNaming, metrics: ConsumerMetrics, health: HealthMonitor,
                 stats: ConsumerStats, stop: threading.Event) -> None:
        self.s, self.bootstrap, self.handler, self.deser = s, bootstrap, handler, deserializer
        self.naming, self.metrics, self.health, self.stats = naming, metrics, health, stats
        self.stop_event = stop
        self.own: Owned[Pending] = Owned(max_pending=s.max_pending)
        self.heap, self.tracker, self.gens = self.own.heap, self.own.tracker, self.own.gens
        self.lanes = Lanes(s, naming, self.own)
        self.invoker = Invoker(s=s, handler=handler, naming=naming, stats=stats, metrics=metrics, health=health,
                               stop=stop)
        self.events = ClientEvents(health=health, metrics=metrics, stop=stop, owned=self.gens)
        self.companions = CompanionTopics(settings.admin_conf(s, bootstrap), naming=naming)
        self.expected = ExpectedRetries()
        self.writer: Writer | None = None
        self._last_commit_ms = 0
        self.consumer: Consumer | None = None
        self.producer: Producer | None = None

    # ---- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        """Create the group's retry/DLQ topics (first use), the clients, and subscribe."""
        try:
            for topic in self.s.topics:
                if self.companions.partitions(topic) is None:
                    raise ConsumerError(f"topic {topic!r} does not exist")
                self.companions.ensure(topic)
                self.lanes.add_topic(topic, self.companions)
            self.producer = Producer(settings.producer_conf(self.s, self.bootstrap, self.events.on_producer_error))
            self.writer = Writer(self.producer, self.lanes.partitions, self.events.note)
            self.consumer = Consumer(settings.consumer_conf(self.s, self.bootstrap, self.events.on_consumer_error,
                                                            self.events.on_stats))
            subscription = [*self.s.topics, *self.lanes.retry_topics()]
            self.consumer.subscribe(subscription, on_assign=self._on_assign, on_revoke=self._on_revoke,
                                    on_lost=self._on_lost)
        except KafkaException as exc:
            raise ConsumerError(f"consumer could not start: {exc.args[0] if exc.args else exc}") from exc
        log.info("consumer group %s subscribed to %s", self.s.group_id, subscription)

    def shutdown(self) -> None:
        """Finish what was handed to the producer, commit, leave the group."""
        deadline = time.monotonic() + self.s.shutdown_timeout_s
        consumer, producer = self.consumer, self.producer
        if consumer is not None:
            try:
                consumer.pause(consumer.assignment())
                if producer is not None:
                    self._finish_inflight(deadline)
                    self._commit()
            except (KafkaException, RuntimeError) as exc:
                log.warning("consumer shutdown: %s", exc)
            consumer.close()
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
        self._poll()
        self.producer.poll(0)
        self._settle()
        self._dispatch()
        assert self.writer is not None
        self.writer.rewrite_due(self.gens)
        for lane in self.lanes.check_caught_up(self.consumer):
            self._on_caught_up(lane)
        hurry = bool(self.expected) and self.expected.hurry(wall_ms(), self.gens)
        self.lanes.flow_control(self.consumer, self.gens, self.heap, hurry=hurry)
        now = wall_ms()
        if now - self._last_commit_ms >= self.s.commit_interval_ms:
            self._commit()
            self._last_commit_ms = now
        self.metrics.set_pending(self.pending())
        self.invoker.flush_health()

    def pending(self) -> int:
        return self.lanes.pending() + len(self.heap)

    def _poll(self) -> None:
        assert self.consumer is not None
        wait_s = MAX_POLL_WAIT_S
        nxt = self.heap.next_due_ms()
        if nxt is not None:
            wait_s = min(wait_s, max(0.0, (nxt - time.time() * 1000) / 1000))
        if (self.writer is not None and self.writer.busy) or self.lanes.hurrying:
            wait_s = min(wait_s, 0.005)
        n = self.s.max_poll_records
        if not self.s.key_ordering and not self.lanes.retry_paused:
            n = max(1, min(n, self.heap.room))  # the look-ahead never overshoots by a whole batch
        for m in self.consumer.consume(num_messages=n, timeout=wait_s):
            self._on_message(m)
            nxt = self.heap.next_due_ms()
            if nxt is not None and nxt <= wall_ms():
                self._dispatch()
            if self.stop_event.is_set():
                break  # the rest is re-read by the next owner (offsets not finished)

    def _on_message(self, m: Message) -> None:
        err = m.error()
        if err is not None:
            self.events.note("consumer", err)
            return
        tp: TP = (m.topic() or "", m.partition() or 0)
        gen = self.gens.get(tp)
        if gen is None:
            return
        source = self.lanes.source_of_retry(tp[0])
        if source is None:
            lane = self.lanes.lane(tp)
            if lane is not None and not lane.caught_up:
                lane.backlog.append(m)
                return
            self._on_source(m, tp, gen, lane)
        else:
            self._on_retry(m, tp, gen, source)

    # ---- source records -----------------------------------------------------------------
    def _on_source(self, m: Message, tp: TP, gen: int, lane: KeyLane[Pending] | None) -> None:
        offset = m.offset() or 0
        if not self.tracker.track(tp, offset):
            return
        key, raw = m.key(), m.value()
        hdrs = _headers(m)
        _, ts = m.timestamp()
        mid = message_id(hdrs, tp[0], tp[1], offset)
        if lane is not None and key is not None and lane.blocked(key):
            self._park(lane, key, _origin(tp, offset, ts, mid, hdrs), tp, gen, raw)
            return
        try:
            value = self.deser(raw, tp[0])
        except Exception as exc:  # noqa: BLE001 - any deserializer failure makes a poison record
            self._poison(_origin(tp, offset, ts, mid, hdrs), tp, offset, gen, key, raw,
                         f"cannot deserialize {tp[0]}[{tp[1]}]@{offset}: {exception_name(exc)}: {exc}")
            return
        rec = ConsumerRecord(tp[0], tp[1], offset, key, value, user_headers(hdrs) if hdrs else [],
                             ts if ts > 0 else 0, mid, 0, raw, self.s.group_id, (tp[0], tp[1], offset))
        failed = self.invoker.call(rec)
        if failed is None:
            self.tracker.finish(tp, offset)
            return
        route = self.invoker.route(_origin(tp, offset, ts, mid, hdrs), failed)
        if route.to_retry and lane is not None and key is not None:
            lane.expect(key, (tp[1], offset))
        self._send(route, tp, offset, gen, key, raw, tp[0])

    def _park(self, lane: KeyLane[Pending], key: bytes, origin: Origin, tp: TP, gen: int, raw: bytes | None) -> None:
        assert origin.offset is not None
        ident = (tp[1], origin.offset)
        if lane.known(key, ident):  # re-read after a restart: already in the retry topic
            self.tracker.finish(tp, origin.offset)
            return
        behind = lane.blocker(key)
        lane.expect(key, ident)
        route = routes.park_route(origin, behind_offset=behind[1] if behind else -1, naming=self.naming,
                                  now_ms=wall_ms())
        self._send(route, tp, origin.offset, gen, key, raw, tp[0], kind=PARK)

    def _poison(self, origin: Origin, tp: TP, offset: int, gen: int, key: bytes | None, raw: bytes | None,
                why: str) -> None:
        self.stats.counts["poison"] += 1
        log.debug("poison record: %s", why)
        route = routes.failure_route(origin, classification=_POISON, error_message=why,
                                     retry_config=self.s.retry_config, naming=self.naming, now_ms=wall_ms(),
                                     poison=True)
        self._send(route, tp, offset, gen, key, raw, origin.topic)

    # ---- retry records ------------------------------------------------------------------
    def _on_retry(self, m: Message, tp: TP, gen: int, source: str) -> None:
        offset = m.offset() or 0
        self.expected.read(tp, offset)
        if not self.tracker.track(tp, offset):
            return
        ts_type, ts = m.timestamp()
        try:
            p = decode_retry(tp=tp, offset=offset, gen=gen, key=m.key(), value=m.value(),
                             timestamp_ms=ts if ts_type and ts > 0 else 0, headers=_headers(m), source_topic=source)
        except (ValueError, UnicodeDecodeError) as exc:
            origin = poison_origin(tp=tp, offset=offset, headers=_headers(m), source_topic=source)
            self._poison(origin, tp, offset, gen, m.key(), m.value(),
                         f"unreadable retry record at {tp[0]}[{tp[1]}]@{offset}: {exc}")
            return
        lane = self.lanes.lane(tp)
        if lane is None or p.key is None or p.ident is None:
            self.heap.push(p.due_ms, tp, p)
            return
        superseded, head = lane.arrived(p.key, p.ident, (p.failure.attempt, offset), p)
        if superseded is not None:
            self.tracker.finish(superseded.tp, superseded.offset)
        if head is not None:
            self.heap.push(max(head.due_ms, wall_ms()), head.tp, head)

    def _on_caught_up(self, lane: KeyLane[Pending]) -> None:
        now = wall_ms()
        for head in lane.heads():
            self.heap.push(max(head.due_ms, now), head.tp, head)
        backlog, lane.backlog = lane.backlog, []
        for m in backlog:
            tp: TP = (m.topic() or "", m.partition() or 0)  # type: ignore[attr-defined]
            gen = self.gens.get(tp)
            if gen is not None:
                self._on_source(m, tp, gen, lane)  # type: ignore[arg-type]

    def _dispatch(self) -> None:
        started = time.monotonic()
        while not self.stop_event.is_set() and time.monotonic() - started < DISPATCH_SLICE_S:
            now = time.time()
            due = self.heap.pop_due(int(now * 1000), 1)
            if not due:
                return
            due_ms, p = due[0]
            if self.gens.get(p.tp) != p.gen:
                continue
            if now * 1000 < p.due_ms:
                self.stats.counts["early"] += 1
            late_s = max(0.0, now - due_ms / 1000)
            self.metrics.lateness(late_s)
            self.stats.lateness_ms.add(late_s * 1000)
            self._run_retry(p)

    def _run_retry(self, p: Pending) -> None:
        origin = p.origin()
        lane = self.lanes.lane(p.tp) if p.key is not None and p.ident is not None else None
        try:
            value = self.deser(p.value, p.source_topic)
        except Exception as exc:  # noqa: BLE001 - any deserializer failure makes a poison record
            self._release(lane, p)
            self._poison(origin, p.tp, p.offset, p.gen, p.key, p.value,
                         f"cannot deserialize {p.tp[0]}[{p.tp[1]}]@{p.offset}: {exception_name(exc)}: {exc}")
            return
        f = p.failure
        rec = ConsumerRecord(origin.topic, origin.partition, f.original_offset if f.original_offset is not None else -1,
                             p.key, value, user_headers(p.headers), f.original_timestamp_ms or p.timestamp_ms,
                             p.message_id, f.attempt, p.value, self.s.group_id, (p.tp[0], p.tp[1], p.offset),
                             None if p.parked else f"{f.error_class}: {f.error_message}", p.due_ms)
        failed = self.invoker.call(rec)
        if failed is None:
            self.tracker.finish(p.tp, p.offset)
            if f.attempt > 0:
                self.stats.counts["successful_retries"] += 1
            self._release(lane, p)
            return
        route = self.invoker.route(origin, failed)
        if lane is not None and route.to_retry:
            assert p.key is not None and p.ident is not None
            lane.requeue(p.key, p.ident)
        else:
            self._release(lane, p)
        self._send(route, p.tp, p.offset, p.gen, p.key, p.value, p.source_topic)

    def _release(self, lane: KeyLane[Pending] | None, p: Pending) -> None:
        if lane is not None and p.key is not None and p.ident is not None:
            nxt = lane.done(p.key, p.ident)
            if nxt is not None:
                self.heap.push(max(nxt.due_ms, wall_ms()), nxt.tp, nxt)

    # ---- writes to the retry topic / DLQ ------------------------------------------------
    def _send(self, route: Route, tp: TP, offset: int, gen: int, key: bytes | None, value: bytes | None,
              source: str, kind: str | None = None) -> None:
        assert self.writer is not None
        self.writer.send(route, tp, offset, gen, key, value, source, kind)

    def _settle(self) -> None:
        if self.writer is not None:
            for w, written_at in self.writer.settle(self.gens):
                self._acked(w, written_at)

    def _acked(self, w: Write, written_at: int) -> None:
        self.tracker.finish(w.tp, w.offset)
        if w.kind == RETRY and w.due_ms is not None:  # a parked record waits for its key anyway
            self.expected.written((w.topic, w.partition), written_at, w.due_ms)
        if w.kind == RETRY:
            self.stats.counts["retried"] += 1
            self.metrics.retried(w.source_topic)
        elif w.kind == PARK:
            self.stats.counts["parked"] += 1
            self.metrics.parked(w.source_topic)
        else:
            self.stats.counts["dead_lettered"] += 1
            self.stats.dlq_by_topic[w.source_topic] = self.stats.dlq_by_topic.get(w.source_topic, 0) + 1
            self.metrics.dead_lettered(w.source_topic, w.reason or "")
        self.events.recovered("write", "writes to the retry topic/DLQ succeed again")

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
        if self.producer is not None:
            self._finish_inflight(time.monotonic() + min(self.s.shutdown_timeout_s, 10.0))
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


def _origin(tp: TP, offset: int, ts: int, mid: str, hdrs: list[tuple[str, bytes | None]]) -> Origin:
    return Origin(topic=tp[0], partition=tp[1], offset=offset, timestamp_ms=ts if ts > 0 else None,
                  message_id=mid, headers=hdrs)


def _headers(m: Message) -> list[tuple[str, bytes | None]]:
    return m.headers() or []  # type: ignore[return-value]
