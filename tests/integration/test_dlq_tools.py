"""DLQ tools of the library on the real broker: stats, list, show, replay, max size, purge, dialects."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from kafka_reliable import headers as h
from kafka_reliable.dlq import DeadLetterQueue, ReplayOptions, make_filter
from tests.helpers.dlq import (
    Dlq500,
    code_of,
    dead_letter,
    make_source,
    write_foreign,
)
from tests.helpers.kafka import create_topic, headers_dict, read_to_end, unique_name


def test_stats_are_exact_for_500_records_in_three_error_classes(kafka_bootstrap: str, dlq500: Dlq500) -> None:
    # Given 500 dead-lettered records
    dlq = DeadLetterQueue(bootstrap_servers=kafka_bootstrap)
    # When
    stats = dlq.stats(dlq500.source)
    # Then
    assert stats["total_messages"] == 500
    assert stats["topic_breakdown"] == {dlq500.source: 500}
    assert stats["error_class_breakdown"] == {
        "KafkaTimeoutError": 200, "MessageSizeTooLargeError": 200, "TopicAuthorizationFailedError": 100,
    }
    assert stats["reason_breakdown"] == {"non_retriable": 300, "retries_exhausted": 200}
    assert stats["oldest_timestamp_ms"] == dlq500.base_ms
    assert stats["newest_timestamp_ms"] == dlq500.base_ms + 499_000
    assert stats["complete"] is True
    # a watermark-only view is exact too
    assert dlq.stats(dlq500.source + ".dlq", scan_limit=0)["total_messages"] == 500


def test_list_filters_by_error_time_key_and_limit(kafka_bootstrap: str, dlq500: Dlq500) -> None:
    dlq = DeadLetterQueue(bootstrap_servers=kafka_bootstrap)
    src, base = dlq500.source, dlq500.base_ms

    timeouts = dlq.get_dlq_messages(src, limit=None, errors="KafkaTimeoutError")
    assert {m.key for m in timeouts} == {f"k{i}".encode() for i in range(500) if code_of(i) == "_MSG_TIMED_OUT"}
    assert all(m.reason == "retries_exhausted" and m.retry_count == 4 for m in timeouts)

    by_code = dlq.get_dlq_messages(src, limit=None, errors=["TOPIC_AUTHORIZATION_FAILED"])
    assert len(by_code) == 100 and {m.error_class for m in by_code} == {"TopicAuthorizationFailedError"}

    window = dlq.get_dlq_messages(src, limit=None, since=base + 100_000, until=base + 150_000)
    assert sorted(m.id for m in window) == sorted(f"m{i}" for i in range(100, 150))

    one = dlq.get_dlq_messages(src, key="k321")
    assert [m.id for m in one] == ["m321"] and one[0].value == b"v321"

    first = dlq.get_dlq_messages(src, limit=10)
    assert [m.id for m in first] == [f"m{i}" for i in range(10)]  # oldest first across partitions
    m = first[0]
    assert (m.last_error, m.first_failed_at_ms, m.original_topic) == ("failure 0", base - 500, src)
    assert m.headers[0] == ("app", b"shop")


def test_show_by_message_id_and_by_offset(kafka_bootstrap: str, dlq500: Dlq500) -> None:
    dlq = DeadLetterQueue(bootstrap_servers=kafka_bootstrap)
    by_id = dlq.get_message(dlq500.source, message_id="m123")
    assert by_id is not None and by_id.key == b"k123" and by_id.error_class == "MessageSizeTooLargeError"
    by_offset = dlq.get_message(dlq500.source, partition=by_id.partition, offset=by_id.offset)
    assert by_offset is not None and by_offset.id == "m123"
    assert dlq.get_message(dlq500.source, message_id="nope") is None
    assert dlq.get_message(dlq500.source, partition=0, offset=10**9) is None


def test_replay_200_resumes_after_an_interruption_and_replays_each_once(
    kafka_bootstrap: str, dlq500: Dlq500, admin: AdminClient
) -> None:
    # Given the 200 KafkaTimeoutError records, replayed to a fresh topic at 200 records/s
    target = create_topic(admin, unique_name("replay-target"), 3)
    dlq = DeadLetterQueue(bootstrap_servers=kafka_bootstrap)
    opts = ReplayOptions(to_topic=target, rate_per_s=200, filter=make_filter(errors="KafkaTimeoutError"),
                         chunk_interval_s=0.2)
    seen: list[int] = []
    # When the first run is stopped about halfway
    first = dlq.replay(dlq500.source, opts, should_stop=lambda: bool(seen) and seen[-1] >= 90,
                       progress=lambda r: seen.append(r.replayed))
    # and the same replay runs again
    second = dlq.replay(dlq500.source, opts)
    # Then exactly the 200 records arrived, once each
    assert first.stopped == "stopped" and 0 < first.replayed < 200
    assert first.replayed + second.replayed == 200 and second.stopped == "end"
    got = read_to_end(kafka_bootstrap, target, at_least=200, timeout_s=30)
    ids = [headers_dict(m)[h.MESSAGE_ID].decode() for m in got]
    assert len(ids) == 200 and len(set(ids)) == 200
    assert set(ids) == {f"m{i}" for i in range(500) if code_of(i) == "_MSG_TIMED_OUT"}
    sample = headers_dict(got[0])
    assert sample[h.REPLAY_COUNT] == b"1" and sample["app"] == b"shop"
    assert h.ATTEMPT not in sample and h.ERROR_CLASS not in sample  # fresh attempt count, no stale error
    # and a third run finds nothing left
    assert dlq.replay(dlq500.source, opts).replayed == 0


def test_replay_to_the_original_topic_with_max_messages(kafka_bootstrap: str, admin: AdminClient) -> None:
    source = make_source(admin, kafka_bootstrap, partitions=1)
    dead_letter(kafka_bootstrap, source, 30, base_ms=int(time.time() * 1000) - 60_000)
    dlq = DeadLetterQueue(bootstrap_servers=kafka_bootstrap)
    assert dlq.replay_dlq_messages(source, max_messages=12) == 12
    assert dlq.replay_dlq_messages(source, max_messages=12) == 12
    assert dlq.replay_dlq_messages(source, dry_run=True) == 6
    got = read_to_end(kafka_bootstrap, source, at_least=24, timeout_s=20)
    assert sorted(headers_dict(m)[h.MESSAGE_ID].decode() for m in got) == sorted(f"m{i}" for i in range(24))


def test_loop_guard_refuses_records_replayed_too_often_unless_forced(kafka_bootstrap: str, admin: AdminClient) -> None:
    source = make_source(admin, kafka_bootstrap, partitions=1)
    dead_letter(kafka_bootstrap, source, 5, base_ms=int(time.time() * 1000), replay_count=3)
    dlq = DeadLetterQueue(bootstrap_servers=kafka_bootstrap)
    refused = dlq.replay(source)
    assert refused.replayed == 0 and refused.skipped_loop_guard == 5
    assert dlq.replay_dlq_messages(source, force=True) == 5
    got = read_to_end(kafka_bootstrap, source, at_least=5, timeout_s=20)
    assert {headers_dict(m)[h.REPLAY_COUNT] for m in got} == {b"4"}


def test_max_size_keeps_exactly_the_newest_100_of_250(kafka_bootstrap: str, admin: AdminClient) -> None:
    # Given 250 records over 3 partitions and an alert callback
    source = make_source(admin, kafka_bootstrap, partitions=3)
    dead_letter(kafka_bootstrap, source, 250, base_ms=int(time.time() * 1000) - 600_000, step_ms=1000)
    alerts: list[dict[str, object]] = []
    dlq = DeadLetterQueue(bootstrap_servers=kafka_bootstrap, alert_callback=alerts.append)
    # When the max size is enforced
    trimmed = dlq.enforce_max_size(source, 100)
    # Then the newest 100 remain and the counters say 150
    assert trimmed == 150 and dlq.trimmed_total == 150
    assert dlq.maintenance.trimmed_by_topic == {source + ".dlq": 150}
    assert dlq.stats(source, scan_limit=0)["total_messages"] == 100
    left = dlq.get_dlq_messages(source, limit=None)
    assert sorted(m.id for m in left) == sorted(f"m{i}" for i in range(150, 250))
    assert [a["type"] for a in alerts] == ["dlq_size"]
    assert alerts[0]["value"] == 250 and alerts[0]["threshold"] == 100
    assert {"severity", "timestamp", "message"} <= set(alerts[0])
    # and enforcing again trims nothing
    assert dlq.enforce_max_size(source, 100) == 0 and dlq.trimmed_total == 150


def test_purge_before_removes_only_older_records(kafka_bootstrap: str, admin: AdminClient) -> None:
    source = make_source(admin, kafka_bootstrap, partitions=3)
    base = int(time.time() * 1000) - 7_200_000
    dead_letter(kafka_bootstrap, source, 60, base_ms=base, step_ms=10)  # old: base .. base+590
    dead_letter(kafka_bootstrap, source, 40, base_ms=base + 3_600_000, step_ms=10, start=60)
    dlq = DeadLetterQueue(bootstrap_servers=kafka_bootstrap)
    assert dlq.purge_before(source, base + 1_800_000) == 60
    left = dlq.get_dlq_messages(source, limit=None)
    assert sorted(m.id for m in left) == sorted(f"m{i}" for i in range(60, 100))
    assert dlq.clear_dlq(source) == 40
    assert dlq.stats(source)["total_messages"] == 0


def test_retention_expiry_alert(kafka_bootstrap: str, admin: AdminClient) -> None:
    # Given a DLQ with a 1-day retention and records 23.5 h old
    source = create_topic(admin, unique_name("dlqexp"), 1)
    create_topic(admin, source + ".dlq", 1, {"retention.ms": str(86_400_000)})
    dead_letter(kafka_bootstrap, source, 3, base_ms=int(time.time() * 1000) - 84_600_000, step_ms=1)
    dead_letter(kafka_bootstrap, source, 2, base_ms=int(time.time() * 1000), start=3)
    got: list[dict[str, object]] = []
    dlq = DeadLetterQueue(bootstrap_servers=kafka_bootstrap, alert_callback=got.append)
    # When
    alerts = dlq.check_alerts(source, size_threshold=4, expiry_margin_ms=3_600_000)
    # Then
    assert {a["type"]: a["value"] for a in alerts} == {"dlq_size": 5, "dlq_retention_expiry": 3}
    assert got == alerts


@pytest.mark.slow
def test_spring_and_connect_dlqs_are_listed_and_replayed(kafka_bootstrap: str, admin: AdminClient) -> None:
    # Given a Spring DLT and a Connect DLQ written with raw confluent-kafka
    orders, spring_dlt, payments, connect_dlq = write_foreign(kafka_bootstrap, admin)
    dlq = DeadLetterQueue(bootstrap_servers=kafka_bootstrap)
    # When listed
    spring = dlq.get_dlq_messages(spring_dlt)
    connect = dlq.get_dlq_messages(connect_dlq)
    # Then the original coordinates and errors are read
    assert [(m.dialect, m.original_topic, m.original_partition, m.original_offset) for m in spring] == [
        ("spring", orders, 1, 1000 + i) for i in range(3)]
    assert spring[0].error_class == "org.springframework.kafka.listener.ListenerExecutionFailedException"
    assert spring[0].last_error == "amount must be positive"
    assert spring[0].extra["cause_class"] == "java.lang.IllegalArgumentException"
    assert [(m.dialect, m.original_topic, m.original_offset) for m in connect] == [
        ("connect", payments, 70 + i) for i in range(3)]
    assert connect[0].error_class == "org.apache.kafka.connect.errors.DataException"
    assert dlq.stats(connect_dlq)["topic_breakdown"] == {payments: 3}
    # When replayed, they go back to their original topics without the foreign error headers
    assert dlq.replay_dlq_messages(spring_dlt) == 3
    assert dlq.replay_dlq_messages(connect_dlq, errors="DataException") == 3
    back = read_to_end(kafka_bootstrap, orders, at_least=3, timeout_s=20)
    assert sorted(m.value() for m in back) == [b"s0", b"s1", b"s2"]
    hd = headers_dict(back[0])
    assert hd["trace"] == b"t-1" and hd[h.REPLAY_COUNT] == b"1"
    assert not [k for k in hd if k.startswith("kafka_dlt-")]
    pay = read_to_end(kafka_bootstrap, payments, at_least=3, timeout_s=20)
    assert sorted(m.value() for m in pay) == [b"c0", b"c1", b"c2"]
    assert not [k for k in headers_dict(pay[0]) if k.startswith("__connect.errors.")]


def test_raw_records_are_listed_and_replayed_only_with_to_topic(kafka_bootstrap: str, admin: AdminClient) -> None:
    raw = create_topic(admin, unique_name("legacy") + "-dead-letters", 1)
    target = create_topic(admin, unique_name("raw-target"), 1)
    p = Producer({"bootstrap.servers": kafka_bootstrap})
    for i in range(4):
        p.produce(raw, value=f"r{i}".encode(), headers=[("x-app", b"legacy")])
    p.flush(30)
    dlq = DeadLetterQueue(bootstrap_servers=kafka_bootstrap)
    listed = dlq.get_dlq_messages(raw)
    assert [(m.dialect, m.id) for m in listed] == [("raw", f"0:{i}") for i in range(4)]
    no_target = dlq.replay(raw)
    assert no_target.replayed == 0 and no_target.skipped_no_target == 4
    assert dlq.replay_dlq_messages(raw, to_topic=target) == 4
    assert sorted(m.value() for m in read_to_end(kafka_bootstrap, target, at_least=4)) == [b"r0", b"r1", b"r2", b"r3"]


def test_a_source_topic_is_never_mistaken_for_its_own_dlq(kafka_bootstrap: str, admin: AdminClient) -> None:
    source = create_topic(admin, unique_name("plain"), 1)
    p = Producer({"bootstrap.servers": kafka_bootstrap})
    p.produce(source, value=b"business record")
    p.flush(30)
    dlq = DeadLetterQueue(bootstrap_servers=kafka_bootstrap)
    assert dlq.dlq_topic(source) == source + ".dlq"
    assert dlq.get_dlq_messages(source) == []
    assert dlq.clear_dlq(source) == 0
    assert len(read_to_end(kafka_bootstrap, source, at_least=1)) == 1


def test_streams_and_karafka_dlqs_are_listed_and_replayed(kafka_bootstrap: str, admin: AdminClient) -> None:
    # Given a Kafka Streams (KIP-1034) DLQ and a Karafka DLQ written with raw confluent-kafka
    clicks = create_topic(admin, unique_name("clicks"), 2)
    carts = create_topic(admin, unique_name("carts"), 1)
    streams_dlq = create_topic(admin, unique_name("streams") + "-dlq", 1)
    karafka_dlq = create_topic(admin, unique_name("karafka") + "-dead-letter", 1)
    p = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
    for i in range(2):
        p.produce(streams_dlq, key=f"u{i}".encode(), value=f"st{i}".encode(), headers=[
            ("__streams.errors.exception", b"org.apache.kafka.common.errors.SerializationException"),
            ("__streams.errors.message", b"bad json"),
            ("__streams.errors.stacktrace", b"at Foo.bar(Foo.java:1)\n" * 2000),
            ("__streams.errors.topic", clicks.encode()),
            ("__streams.errors.partition", b"1"),
            ("__streams.errors.offset", str(500 + i).encode()),
        ])
        p.produce(karafka_dlq, value=f"ka{i}".encode(), headers=[
            ("source_topic", carts.encode()), ("source_partition", b"0"),
            ("source_offset", str(9 + i).encode()), ("source_consumer_group", b"cart-consumers"),
            ("source_attempts", b"3"),
        ])
    assert p.flush(30) == 0
    dlq = DeadLetterQueue(bootstrap_servers=kafka_bootstrap)
    # When listed
    st = dlq.get_dlq_messages(streams_dlq)
    ka = dlq.get_dlq_messages(karafka_dlq)
    # Then each dialect's coordinates and errors are read, stack traces bounded
    assert [(m.dialect, m.original_topic, m.original_partition, m.original_offset) for m in st] == [
        ("streams", clicks, 1, 500), ("streams", clicks, 1, 501)]
    assert st[0].error_class == "org.apache.kafka.common.errors.SerializationException"
    assert st[0].last_error == "bad json"
    assert st[0].stacktrace is not None and len(st[0].stacktrace.encode()) < 50_000
    assert [(m.dialect, m.original_topic, m.original_offset) for m in ka] == [("karafka", carts, 9), ("karafka", carts, 10)]
    assert ka[0].retry_count == 3
    # When replayed, they return to their original topics without the foreign headers
    assert dlq.replay_dlq_messages(streams_dlq) == 2
    assert dlq.replay_dlq_messages(karafka_dlq) == 2
    back = read_to_end(kafka_bootstrap, clicks, at_least=2, timeout_s=20)
    assert sorted(m.value() for m in back) == [b"st0", b"st1"]
    assert not [k for k in headers_dict(back[0]) if k.startswith("__streams.errors.")]
    assert sorted(m.value() for m in read_to_end(kafka_bootstrap, carts, at_least=2, timeout_s=20)) == [b"ka0", b"ka1"]


def test_maintenance_reads_sizes_through_a_shared_watermark_reader(kafka_bootstrap: str, admin: AdminClient) -> None:
    # Given a DLQ of 10 records and a watermark reader shared with the caller
    from kafka_reliable.dlq.reader import Offsets

    source = make_source(admin, kafka_bootstrap, partitions=1)
    dead_letter(kafka_bootstrap, source, 10, base_ms=int(time.time() * 1000) - 60_000)
    calls: list[str] = []
    with Offsets({"bootstrap.servers": kafka_bootstrap}) as shared:
        def reader(topic: str) -> dict[int, tuple[int, int]]:
            calls.append(topic)
            return shared.watermarks(topic)

        alerts: list[dict[str, object]] = []
        dlq = DeadLetterQueue(bootstrap_servers=kafka_bootstrap, watermarks=reader, alert_callback=alerts.append)
        # When sizes are checked and enforced
        checked = dlq.check_alerts(source, size_threshold=3)
        trimmed = dlq.enforce_max_size(source, 4)
        # Then the results are those of the consumer-per-call path, read through the shared reader
        assert [a["type"] for a in checked] == ["dlq_size"] and checked[0]["value"] == 10
        assert trimmed == 6 and dlq.enforce_max_size(source, 4) == 0
        assert calls and set(calls) == {source + ".dlq"}
        assert shared.watermarks(source + ".dlq")[0][1] - shared.watermarks(source + ".dlq")[0][0] == 4
