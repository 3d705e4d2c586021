"""The per-record path shared by ``send_message`` and ``send_batch``.

Order: header encoding (bad input raises before anything is claimed), dedup claim, rate
limit, circuit breaker, then the durable ledger (``durability="spool"``) and ``produce()``.
A claim exists only for a record that was handed to Kafka (or spooled): any raise on the way
releases it, so a caller told "not sent" can send the record again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial

from confluent_kafka import KafkaError, KafkaException, Producer

from kafka_reliable import headers as H
from kafka_reliable import tracing
from kafka_reliable.dedup import Deduplicator
from kafka_reliable.health import CircuitBreaker, CircuitOpenError, RateLimiter
from kafka_reliable.producer import tracking as T
from kafka_reliable.producer.batch_path import BatchSending
from kafka_reliable.producer.durable import DurableLedger
from kafka_reliable.producer.metrics import ProducerMetrics
from kafka_reliable.producer.records_in import UserHeaders, encode_headers
from kafka_reliable.producer.reports import DeliveryReports
from kafka_reliable.record import OutgoingRecord
from kafka_reliable.sending import produce
from kafka_reliable.spool import Spool

log = logging.getLogger(__name__)
_MID = H.MESSAGE_ID
#: The sending thread serves delivery reports itself every this many records,
POLL_EVERY = 512
#: and at least this often (checked every ``SERVE_CHECK_MASK + 1`` sends).
SERVE_INTERVAL_S = 0.001
SERVE_CHECK_MASK = 7
#: A sender that served reports this recently is serving them (the poller stays out).
SERVING_WINDOW_S = 0.005


class SendPath(BatchSending):
    """Admits records (dedup, limits, breaker) and hands them to librdkafka."""

    def __init__(
        self,
        *,
        client: Callable[[], Producer],
        reports: DeliveryReports,
        tracker: T.MessageTracker,
        spool: Spool,
        with_id_header: bool,
        dedup: Deduplicator | None,
        limiter: RateLimiter | None,
        breaker: CircuitBreaker | None,
        metrics: ProducerMetrics | None,
        tracing_on: bool,
        ledger: DurableLedger | None,
        submit_failure: Callable[[OutgoingRecord], None],
    ) -> None:
        self._client = client
        self._reports = reports
        self._tracker = tracker
        self._spool = spool
        self._with_id = with_id_header
        self._dedup = dedup
        self._limiter = limiter
        self._breaker = breaker
        self._metrics = metrics
        self._tracing = tracing_on
        self._ledger = ledger
        self._submit_failure = submit_failure
        self._sends = 0
        self._served_at = 0.0
        self._store = tracker.store
        self._fast_cb = reports.on_delivery_fast
        #: The current librdkafka client (replaced after a fatal error).
        self.producer = client()
        self.plain = False
        self.refresh_plain()

    def refresh_plain(self) -> None:
        """Whether a record without user headers may take the fast path: nothing to limit,
        break, trace or log, and nobody listening for each record's outcome (``plain``: and no
        dedup either; ``fast``: dedup allowed, claimed just before the produce; durable mode
        writes its ledger row first)."""
        self.fast = self._limiter is None and self._breaker is None and not self._tracing
        self.plain = self.fast and self._dedup is None
        dedup = self._dedup
        one = getattr(dedup, "check_one", None)
        if one is None and dedup is not None:
            one = lambda k: dedup.check([k])[0]  # noqa: E731 - a backend without check_one
        self._claim_one: Callable[[bytes], bool] = one or (lambda k: True)

    def _claim(self, topic: str, vb: bytes, kb: bytes | None, mid: str) -> bool:
        """Fast path with dedup: claim the record's key; a duplicate is settled here."""
        dedup = self._dedup
        assert dedup is not None
        if self._claim_one(dedup.key_for(topic, kb, vb)):
            return True
        self._duplicate(topic, mid)
        return False

    def _produce_plain(
        self,
        topic: str,
        vb: bytes,
        kb: bytes | None,
        mid: str,
        *,
        in_ledger: bool = False,
        own_claim: bool = False,
    ) -> None:
        """The fast path: one log write (durable mode), one status store, one ``produce()``, a
        report that stores ``sent``. ``own_claim``: the dedup claim taken for this call, given
        back when the log refuses the record."""
        if self._ledger is not None and not in_ledger:
            try:
                self._ledger.append_plain(topic, kb, vb, mid)
            except BaseException:
                if own_claim:
                    self._release(topic, vb, kb)
                raise
        self._store(mid, T.PENDING)
        p = self.producer
        cb = partial(self._fast_cb, mid)
        try:
            if self._with_id:
                p.produce(topic, vb, kb, headers={_MID: mid.encode()}, on_delivery=cb)
            else:
                p.produce(topic, vb, kb, on_delivery=cb)
        except BufferError:
            self._produce(topic, vb, kb, [(_MID, mid.encode())] if self._with_id else [], mid, cb)
            return
        except KafkaException as exc:
            self._refused(topic, vb, kb, [(_MID, mid.encode())] if self._with_id else [], mid, exc)
            return
        except BaseException:
            self._abandon(mid)
            raise
        self._sends += 1
        if not self._sends & SERVE_CHECK_MASK:
            self._serve(p)

    def _abandon(self, mid: str) -> None:
        """The call raised after the log write, before librdkafka took the record: the caller
        was told it was not sent, so the log must not resend it."""
        self._tracker.forget(mid)
        if self._ledger is not None:
            self._ledger.abandon(mid)

    def serving(self) -> bool:
        """Whether this path served delivery reports within the last few milliseconds (then
        the background poller leaves them to it)."""
        return time.monotonic() - self._served_at < SERVING_WINDOW_S

    def _serve(self, p: Producer) -> None:
        """Serve delivery reports in the sending thread: in bulk when sending fast, and at least
        every ``SERVE_INTERVAL_S`` when sending slowly, so a status says ``sent`` soon after the
        ack even while this thread keeps the GIL busy between sends."""
        now = time.monotonic()
        if now - self._served_at >= SERVE_INTERVAL_S or not self._sends % POLL_EVERY:
            self._served_at = now
            p.poll(0)

    # -- admission ------------------------------------------------------------------------

    def _admit(
        self,
        topic: str,
        vb: bytes,
        kb: bytes | None,
        headers: UserHeaders,
        mid: str,
        claimed: bool | None = None,
    ) -> list[tuple[str, bytes]] | None:
        """The record's headers when it may be produced now; None when it was a duplicate or
        was spooled by the open breaker. ``claimed``: the batch's dedup verdict, if checked."""
        hdrs = (
            encode_headers(headers, mid, self._with_id)
            if headers
            else ([(_MID, mid.encode())] if self._with_id else [])
        )
        dedup = self._dedup
        key = None
        if dedup is not None:
            key = dedup.key_for(topic, kb, vb)
            fresh = claimed if claimed is not None else dedup.check([key])[0]
            if not fresh:
                self._duplicate(topic, mid)
                return None
        try:
            if self._limiter is not None:
                self._limiter.acquire(1, len(vb))
            if self._breaker is not None and not self._breaker.allow():
                if self._breaker.mode == "fail_fast":
                    raise CircuitOpenError(
                        f"circuit breaker is open: record for {topic!r} not sent"
                    )
                self._spool_open_circuit(
                    OutgoingRecord(mid, topic, kb, vb, list(hdrs), int(time.time() * 1000))
                )
                return None
        except BaseException:
            if key is not None and claimed is None:  # our claim: ours to give back
                dedup.release([key])  # type: ignore[union-attr]
            raise
        return hdrs

    def _release(self, topic: str, vb: bytes, kb: bytes | None) -> None:
        """Give back the dedup claim of a record that was not sent after all."""
        if self._dedup is not None:
            self._dedup.release([self._dedup.key_for(topic, kb, vb)])

    def _duplicate(self, topic: str, mid: str) -> None:
        self._tracker.add(mid, T.PENDING)
        self._tracker.settle(mid, T.DUPLICATE)
        self._tracker.count("duplicates")
        if self._metrics is not None:
            self._metrics.duplicate(topic)

    def _spool_open_circuit(self, rec: OutgoingRecord) -> None:
        """Breaker open in spool mode: the record waits in the spool (drained when it closes)."""
        self._spool.add([rec], "circuit_open")
        self._tracker.count("spooled")
        self._tracker.add(rec.message_id or "")
        self._tracker.settle(rec.message_id, T.SPOOLED)
        if self._metrics is not None:
            self._metrics.spooled(rec.topic)

    # -- producing ------------------------------------------------------------------------

    def _produce_one(
        self,
        topic: str,
        vb: bytes,
        kb: bytes | None,
        hdrs: list[tuple[str, bytes]],
        mid: str,
        *,
        in_ledger: bool = False,
        own_claim: bool = False,
    ) -> None:
        """Hand one admitted record to librdkafka (written to the log first in durable mode;
        ``own_claim`` as in ``produce_plain``)."""
        if self._ledger is not None and not in_ledger:
            try:
                self._ledger.append(topic, kb, vb, mid, hdrs, int(time.time() * 1000))
            except BaseException:
                if own_claim:
                    self._release(topic, vb, kb)
                raise
        self._tracker.add(mid)
        if self._tracing:
            with tracing.span(
                tracing.SPAN_SEND,
                headers=hdrs,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.destination.name": topic,
                    "messaging.message.id": mid,
                },
            ):
                self._produce(topic, vb, kb, tracing.inject_current(hdrs), mid)
        else:
            self._produce(topic, vb, kb, hdrs, mid)

    def _produce(
        self,
        topic: str,
        vb: bytes,
        kb: bytes | None,
        hdrs: list[tuple[str, bytes]],
        mid: str,
        cb: Callable[..., None] | None = None,
    ) -> None:
        p = self.producer
        # Delivery reports carry neither headers nor an opaque: the id and headers ride along
        # in a partial, the one per-record allocation of the send path.
        if cb is None:
            cb = partial(self._reports.on_delivery, mid, hdrs)
        try:
            produce(p, topic, vb, kb, hdrs, cb)  # waits out back-pressure (a full local queue)
        except KafkaException as exc:
            self._refused(topic, vb, kb, hdrs, mid, exc)
            return
        except BaseException:
            self._abandon(mid)
            raise
        self._sends += 1
        if not self._sends & SERVE_CHECK_MASK:
            self._serve(p)

    def _refused(
        self,
        topic: str,
        vb: bytes,
        kb: bytes | None,
        hdrs: list[tuple[str, bytes]],
        mid: str,
        exc: KafkaException,
    ) -> None:
        """Refused at once by the client (too large, …): routed like a failed delivery."""
        err = exc.args[0] if exc.args else KafkaError(KafkaError._FAIL)
        self._tracker.count("failed")
        self._submit_failure(
            OutgoingRecord(mid, topic, kb, vb, list(hdrs), int(time.time() * 1000)).failed(
                err.name(), err.str()
            )
        )

    def send(
        self,
        topic: str,
        vb: bytes,
        kb: bytes | None,
        mid: str,
        headers: UserHeaders = None,
        claimed: bool | None = None,
        on_settle: Callable[[str, str, str | None], None] | None = None,
    ) -> None:
        """One record (``send_message``, ``send_prepared``): the fast path when nothing needs
        admitting, else headers, dedup claim, limiter and breaker first. ``claimed``: the dedup
        verdict when the caller claimed the key itself (its claim is its own to release when
        this raises); ``on_settle`` is watched before anything can settle the record."""
        if on_settle is not None:
            self._tracker.watch(mid, on_settle)
        try:
            if headers is None and self.fast:
                if claimed is False:
                    self._duplicate(topic, mid)
                elif claimed or self.plain:
                    self._produce_plain(topic, vb, kb, mid)
                elif self._claim(topic, vb, kb, mid):
                    self._produce_plain(topic, vb, kb, mid, own_claim=True)
                return
            hdrs = self._admit(topic, vb, kb, headers, mid, claimed=claimed)
            if hdrs is not None:
                self._produce_one(
                    topic, vb, kb, hdrs, mid, own_claim=claimed is None and self._dedup is not None
                )
        except BaseException:
            if on_settle is not None:
                self._tracker.unwatch(mid)
            raise
