"""The batch half of the send path: one log write per ``send_batch`` call, the admitted
records produced, and a bounded wait until each is delivered or routed (a base class of
``SendPath``, whose state it uses)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from kafka_reliable.errors import SpoolFullError
from kafka_reliable.producer import tracking as T
from kafka_reliable.producer.records_in import UserHeaders

if TYPE_CHECKING:
    from confluent_kafka import Producer

    from kafka_reliable.producer.durable import DurableLedger

log = logging.getLogger("kafka_reliable.producer.send_path")

Admitted = list[tuple[bytes, bytes | None, list[tuple[str, bytes]], str]]


class BatchSending:
    """``send_batch`` and its helpers; the single-record steps are ``SendPath``'s."""

    producer: Producer
    fast: bool
    _tracker: T.MessageTracker
    _ledger: DurableLedger | None
    _with_id: bool

    # The single-record steps, SendPath's (declared for the type checker only).
    _admit: Callable[..., list[tuple[str, bytes]] | None]
    _produce_plain: Callable[..., None]
    _produce_one: Callable[..., None]
    _duplicate: Callable[[str, str], None]
    _release: Callable[[str, bytes, bytes | None], None]

    def _produce_admitted(
        self, topic: str, admitted: list[tuple[bytes, bytes | None, list[tuple[str, bytes]], str]]
    ) -> None:
        """Produce admitted records of one batch (one ledger transaction in durable mode)."""
        if self._ledger is not None and admitted:
            self._ledger.append_many(
                topic, [(kb, vb, mid, h) for vb, kb, h, mid in admitted], int(time.time() * 1000)
            )
        for vb, kb, hdrs, mid in admitted:
            self._produce_one(topic, vb, kb, hdrs, mid, in_ledger=True)

    def send_batch(
        self,
        topic: str,
        encoded: list[tuple[bytes, bytes | None]],
        mids: list[str],
        verdicts: list[bool | None],
        headers: UserHeaders,
        timeout_s: float,
        drain_writer: Callable[[float], None],
    ) -> list[str | None]:
        """Send a batch and wait (bounded) until each record is delivered or routed; return
        the statuses. One flush sends at once (no linger) and serves the reports; records
        that failed may still be on their way to ``.retry`` / ``.dlq`` / the spool after it."""
        deadline = time.monotonic() + timeout_s
        fast = headers is None and self.fast
        batch = None if fast else self._tracker.add_batch(mids)
        try:
            if fast:
                self._batch_fast(topic, encoded, mids, verdicts)
            else:
                self._admit_batch(topic, encoded, mids, verdicts, headers)
        except SpoolFullError:
            # the log refused the batch before any record was produced: give the claims back
            for (vb, kb), fresh in zip(encoded, verdicts, strict=True):
                if fresh:
                    self._release(topic, vb, kb)
            raise
        self.producer.flush(timeout_s)
        if batch is not None:
            batch.done.wait(max(0.0, deadline - time.monotonic()))
        else:
            status = self._tracker.status
            waiting = [m for m in mids if status(m) == T.PENDING]
            while waiting and time.monotonic() < deadline:
                drain_writer(min(0.05, max(0.0, deadline - time.monotonic())))
                waiting = [m for m in waiting if status(m) == T.PENDING]
        statuses = [self._tracker.status(m) for m in mids]
        if T.PENDING in statuses:
            log.warning(
                "send_batch: %d records of %s not settled after %.0f s",
                statuses.count(T.PENDING),
                topic,
                timeout_s,
            )
        return statuses

    def _batch_fast(
        self,
        topic: str,
        encoded: list[tuple[bytes, bytes | None]],
        mids: list[str],
        verdicts: list[bool | None],
    ) -> None:
        """A batch on the fast path (dedup verdicts already taken in bulk)."""
        plain = self._produce_plain
        if self._ledger is not None:  # one log write for the batch
            ids_only: list[tuple[str, bytes | None]] | None = None if self._with_id else []
            self._ledger.append_many(
                topic,
                [
                    (kb, vb, mid, ids_only)
                    for (vb, kb), mid, fresh in zip(encoded, mids, verdicts, strict=True)
                    if fresh is not False
                ],
                int(time.time() * 1000),
            )
        for (vb, kb), mid, fresh in zip(encoded, mids, verdicts, strict=True):
            if fresh is False:
                self._duplicate(topic, mid)
            else:
                plain(topic, vb, kb, mid, in_ledger=True)

    def _admit_batch(
        self,
        topic: str,
        encoded: list[tuple[bytes, bytes | None]],
        mids: list[str],
        verdicts: list[bool | None],
        headers: UserHeaders,
    ) -> None:
        """Admit each record of a batch (the same path as one record), then produce the admitted
        ones; when admission raises half-way, the claims of the records not sent are released."""
        admitted: list[tuple[bytes, bytes | None, list[tuple[str, bytes]], str]] = []
        i = 0
        try:
            for i, ((vb, kb), mid, fresh) in enumerate(zip(encoded, mids, verdicts, strict=True)):  # noqa: B007
                hdrs = self._admit(topic, vb, kb, headers, mid, claimed=fresh)
                if hdrs is not None:
                    admitted.append((vb, kb, hdrs, mid))
        except BaseException:
            for (vb, kb), fresh in zip(encoded[i:], verdicts[i:], strict=True):
                if fresh:
                    self._release(topic, vb, kb)
            self._produce_admitted(topic, admitted)
            raise
        self._produce_admitted(topic, admitted)
