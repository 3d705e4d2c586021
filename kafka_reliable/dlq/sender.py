"""Producing replayed records chunk by chunk, committing the replay group's progress with them.

A record the target refuses for good (``MSG_SIZE_TOO_LARGE``, ``TOPIC_AUTHORIZATION_FAILED``,
an invalid topic, …) is skipped: it is reported, progress moves past it, and the records
around it are delivered exactly as they would have been without it. When a chunk fails:

* transactional: the transaction is aborted (none of the chunk is visible), then the chunk
  is redone one record per transaction, each committing the progress up to itself, so the
  refused record is isolated and nothing is written twice;
* at-least-once: what was acknowledged stays; the refused records are retried one by one
  (a batch may fail only because of a batch-mate), then progress is committed.

A retriable failure (broker unreachable, timeout) stops the run with the record named;
progress stays at the last record known to be delivered, so running again resumes there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition

from kafka_reliable.dlq.model import DlqMessage
from kafka_reliable.dlq.reader import DlqError
from kafka_reliable.errors import ErrorKind, classify
from kafka_reliable.sending import produce

log = logging.getLogger(__name__)

_PURGED = frozenset({KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT})
#: Tries per record when a failed chunk is redone one record per transaction.
REDO_TRIES = 3


def is_retriable(err: KafkaError) -> bool:
    return classify(err.name()).kind is ErrorKind.RETRIABLE


def describe(err: KafkaError) -> str:
    return f"refused: {err.name()} ({err.str()})"


@dataclass(kw_only=True)
class Pending:
    """One record of the current chunk."""

    m: DlqMessage
    target: str
    headers: list[tuple[str, str | bytes | None]]
    error: KafkaError | None = None
    delivered: bool = False

    def on_delivery(self, err: KafkaError | None, _msg: Any) -> None:
        if err is None:
            self.delivered = True
        elif err.code() not in _PURGED:
            self.error = err


@dataclass(kw_only=True)
class Outcome:
    """What committing a chunk achieved."""

    delivered: int = 0
    skipped: list[tuple[Pending, str]] = field(default_factory=list)


class ChunkSender:
    """Produce into the current chunk; ``commit`` delivers it with the replay progress."""

    def __init__(
        self,
        producer: Producer,
        *,
        dlq_topic: str,
        transactional: bool,
        group_metadata: Callable[[], Any],
        commit_offsets: Callable[[list[TopicPartition]], object],
    ) -> None:
        self._p = producer
        self._topic = dlq_topic
        self._txn = transactional
        self._group_metadata = group_metadata
        self._commit_offsets = commit_offsets
        self._in_txn = False
        self._broken = False  # the open transaction failed: produce nothing more into it
        self.chunk: list[Pending] = []

    def __len__(self) -> int:
        return len(self.chunk)

    def send(self, entry: Pending, produce: Callable[[Pending], None]) -> None:
        """Add ``entry`` to the chunk and produce it (through ``produce``, which may trace)."""
        self.chunk.append(entry)
        if self._broken:
            return
        self._begin()
        try:
            produce(entry)
        except KafkaException as exc:
            err: KafkaError = exc.args[0]
            if self._txn and (err.txn_requires_abort() or err.code() == KafkaError._STATE):
                self._broken = True
            else:
                entry.error = (
                    err  # refused by the client itself (e.g. larger than message.max.bytes)
                )
        self._p.poll(0)

    def _produce_alone(self, e: Pending) -> None:
        """Produce ``e`` and wait for its report; a refusal by the client lands in ``e.error``."""
        e.error, e.delivered = None, False
        try:
            self.produce(e)
        except KafkaException as exc:
            err: KafkaError = exc.args[0]
            if self._txn and (err.txn_requires_abort() or err.code() == KafkaError._STATE):
                raise
            e.error = err
            return
        self._p.flush(60)

    def produce(self, entry: Pending) -> None:
        produce(self._p, entry.target, entry.m.value, entry.m.key, entry.headers, entry.on_delivery)

    # -- committing ---------------------------------------------------------------------------
    def commit(self, positions: Mapping[int, int]) -> Outcome:
        """Deliver the chunk and commit ``positions`` (the next DLQ offset per partition)."""
        out = self._commit_txn(positions) if self._txn else self._commit_plain(positions)
        self.chunk = []
        return out

    def _commit_txn(self, positions: Mapping[int, int]) -> Outcome:
        if not self._broken:
            try:
                self._begin()
                self._p.send_offsets_to_transaction(
                    self._tps(positions), self._group_metadata(), 30
                )
                self._p.commit_transaction(60)
                self._in_txn = False
                return self._settle(self.chunk)
            except KafkaException as exc:
                if not exc.args[0].txn_requires_abort():
                    raise DlqError(
                        f"replay of {self._topic}: commit failed: {exc.args[0].str()}"
                    ) from None
        self.abort()
        self._stop_if_retriable(self.chunk)
        log.warning(
            "replay of %s: a chunk of %d records failed; redoing it one record at a time",
            self._topic,
            len(self.chunk),
        )
        return self._redo(positions)

    def _commit_plain(self, positions: Mapping[int, int]) -> Outcome:
        if self._p.flush(60):
            raise DlqError(
                f"replay of {self._topic}: records unacknowledged after 60 s; "
                "progress not committed"
            )
        failed = [e for e in self.chunk if e.error is not None]
        if failed:
            self._stop_if_retriable(failed, positions)
            for e in failed:  # one by one: a batch may have failed for a batch-mate
                self._produce_alone(e)
                self._stop_if_retriable([e], positions)
        out = self._settle(self.chunk)
        self._commit_offsets(self._tps(positions))
        return out

    def _redo(self, positions: Mapping[int, int]) -> Outcome:
        out = Outcome()
        for i, e in enumerate(self.chunk):
            done = self._upto(self.chunk[i + 1 :], positions)
            reason = self._deliver_alone(e, done)
            if reason is None:
                out.delivered += 1
            else:
                out.skipped.append((e, reason))
        return out

    def _deliver_alone(self, e: Pending, done: Mapping[int, int]) -> str | None:
        """``e`` in a transaction of its own with the progress ``done``; the reason when the
        target refused it for good (progress then committed past it without it)."""
        for _ in range(REDO_TRIES):  # after an abort, librdkafka may purge the next record once
            try:
                self._begin()
                self._produce_alone(e)
                if e.error is None and e.delivered:
                    self._commit_txn_offsets(done)
                    return None
            except KafkaException as exc:
                if not exc.args[0].txn_requires_abort():
                    raise DlqError(f"replay of {self._topic}: {exc.args[0].str()}") from None
            self.abort()
            if e.error is not None and not is_retriable(e.error):
                self._commit_txn_offsets(done, retries=REDO_TRIES)
                return describe(e.error)
            if e.error is not None:
                break
        reason = describe(e.error) if e.error is not None else "not acknowledged"
        raise DlqError(
            f"replay of {self._topic} stopped at {e.m.coordinates} -> {e.target}: {reason}; "
            "progress committed up to the record before it: run again to resume"
        )

    def _commit_txn_offsets(self, done: Mapping[int, int], retries: int = 1) -> None:
        for attempt in range(retries):
            try:
                self._begin()
                self._p.send_offsets_to_transaction(self._tps(done), self._group_metadata(), 30)
                self._p.commit_transaction(60)
                self._in_txn = False
                return
            except KafkaException as exc:
                if attempt + 1 >= retries or not exc.args[0].txn_requires_abort():
                    raise
                self.abort()

    def _settle(self, entries: list[Pending]) -> Outcome:
        out = Outcome()
        for e in entries:
            if e.error is None:
                out.delivered += 1
            else:
                out.skipped.append((e, describe(e.error)))
        return out

    def _stop_if_retriable(
        self, entries: list[Pending], positions: Mapping[int, int] | None = None
    ) -> None:
        bad = next((e for e in entries if e.error is not None and is_retriable(e.error)), None)
        if bad is None or bad.error is None:
            return
        note = "progress not committed"
        if positions is not None:  # at-least-once: keep what was acknowledged before it
            rest = [e for e in self.chunk if e.error is not None]
            self._commit_offsets(self._tps(self._upto(rest, positions)))
            note = "progress committed up to the first failed record"
        raise DlqError(
            f"replay of {self._topic} stopped at {bad.m.coordinates} -> {bad.target}: "
            f"{describe(bad.error)}; {note}: run again to resume"
        )

    @staticmethod
    def _upto(remaining: list[Pending], positions: Mapping[int, int]) -> dict[int, int]:
        """``positions``, held back to the first of ``remaining`` in each partition."""
        out = dict(positions)
        for e in reversed(remaining):
            out[e.m.partition] = e.m.offset
        return out

    def _tps(self, positions: Mapping[int, int]) -> list[TopicPartition]:
        return [TopicPartition(self._topic, p, o) for p, o in positions.items()]

    def _begin(self) -> None:
        if self._txn and not self._in_txn:
            self._p.begin_transaction()
            self._in_txn = True
            self._broken = False

    def abort(self) -> None:
        """Abort the open transaction (if any); its records are discarded by the cluster."""
        if self._txn and self._in_txn:
            try:
                self._p.abort_transaction(30)
            except KafkaException as exc:
                log.warning(
                    "replay of %s: could not abort the open transaction: %s", self._topic, exc
                )
            self._in_txn = False
            self._broken = False
        self._p.poll(0)
