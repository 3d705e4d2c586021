"""SpoolDrainer with a fake librdkafka producer and a real spool file: each row deleted once,
unreachable rows kept, other failures handed on, nothing sent twice, quarantine left alone."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException

from kafka_reliable.producer import tracking as T
from kafka_reliable.producer.spool_drainer import SpoolDrainer
from kafka_reliable.producer.tracking import MessageTracker
from kafka_reliable.record import OutgoingRecord
from kafka_reliable.spool import Spool
from tests.helpers.fake_producer import FakeProducer, Outcome


class CountingSpool(Spool):
    """A spool that remembers every row id it was asked to delete."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.deleted: list[int] = []

    def delete(self, row_ids: Iterable[int]) -> int:
        ids = list(row_ids)
        self.deleted.extend(ids)
        return super().delete(ids)


class Setup:
    def __init__(self, tmp_path: Path, decide: dict[bytes, Outcome] | None = None) -> None:
        outcomes = decide or {}
        self.spool = CountingSpool(tmp_path / "spool.db")
        self.producer = FakeProducer(lambda call: outcomes.get(call.value or b""))
        self.tracker = MessageTracker()
        self.failures: list[OutgoingRecord] = []
        self.drainer = SpoolDrainer(spool=self.spool, client=lambda: self.producer, tracker=self.tracker,  # type: ignore[arg-type, return-value]
                                    submit_failure=self.failures.append)

    def spool_values(self, *values: bytes) -> list[int]:
        self.spool.add([OutgoingRecord(f"m-{v.decode()}", "orders", b"k", v, [("app", b"shop")], 1_700_000_000_000)
                        for v in values], "cluster_unreachable")
        return [r.row_id for r in self.spool.oldest() if r.row_id is not None]

    def sent_values(self) -> list[bytes | None]:
        return [c.value for c in self.producer.calls]


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


def test_delivered_rows_are_deleted_exactly_once(setup: Setup) -> None:
    # Given three spooled records
    rows = setup.spool_values(b"a", b"b", b"c")
    # When two passes run
    first = setup.drainer.drain(timeout_s=5)
    second = setup.drainer.drain(timeout_s=5)
    # Then each row was sent once, with its bytes, headers and create time, and deleted once
    assert (first, second) == (3, 0)
    assert setup.sent_values() == [b"a", b"b", b"c"]
    assert all(c.topic == "orders" and c.key == b"k" and c.header("app") == b"shop"
               and c.timestamp == 1_700_000_000_000 for c in setup.producer.calls)
    assert sorted(setup.spool.deleted) == sorted(rows)
    assert setup.spool.count() == 0
    assert setup.tracker.counter("drained") == 3 and setup.tracker.status("m-a") == T.SENT
    assert setup.failures == []


@pytest.mark.parametrize("code", [KafkaError._MSG_TIMED_OUT, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN])
def test_an_unreachable_cluster_keeps_the_row_for_the_next_pass(tmp_path: Path, code: int) -> None:
    # Given a record whose send finds the cluster unreachable, between two good ones
    s = Setup(tmp_path, {b"b": KafkaError(code)})
    s.spool_values(b"a", b"b", b"c")
    # When
    assert s.drainer.drain(timeout_s=5) == 2
    # Then only the unreachable one stays, still drainable, handed to nobody
    assert [r.value for r in s.spool.oldest()] == [b"b"]
    assert s.failures == [] and s.drainer.in_flight == 0
    # and the next pass sends it again
    s.producer.decide = lambda _call: None
    assert s.drainer.drain(timeout_s=5) == 1 and s.spool.count() == 0


def test_other_errors_go_to_submit_failure_with_their_row_id(tmp_path: Path) -> None:
    # Given a record the topic refuses
    s = Setup(tmp_path, {b"b": KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)})
    rows = s.spool_values(b"a", b"b", b"c")
    # When
    s.drainer.drain(timeout_s=0.3)
    # Then it is handed on with the failure and its row id, the row not yet deleted
    [failed] = s.failures
    assert (failed.row_id, failed.message_id, failed.value) == (rows[1], "m-b", b"b")
    assert failed.error_code == "TOPIC_AUTHORIZATION_FAILED" and failed.spool_reason == "cluster_unreachable"
    assert failed.headers == [("app", b"shop")] and failed.timestamp_ms == 1_700_000_000_000
    assert sorted(s.spool.deleted) == [rows[0], rows[2]]
    assert s.tracker.counter("failed") == 1 and s.drainer.in_flight == 1
    # When the companion writer reports it written to .dlq
    s.drainer.on_routed(failed, T.DLQ)
    # Then its row goes, once
    assert s.drainer.flush_deletes() == 1 and s.spool.count() == 0
    s.drainer.on_routed(failed, T.DLQ)
    assert s.drainer.flush_deletes() == 0
    assert sorted(s.spool.deleted) == sorted(rows)


def test_a_row_the_writer_spools_again_stays_and_is_drained_later(tmp_path: Path) -> None:
    s = Setup(tmp_path, {b"a": KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)})
    s.spool_values(b"a")
    s.drainer.drain(timeout_s=0.2)
    [failed] = s.failures
    s.drainer.on_routed(failed, T.SPOOLED)  # the companion write failed: the row stays
    assert s.drainer.flush_deletes() == 0 and s.drainer.in_flight == 0 and s.spool.count() == 1


def test_a_row_in_flight_is_never_sent_twice(setup: Setup) -> None:
    # Given a pass whose reports do not arrive before its timeout
    setup.spool_values(b"a", b"b")
    setup.producer.hold = True
    assert setup.drainer.drain(timeout_s=0.2) == 0
    assert setup.drainer.in_flight == 2
    # When a second pass runs while they are in flight, and a new record was spooled meanwhile
    setup.spool_values(b"c")
    setup.drainer.drain(timeout_s=0.2)
    # Then only the new one was sent by it
    assert setup.sent_values() == [b"a", b"b", b"c"]
    # When the reports arrive
    setup.producer.hold = False
    setup.drainer.drain(timeout_s=5)
    # Then each row was deleted once and nothing was sent again
    assert setup.sent_values() == [b"a", b"b", b"c"]
    assert len(setup.spool.deleted) == len(set(setup.spool.deleted)) == 3
    assert setup.spool.count() == 0 and setup.tracker.counter("drained") == 3


def test_a_produce_that_raises_does_not_stop_the_pass(tmp_path: Path) -> None:
    # Given a record the client refuses at once (too large for it)
    refusal = KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE, "too large"))
    s = Setup(tmp_path, {b"huge": refusal})
    rows = s.spool_values(b"a", b"huge", b"c")
    # When (the pass waits for the companion writer's word on the refused one until its timeout)
    assert s.drainer.drain(timeout_s=0.3) == 2
    # Then the others were delivered, the refused one handed on with its row id
    assert s.sent_values() == [b"a", b"c"]
    [failed] = s.failures
    assert failed.row_id == rows[1] and failed.error_code == "MSG_SIZE_TOO_LARGE"
    assert sorted(s.spool.deleted) == [rows[0], rows[2]]


def test_a_value_the_client_cannot_take_is_handed_on_as_invalid(tmp_path: Path) -> None:
    s = Setup(tmp_path, {b"odd": TypeError("bad argument")})
    s.spool_values(b"odd", b"a")
    assert s.drainer.drain(timeout_s=0.3) == 1
    [failed] = s.failures
    assert failed.error_code == "_INVALID_ARG" and "bad argument" in failed.error_message


def test_quarantined_rows_are_never_drained(setup: Setup) -> None:
    # Given a quarantined row before a spooled one
    rows = setup.spool_values(b"q", b"a")
    setup.spool.quarantine(rows[0], "MSG_SIZE_TOO_LARGE on orders and on orders.dlq")
    # When several passes run
    for _ in range(3):
        setup.drainer.drain(timeout_s=5)
    # Then only the spooled one was sent; the quarantined one stays, with its reason
    assert setup.sent_values() == [b"a"]
    [q] = setup.spool.quarantined()
    assert q.row_id == rows[0] and "MSG_SIZE_TOO_LARGE" in (q.quarantine_reason or "")
    assert setup.spool.deleted == [rows[1]]


def test_max_records_bounds_a_pass(setup: Setup) -> None:
    setup.spool_values(b"a", b"b", b"c")
    assert setup.drainer.drain(max_records=2, timeout_s=5) == 2
    assert setup.sent_values() == [b"a", b"b"] and setup.spool.count() == 1


