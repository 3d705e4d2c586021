"""CompanionWriter with a fake librdkafka producer, fake companion topics and a real spool file:
where each failed record goes (.retry, .dlq, the spool, quarantine) and that close() loses nothing."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException

from kafka_reliable import headers as H
from kafka_reliable.config import RetryConfig, TopicNaming
from kafka_reliable.producer import tracking as T
from kafka_reliable.producer.companion_writer import CompanionWriter
from kafka_reliable.producer.tracking import MessageTracker
from kafka_reliable.record import OutgoingRecord
from kafka_reliable.spool import Spool
from tests.helpers.fake_producer import FakeProducer, Outcome, Produced
from tests.helpers.waits import wait_until


class FakeCompanions:
    """``ensure`` and ``max_message_bytes`` of CompanionTopics, without a cluster."""

    def __init__(self, max_message_bytes: int = 1_000_000) -> None:
        self.limit = max_message_bytes
        self.ensured: list[str] = []
        self.unavailable = False
        self.gate: threading.Event | None = None  # when set: ensure() waits for it

    def ensure(self, topic: str) -> None:
        if self.gate is not None:
            self.gate.wait(10)
        if self.unavailable:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT, "no broker"))
        self.ensured.append(topic)

    def max_message_bytes(self, topic: str) -> int:
        return self.limit


class Setup:
    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.producer = FakeProducer()
        self.companions = FakeCompanions()
        self.spool = Spool(tmp_path / "spool.db")
        self.tracker = MessageTracker()
        self.connected = True
        self.routed: list[tuple[str | None, str, str | None]] = []
        self.quarantined: list[tuple[str | None, str]] = []
        fake = self.producer

        def client(writer: CompanionWriter) -> FakeProducer:
            writer._producer = fake  # type: ignore[assignment]
            return fake

        monkeypatch.setattr(CompanionWriter, "_client", client)
        self.writer = CompanionWriter(
            conf={"bootstrap.servers": "fake:9092"}, retry_config=RetryConfig(max_retries=3),
            naming=TopicNaming(), companions=self.companions, spool=self.spool,  # type: ignore[arg-type]
            tracker=self.tracker, is_connected=lambda: self.connected,
            on_routed=lambda r, s, why: self.routed.append((r.message_id, s, why)),
            on_quarantined=lambda r, why: self.quarantined.append((r.message_id, why)),
        )

    def fail_companion_writes(self, decide: Callable[[Produced], Outcome]) -> None:
        self.producer.decide = decide

    def submit(self, mid: str, code: str, value: bytes = b"v", **kw: object) -> OutgoingRecord:
        rec = OutgoingRecord(mid, "orders", b"k", value, [(H.MESSAGE_ID, mid.encode())], **kw)  # type: ignore[arg-type]
        self.tracker.add(mid)
        self.writer.submit(rec.failed(code, f"{code} from the broker"))
        return rec

    def settled(self, n: int = 1) -> None:
        wait_until(lambda: self.writer.busy == 0 and len(self.routed) >= n, 5, lambda: f"routed {self.routed}")


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    s = Setup(tmp_path, monkeypatch)
    yield s
    s.writer.close(1.0)
    s.spool.close()


def test_a_retriable_failure_goes_to_retry_with_its_next_attempt_time(setup: Setup) -> None:
    # Given / When a record that timed out
    before_ms = int(time.time() * 1000)
    setup.submit("m1", "_MSG_TIMED_OUT")
    setup.settled()
    # Then it was written once to orders.retry, due later, with its id and attempt
    [call] = setup.producer.calls
    assert call.topic == "orders.retry" and (call.key, call.value) == (b"k", b"v")
    assert int(call.header(H.NEXT_ATTEMPT_AT) or b"0") > before_ms
    assert call.header(H.MESSAGE_ID) == b"m1" and call.header(H.ATTEMPT) == b"1"
    assert setup.companions.ensured == ["orders"]
    assert setup.tracker.status("m1") == T.RETRYING and setup.tracker.counter("retried") == 1
    assert setup.routed == [("m1", T.RETRYING, None)] and setup.spool.count() == 0


def test_a_non_retriable_failure_goes_to_the_dlq(setup: Setup) -> None:
    setup.submit("m1", "TOPIC_AUTHORIZATION_FAILED")
    setup.settled()
    [call] = setup.producer.calls
    assert call.topic == "orders.dlq" and call.header(H.DLQ_REASON) == b"non_retriable"
    assert setup.tracker.status("m1") == T.DLQ and setup.tracker.counter("dead_lettered") == 1
    assert setup.tracker.dlq_by_topic() == {"orders": 1}
    assert setup.routed == [("m1", T.DLQ, "non_retriable")]


def test_an_unreachable_cluster_spools_the_record(setup: Setup) -> None:
    # Given a cluster that does not answer
    setup.connected = False
    # When
    setup.submit("m1", "_MSG_TIMED_OUT")
    setup.settled()
    # Then it is in the spool, nothing was produced
    assert setup.producer.calls == []
    [row] = setup.spool.oldest()
    assert (row.message_id, row.value, row.spool_reason) == ("m1", b"v", "cluster_unreachable")
    assert setup.tracker.status("m1") == T.SPOOLED and setup.tracker.counter("spooled") == 1
    assert setup.routed == [("m1", T.SPOOLED, "cluster_unreachable")]


def test_companion_topics_that_cannot_be_created_spool_the_record(setup: Setup) -> None:
    setup.companions.unavailable = True
    setup.submit("m1", "_MSG_TIMED_OUT")
    setup.settled()
    assert setup.producer.calls == [] and [r.spool_reason for r in setup.spool.oldest()] == ["companion_unavailable"]


def test_a_companion_write_too_large_is_quarantined_and_the_rest_flows(setup: Setup) -> None:
    # Given a record too large for its topic and for the DLQ, between two good failures
    limit = setup.companions.limit
    setup.fail_companion_writes(
        lambda c: KafkaError(KafkaError.MSG_SIZE_TOO_LARGE, "too large") if len(c.value or b"") > limit else None)
    setup.submit("before", "TOPIC_AUTHORIZATION_FAILED")
    setup.submit("huge", "MSG_SIZE_TOO_LARGE", value=b"x" * (limit + 1))
    setup.submit("after", "_MSG_TIMED_OUT")
    setup.settled(3)
    # Then the huge one is quarantined in the spool with its reason, once, and an alert was raised
    [q] = setup.spool.quarantined()
    assert q.message_id == "huge" and "MSG_SIZE_TOO_LARGE on orders and on orders.dlq" in (q.quarantine_reason or "")
    assert setup.spool.count(include_quarantined=False) == 0
    assert [(m, "MSG_SIZE_TOO_LARGE" in why) for m, why in setup.quarantined] == [("huge", True)]
    assert setup.tracker.status("huge") == T.SPOOLED
    # and the others reached their companion topics
    assert setup.tracker.status("before") == T.DLQ and setup.tracker.status("after") == T.RETRYING


def _from_spool(setup: Setup, mid: str, code: str, value: bytes = b"v") -> OutgoingRecord:
    setup.spool.add([OutgoingRecord(mid, "orders", b"k", value, [(H.MESSAGE_ID, mid.encode())])], "cluster_unreachable")
    [rec] = setup.spool.oldest()
    assert rec.row_id is not None
    setup.writer.submit(rec.failed(code, "refused"))
    return rec


def test_a_spooled_record_that_can_never_be_written_is_quarantined_in_place(setup: Setup) -> None:
    # Given a record read back from the spool (row id set) that no companion topic can take
    setup.fail_companion_writes(lambda _c: KafkaError(KafkaError.MSG_SIZE_TOO_LARGE, "too large"))
    rec = _from_spool(setup, "m1", "TOPIC_AUTHORIZATION_FAILED")
    # When
    setup.settled()
    # Then its own row is quarantined; no second row was added
    assert setup.spool.count() == 1
    [q] = setup.spool.quarantined()
    assert q.row_id == rec.row_id and "MSG_SIZE_TOO_LARGE" in (q.quarantine_reason or "")
    assert [m for m, _ in setup.quarantined] == ["m1"]


def test_a_spooled_record_whose_companion_write_fails_keeps_its_row(setup: Setup) -> None:
    setup.fail_companion_writes(lambda _c: KafkaError(KafkaError._MSG_TIMED_OUT, "timed out"))
    rec = _from_spool(setup, "m1", "_MSG_TIMED_OUT")
    setup.settled()
    [row] = setup.spool.oldest()
    assert row.row_id == rec.row_id and setup.spool.count() == 1 and setup.spool.quarantined() == []
    assert setup.routed == [("m1", T.SPOOLED, "companion_failed:_MSG_TIMED_OUT")]


def test_a_record_rejected_only_for_its_batch_mates_size_is_retried(setup: Setup) -> None:
    # Given MSG_SIZE_TOO_LARGE for a record far below the topic's limit (its batch was too large)
    setup.submit("small", "MSG_SIZE_TOO_LARGE", value=b"x" * 100)
    # and for one that is too large by itself
    setup.submit("big", "MSG_SIZE_TOO_LARGE", value=b"x" * setup.companions.limit)
    setup.settled(2)
    # Then the small one goes to .retry, the big one to .dlq
    targets = {c.header(H.MESSAGE_ID): c.topic for c in setup.producer.calls}
    assert targets == {b"small": "orders.retry", b"big": "orders.dlq"}
    assert setup.tracker.status("small") == T.RETRYING and setup.tracker.status("big") == T.DLQ


def test_close_spools_unacknowledged_companion_writes(setup: Setup) -> None:
    # Given three companion writes whose acknowledgements never come
    setup.producer.hold = True
    for i in range(3):
        setup.submit(f"m{i}", "_MSG_TIMED_OUT")
    wait_until(lambda: len(setup.producer.calls) == 3, 5, "three companion writes")
    # When the writer closes
    setup.writer.close(0.3)
    # Then they were purged and spooled, none lost
    assert setup.producer.purged == 3
    assert sorted(r.message_id or "" for r in setup.spool.oldest()) == ["m0", "m1", "m2"]
    assert {setup.tracker.status(f"m{i}") for i in range(3)} == {T.SPOOLED}
    assert setup.writer.busy == 0


def test_close_spools_records_still_queued(setup: Setup) -> None:
    # Given a writer stuck on its first record, with two more queued behind it
    gate = threading.Event()
    setup.companions.gate = gate
    for i in range(3):
        setup.submit(f"m{i}", "_MSG_TIMED_OUT")
    # When the writer closes
    setup.writer.close(0.3)
    # Then the queued ones are in the spool, marked as left at close
    assert sorted((r.message_id, r.spool_reason) for r in setup.spool.oldest()) == [("m1", "closed"), ("m2", "closed")]
    assert (setup.tracker.status("m1"), setup.tracker.status("m2")) == (T.SPOOLED, T.SPOOLED)
    # and the one in hand is still routed once the writer can go on
    gate.set()
    wait_until(lambda: setup.tracker.status("m0") == T.RETRYING, 5, lambda: f"m0 is {setup.tracker.status('m0')}")
    setup.writer._queue.put(None)  # the writer's thread outlived close(): stop it
