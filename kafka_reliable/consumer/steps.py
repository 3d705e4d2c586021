"""What the engine does with one record, up to and after its handler call.

``begin_source`` / ``begin_retry`` read a record into a :class:`~.invoke.Call` (or park it
behind its key, or dead-letter it as poison); the driver runs the handler; ``finish`` acts on
the outcome: the offset is finished, or the failure goes to the group's retry topic or DLQ
(the offset is finished when that write is acknowledged). The same steps serve ``run()`` and
``run_async`` (docs/consumer.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from confluent_kafka import Message

from kafka_reliable.consumer import routes
from kafka_reliable.consumer.invoke import Call
from kafka_reliable.consumer.keyorder import KeyLane
from kafka_reliable.consumer.pending import (
    PARK,
    Pending,
    RawHeaders,
    decode_retry,
    poison_origin,
)
from kafka_reliable.consumer.record import exception_name, message_id
from kafka_reliable.consumer.routes import Origin
from kafka_reliable.consumer.writer import Writer
from kafka_reliable.errors import Classification, ErrorKind
from kafka_reliable.scheduling import TP

if TYPE_CHECKING:
    from kafka_reliable.consumer.engine import Engine

log = logging.getLogger("kafka_reliable.consumer.engine")

#: Longest stretch of handing over due retries before polling again.
DISPATCH_SLICE_S = 0.2
_POISON = Classification(routes.POISON, "PoisonRecordError", ErrorKind.NON_RETRIABLE)


def wall_ms() -> int:
    return int(time.time() * 1000)


class Steps:
    """The record steps of one engine (its state: heap, tracker, lanes, writer)."""

    def __init__(self, engine: Engine) -> None:
        self.e = engine
        self.group = engine.s.group_id

    @property
    def writer(self) -> Writer:
        """The engine's retry/DLQ writer (there once the engine started)."""
        assert self.e.writer is not None
        return self.e.writer

    # ---- source records -----------------------------------------------------------------
    def begin_source(
        self, m: Message, tp: TP, gen: int, lane: KeyLane[Pending] | None
    ) -> Call | None:
        """A handler call for a source record, or None (re-delivered, parked or poison)."""
        e = self.e
        offset = m.offset() or 0
        if not e.tracker.track(tp, offset):
            return None
        key, raw = m.key(), m.value()
        hdrs: RawHeaders = m.headers() or []  # type: ignore[assignment]
        _, ts = m.timestamp()
        if lane is not None and key is not None and lane.blocked(key):
            mid = message_id(hdrs, tp[0], tp[1], offset)
            self.park(lane, key, _origin(tp, offset, ts, mid, hdrs), tp, gen, raw)
            return None
        try:
            value = e.deser(raw, tp[0])
        except Exception as exc:  # noqa: BLE001 - any deserializer failure makes a poison record
            self.poison(
                _origin(tp, offset, ts, message_id(hdrs, tp[0], tp[1], offset), hdrs),
                tp,
                offset,
                gen,
                key,
                raw,
                f"cannot deserialize {tp[0]}[{tp[1]}]@{offset}: {exception_name(exc)}: {exc}",
            )
            return None
        return Call(
            tp[0], tp[1], offset, key, value,
            hdrs,  # our headers are left out when the handler reads them
            ts if ts > 0 else 0,
            None,  # the message id, from the headers when read
            0, raw, self.group, None, None, tp, offset, gen, lane, None, m,
        )  # fmt: skip

    def park(
        self,
        lane: KeyLane[Pending],
        key: bytes,
        origin: Origin,
        tp: TP,
        gen: int,
        raw: bytes | None,
    ) -> None:
        """Send a record of a blocked key to the retry topic, behind the record blocking it."""
        e = self.e
        assert origin.offset is not None
        ident = (tp[1], origin.offset)
        if lane.known(key, ident):  # re-read after a restart: already in the retry topic
            e.tracker.finish(tp, origin.offset)
            return
        behind = lane.blocker(key)
        lane.expect(key, ident)
        route = routes.park_route(
            origin, behind_offset=behind[1] if behind else -1, naming=e.naming, now_ms=wall_ms()
        )
        self.writer.send(route, tp, origin.offset, gen, key, raw, tp[0], kind=PARK)

    def poison(
        self,
        origin: Origin,
        tp: TP,
        offset: int,
        gen: int,
        key: bytes | None,
        raw: bytes | None,
        why: str,
    ) -> None:
        e = self.e
        e.stats.counts["poison"] += 1
        log.debug("poison record: %s", why)
        route = routes.failure_route(
            origin,
            classification=_POISON,
            error_message=why,
            retry_config=e.s.retry_config,
            naming=e.naming,
            now_ms=wall_ms(),
            poison=True,
        )
        self.writer.send(route, tp, offset, gen, key, raw, origin.topic)

    def reenter(self, call: Call) -> Call | None:
        """A source call handed back unrun (its key failed meanwhile): parked when its key is
        now blocked, else the call to hand again."""
        lane, key = call.lane, call.key
        if lane is not None and key is not None and lane.blocked(key):
            self.park(lane, key, call.origin(), call.tp, call.gen, call.raw_value)
            return None
        call.skipped = False
        return call

    # ---- retry records ------------------------------------------------------------------
    def on_retry(self, m: Message, tp: TP, gen: int, source: str) -> None:
        """A record of the group's retry topic: into the heap until due (or behind its key)."""
        e = self.e
        offset = m.offset() or 0
        e.expected.read(tp, offset)
        if not e.tracker.track(tp, offset):
            return
        ts_type, ts = m.timestamp()
        try:
            p = decode_retry(
                tp=tp,
                offset=offset,
                gen=gen,
                key=m.key(),
                value=m.value(),
                timestamp_ms=ts if ts_type and ts > 0 else 0,
                headers=headers_of(m),
                source_topic=source,
            )
        except (ValueError, UnicodeDecodeError) as exc:
            origin = poison_origin(tp=tp, offset=offset, headers=headers_of(m), source_topic=source)
            self.poison(
                origin,
                tp,
                offset,
                gen,
                m.key(),
                m.value(),
                f"unreadable retry record at {tp[0]}[{tp[1]}]@{offset}: {exc}",
            )
            return
        lane = e.lanes.lane(tp)
        if lane is None or p.key is None or p.ident is None:
            e.heap.push(p.due_ms, tp, p)
            return
        superseded, head = lane.arrived(p.key, p.ident, (p.failure.attempt, offset), p)
        if superseded is not None:
            e.tracker.finish(superseded.tp, superseded.offset)
        if head is not None:
            e.heap.push(max(head.due_ms, wall_ms()), head.tp, head)

    def due(self) -> Iterator[Call]:
        """Handler calls of the retry records due now, one at a time (the caller runs each
        before the next is taken), for at most ``DISPATCH_SLICE_S``."""
        e = self.e
        started = time.monotonic()
        while not e.stop_event.is_set() and time.monotonic() - started < DISPATCH_SLICE_S:
            now = time.time()
            due = e.heap.pop_due(int(now * 1000), 1)
            if not due:
                break
            due_ms, p = due[0]
            if not e.own.current(p.tp, p.gen):
                continue
            if now * 1000 < p.due_ms:
                e.stats.counts["early"] += 1
            late_s = max(0.0, now - due_ms / 1000)
            e.metrics.lateness(late_s)
            e.stats.lateness_ms.add(late_s * 1000)
            call = self.begin_retry(p)
            if call is not None:
                yield call

    def begin_retry(self, p: Pending) -> Call | None:
        """A handler call delivering a retry record again, or None (poison)."""
        e = self.e
        lane = e.lanes.lane(p.tp) if p.key is not None and p.ident is not None else None
        try:
            value = e.deser(p.value, p.source_topic)
        except Exception as exc:  # noqa: BLE001 - any deserializer failure makes a poison record
            self.release(lane, p)
            self.poison(
                p.origin(),
                p.tp,
                p.offset,
                p.gen,
                p.key,
                p.value,
                f"cannot deserialize {p.tp[0]}[{p.tp[1]}]@{p.offset}: {exception_name(exc)}: {exc}",
            )
            return None
        f = p.failure
        part = f.original_partition if f.original_partition is not None else p.tp[1]
        return Call(
            f.original_topic,
            part,
            f.original_offset if f.original_offset is not None else -1,
            p.key,
            value,
            p.headers,
            f.original_timestamp_ms or p.timestamp_ms,
            p.message_id,
            f.attempt,
            p.value,
            self.group,
            None if p.parked else f"{f.error_class}: {f.error_message}",
            p.due_ms,
            p.tp,
            p.offset,
            p.gen,
            lane,
            p,
            None,
        )

    def release(self, lane: KeyLane[Pending] | None, p: Pending) -> None:
        """The key's record is done: schedule the key's next one."""
        if lane is not None and p.key is not None and p.ident is not None:
            nxt = lane.done(p.key, p.ident)
            if nxt is not None:
                self.e.heap.push(max(nxt.due_ms, wall_ms()), nxt.tp, nxt)

    # ---- after the handler --------------------------------------------------------------
    def finish(self, call: Call) -> bool:
        """Act on a call's outcome; False (nothing done) when its partition was revoked since."""
        e = self.e
        if e.gens.get(call.tp) != call.gen:
            return False  # the next owner reads it again
        if call.failures is None and call.ok_s is not None:
            e.invoker.ok_s[call.topic].append(call.ok_s)  # counted with its batch (fold)
        else:
            e.invoker.account(call)
        if call.skipped:
            return True  # not finished: read again after a restart
        p, lane = call.pending, call.lane
        if call.failed is None:
            e.tracker.finish(call.tp, call.at)
            if p is not None:
                if p.failure.attempt > 0:
                    e.stats.counts["successful_retries"] += 1
                self.release(lane, p)
            return True
        route = e.invoker.route(call.origin(), call.failed)
        key = call.key
        if p is None:
            if route.to_retry and lane is not None and key is not None:
                lane.expect(key, (call.tp[1], call.at))
            self.writer.send(route, call.tp, call.at, call.gen, key, call.raw_value, call.tp[0])
            return True
        if lane is not None and route.to_retry:
            assert p.key is not None and p.ident is not None
            lane.requeue(p.key, p.ident)
        else:
            self.release(lane, p)
        self.writer.send(route, p.tp, p.offset, p.gen, p.key, p.value, p.source_topic)
        return True


def headers_of(m: Message) -> RawHeaders:
    """A record's headers as librdkafka gives them (a list of pairs; empty when none)."""
    return m.headers() or []  # type: ignore[return-value]


def _origin(tp: TP, offset: int, ts: int, mid: str, hdrs: RawHeaders) -> Origin:
    return Origin(
        topic=tp[0],
        partition=tp[1],
        offset=offset,
        timestamp_ms=ts if ts > 0 else None,
        message_id=mid,
        headers=hdrs,
    )
