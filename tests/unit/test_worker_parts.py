"""Pure units of the worker's parts: rate-limited error notes, the transaction outcomes, settings."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from kafka_reliable import headers as h
from kafka_reliable.client_errors import ErrorNotes
from kafka_reliable.errors import ConfigurationError
from kafka_reliable.worker.records import RecordKind, RetryRecord
from kafka_reliable.worker.settings import WorkerConfig
from kafka_reliable.worker.transactions import TransactionalCommitter, TxnOutcome


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_error_notes_log_each_kind_once_per_window_with_the_repeat_count(caplog: pytest.LogCaptureFixture) -> None:
    # Given: errors alternating between two kinds 30 times a second for 40 s
    clock = Clock()
    notes = ErrorNotes(window_s=30.0, clock=clock)
    caplog.set_level(logging.INFO, logger="kafka_reliable.client")
    # When
    logged = 0
    for i in range(40 * 30):
        clock.t = i / 30
        logged += notes.note("consumer", "_TRANSPORT" if i % 2 else "_ALL_BROKERS_DOWN")
    notes.recovered("republishing")
    # Then: 2 kinds x 2 windows, the second line of a kind says how often it repeated
    assert logged == 4
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 5
    assert "[repeated 449 times in the last 30 s]" in lines[2]
    assert lines[-1] == "republishing again after consumer: _TRANSPORT"
    assert notes.last is None


class FakeTxnProducer:
    """Records the transactional calls; ``commit_error`` makes commit_transaction raise."""

    def __init__(self, commit_error: KafkaError | None = None) -> None:
        self.calls: list[str] = []
        self.commit_error = commit_error

    def __getattr__(self, name: str) -> Any:
        def call(*_a: Any, **_k: Any) -> None:
            self.calls.append(name)
            if name == "commit_transaction" and self.commit_error is not None:
                raise KafkaException(self.commit_error)
        return call


def _rec() -> RetryRecord:
    return RetryRecord(tp=("t.retry", 0), offset=5, gen=1, key=None, value=b"v", timestamp_ms=0, headers=[], due_ms=0)


def test_committer_outcomes() -> None:
    # idle: nothing open
    p = FakeTxnProducer()
    txn = TransactionalCommitter(producer=p)  # type: ignore[arg-type]
    assert txn.commit({}, None, unacked=0).outcome is TxnOutcome.IDLE
    # committed: offsets sent, then the commit
    txn.begin()
    assert txn.commit({("t.retry", 0): 6}, object(), unacked=0).outcome is TxnOutcome.COMMITTED
    assert p.calls == ["begin_transaction", "send_offsets_to_transaction", "commit_transaction"]
    # aborted: records unacknowledged, or one failed (its republish failure is remembered)
    txn.begin()
    assert txn.commit({}, None, unacked=3).outcome is TxnOutcome.ABORTED
    txn.begin()
    txn.on_failed(RecordKind.REPUBLISH, _rec(), KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
    result = txn.commit({}, None, unacked=0)
    assert (result.outcome, result.detail) == (TxnOutcome.ABORTED, "a record failed")
    known = ("MSG_SIZE_TOO_LARGE", KafkaError(KafkaError.MSG_SIZE_TOO_LARGE).str(), False)
    assert txn.known_failure(_rec()) == known
    assert not txn.may_produce(0)
    # a known failure survives a second abort (the transaction routing the record failed too) ...
    txn.begin()
    assert txn.commit({}, None, unacked=1).outcome is TxnOutcome.ABORTED
    assert txn.known_failure(_rec()) == known
    # ... and is forgotten once a transaction commits past the record (offset 5)
    txn.begin()
    assert txn.commit({("t.retry", 0): 5}, object(), unacked=0).outcome is TxnOutcome.COMMITTED
    assert txn.known_failure(_rec()) == known
    txn.begin()
    assert txn.commit({("t.retry", 0): 6}, object(), unacked=0).outcome is TxnOutcome.COMMITTED
    assert txn.known_failure(_rec()) is None
    # fatal: the commit says the producer is fenced
    fenced = TransactionalCommitter(producer=FakeTxnProducer(KafkaError(KafkaError._FENCED, fatal=True)))  # type: ignore[arg-type]
    fenced.begin()
    assert fenced.commit({}, None, unacked=0).outcome is TxnOutcome.FATAL


@pytest.mark.parametrize("kwargs, message", [
    ({"topics": ("a",), "group_id": " "}, "must not be empty"),
    ({"topics": ("orders.retry",)}, "already ends in a companion suffix"),
    ({"topics": ("a", "x.dlq")}, "name the source topic ('x')"),
    ({"topics": ("bad topic!",)}, "not a legal topic name"),
    ({"topics": ("x" * 244,)}, "too long for its companion topic"),
    ({"topics": ("a",), "startup_timeout_s": 0}, "--startup-timeout-s"),
])
def test_settings_refuse_names_that_cannot_work(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=None) as info:
        WorkerConfig(**kwargs)
    assert message in str(info.value)


class FakeConsumer:
    """Records pause/resume/seek calls (partitions as (topic, partition))."""

    def __init__(self) -> None:
        self.paused: set[tuple[str, int]] = set()
        self.seeks: list[tuple[str, int, int]] = []

    def pause(self, parts: list[Any]) -> None:
        self.paused |= {(p.topic, p.partition) for p in parts}

    def resume(self, parts: list[Any]) -> None:
        self.paused -= {(p.topic, p.partition) for p in parts}

    def position(self, parts: list[Any]) -> list[Any]:
        for p in parts:
            p.offset = 7
        return parts

    def seek(self, part: Any) -> None:
        self.seeks.append((part.topic, part.partition, part.offset))


def test_look_ahead_is_shared_so_one_partition_cannot_starve_the_others() -> None:
    # Given: 2 partitions, a look-ahead of 10, partition 0 read far ahead
    from kafka_reliable.worker.partitions import OwnedPartitions

    own = OwnedPartitions(max_pending=10)
    own.gens.update({("r", 0): 1, ("r", 1): 2})
    consumer = FakeConsumer()
    for i in range(5):
        own.heap.push(10_000 + i, ("r", 0), f"far-{i}")
    own.heap.push(100, ("r", 1), "soon")
    # When
    own.flow_control(consumer)  # type: ignore[arg-type]
    # Then: only partition 0 (at its share of 5) is paused; partition 1 keeps being read
    assert consumer.paused == {("r", 0)} and own.heap.count(("r", 0)) == 5
    # and once partition 0's records leave the heap, it is resumed
    assert [item for _, item in own.heap.pop_due(10_001)] == ["soon", "far-0", "far-1"]
    own.flow_control(consumer)  # type: ignore[arg-type]
    assert consumer.paused == set() and own.heap.count(("r", 0)) == 3 and own.heap.count(("r", 1)) == 0
    # with a seek to its position, so librdkafka fetches at once instead of at its next wake-up
    assert consumer.seeks == [("r", 0, 7)]


class FakeMessage:
    """What ``OwnedPartitions.read`` asks of a fetched record."""

    def __init__(self, partition: int, offset: int, due_ms: int) -> None:
        from kafka_reliable.headers import Failure, failure_headers

        f = Failure(original_topic="orders", attempt=1, error_code="_MSG_TIMED_OUT",
                    error_class="KafkaTimeoutError", error_message="t", retriable=True, first_failure_at_ms=1,
                    last_failure_at_ms=1, next_attempt_at_ms=due_ms)
        self._p, self._o, self._h = partition, offset, failure_headers(None, f, message_id=f"m{offset}")

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return "orders.retry"

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._o

    def timestamp(self) -> tuple[int, int]:
        return (1, 5)

    def key(self) -> bytes:
        return b"k"

    def value(self) -> bytes:
        return b"v"

    def headers(self) -> list[tuple[str, bytes]]:
        return self._h


def test_records_due_when_read_skip_the_heap_and_follow_their_partition() -> None:
    # Given: two partitions; records due before, at and after the read time (1_000)
    from kafka_reliable.config import TopicNaming
    from kafka_reliable.worker.partitions import OwnedPartitions

    own = OwnedPartitions(max_pending=10)
    own.gens.update({("orders.retry", 0): 1, ("orders.retry", 1): 2})
    msgs = [FakeMessage(0, 0, 500), FakeMessage(1, 0, 1_000), FakeMessage(0, 1, 1_001)]
    # When
    poison = own.read(msgs, TopicNaming(), 1_000, lambda *_: None)  # type: ignore[arg-type]
    # Then: the due ones are ready (not in the look-ahead), the later one waits in the heap
    assert poison == [] and [(r.tp[1], r.offset) for r in own.ready] == [(0, 0), (1, 0)]
    assert len(own.heap) == 1 and own.heap.next_due_ms() == 1_001
    # and a revoked partition's ready record is dropped with it
    own.drop({("orders.retry", 1)})
    assert [(r.tp[1], r.offset) for r in own.ready] == [(0, 0)]
    # and when producing must wait (an aborted transaction), ready records go into the heap
    own.hold_ready()
    assert own.ready == [] and len(own.heap) == 2
    # and they wait as flat tuples the garbage collector stops tracking (no pause grows with them)
    import gc

    gc.collect()
    gc.collect()
    assert not any(gc.is_tracked(entry) for entry in own.heap._heap)
    # and come back whole, due first
    back = own.pop_due(2_000, 10)
    assert [(r.offset, r.due_ms, r.source_topic) for r in back] == [(0, 500, "orders"), (1, 1_001, "orders")]
    assert back[0].out_headers == ((h.MESSAGE_ID, b"m0"), (h.ATTEMPT, b"1"))
    assert own.take_ready() == []
