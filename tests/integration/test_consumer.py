"""ReliableConsumer on the real broker: a flaky handler, never early, no head-of-line blocking,
poison and non-retriable records, group isolation, two members splitting the work."""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable

import pytest
from confluent_kafka.admin import AdminClient

from kafka_reliable import headers as h
from kafka_reliable.consumer import ConsumerRecord, Retry
from tests.helpers.consumer import (
    FlakyError,
    json_items,
    new_consumer,
    produce,
    running,
)
from tests.helpers.kafka import create_topic, headers_dict, read_to_end, topic_count, unique_name
from tests.helpers.waits import wait_until


def now_ms() -> float:
    return time.time() * 1000


# ---- tests ------------------------------------------------------------------------------

def test_flaky_handler_every_record_handled_once_and_1pct_in_the_dlq(kafka_bootstrap: str, new_topic) -> None:
    # Given 2,000 records; the handler fails the first two attempts of 10% and always for 1%
    n = 2_000
    topic = new_topic(partitions=4)
    produce(kafka_bootstrap, topic, json_items(n))
    consumer = new_consumer(kafka_bootstrap, topic, group="billing")
    ok: Counter[int] = Counter()
    early: list[tuple[int, float, int]] = []
    calls: Counter[int] = Counter()
    wrong: list[ConsumerRecord] = []
    lock = threading.Lock()

    def handler(rec: ConsumerRecord) -> None:
        t = now_ms()
        i = rec.value["i"]
        with lock:
            calls[i] += 1
            if rec.due_at_ms is not None and t < rec.due_at_ms:
                early.append((i, t, rec.due_at_ms))
            if rec.attempt != calls[i] - 1 or rec.topic != topic or rec.key != f"k{i}".encode():
                wrong.append(rec)
        if i % 100 == 5:
            raise FlakyError(f"always failing {i}")
        if i % 10 == 0 and rec.attempt < 2:
            raise FlakyError(f"transient {i}")
        with lock:
            ok[i] += 1

    always = {i for i in range(n) if i % 100 == 5}
    # When the consumer runs until every record is handled or dead-lettered
    with running(consumer, handler):
        wait_until(lambda: len(ok) == n - len(always) and consumer.stats.counts["dead_lettered"] == len(always),
                   60, lambda: f"{len(ok)} handled, {consumer.get_stats()['messages_dead_lettered']} dead-lettered")
        stats = consumer.get_stats()
    # Then every other record was handled successfully exactly once; no retry came early
    assert set(ok) == set(range(n)) - always
    assert max(ok.values()) == 1
    assert early == []
    assert wrong == []
    assert stats["messages_retried"] == 2 * (n // 10) + 3 * len(always)
    assert stats["retry_stats"]["successful_retries"] == n // 10
    assert all(calls[i] == 4 for i in always)  # max_retries=3: first try + 3 retries
    # and the 1% are in the group's DLQ with the header contract and the raw bytes
    dlq = read_to_end(kafka_bootstrap, f"{topic}.billing.dlq", at_least=len(always))
    assert len(dlq) == len(always)
    for m in dlq:
        hd = headers_dict(m)
        i = json.loads(m.value())["i"]
        assert i in always and m.value() == json.dumps({"i": i}).encode() and m.key() == f"k{i}".encode()
        assert hd[h.DLQ_REASON] == b"retries_exhausted"
        assert hd[h.ATTEMPT] == b"4"
        assert hd[h.ORIGINAL_TOPIC] == topic.encode()
        assert {h.ORIGINAL_PARTITION, h.ORIGINAL_OFFSET, h.ORIGINAL_TIMESTAMP, h.FIRST_FAILURE_AT,
                h.LAST_FAILURE_AT, h.MESSAGE_ID} <= set(hd)
        assert hd[h.ERROR_CLASS] == f"{FlakyError.__module__}.FlakyError".encode()
        assert hd[h.ERROR_MESSAGE] == f"always failing {i}".encode()
        assert hd[h.CONSUMER_GROUP] == b"billing"
        assert m.partition() == int(hd[h.ORIGINAL_PARTITION])
    assert stats["messages_pending"] == 0
    assert stats["latency_stats"]["samples"] > 0 and stats["lateness_stats"]["samples"] > 0


@pytest.mark.slow
def test_a_long_delay_does_not_hold_up_a_short_one_behind_it(kafka_bootstrap: str, new_topic) -> None:
    # Given one partition: record A retried after 8 s, then record B retried after 100 ms;
    # max.poll.interval.ms (7 s) is shorter than A's wait
    topic = new_topic(partitions=1)
    produce(kafka_bootstrap, topic, [(b"a", b'"A"'), (b"b", b'"B"')])
    seen: list[tuple[str, int, float, int | None]] = []

    def handler(rec: ConsumerRecord) -> None:
        seen.append((rec.value, rec.attempt, now_ms(), rec.due_at_ms))
        if rec.attempt == 0:
            raise Retry("later", delay_ms=8_000 if rec.value == "A" else 100)

    consumer = new_consumer(kafka_bootstrap, topic, consumer_config={
        "session_timeout_ms": 6000, "heartbeat_interval_ms": 1000, "max_poll_interval_ms": 7000})
    with running(consumer, handler):
        # When both are in the retry partition, A ahead of B
        wait_until(lambda: any(v == "B" and a == 1 for v, a, _, _ in seen), 10, lambda: f"seen {seen}")
        # Then B was handed over ~100 ms after its failure while A still waits
        b_fail = next(t for v, a, t, _ in seen if v == "B" and a == 0)
        b_retry, b_due = next((t, d) for v, a, t, d in seen if v == "B" and a == 1)
        assert b_due is not None and b_due <= b_retry < b_fail + 2_000
        assert not any(v == "A" and a == 1 for v, a, _, _ in seen)
        assert consumer.get_health_status()["status"] in ("healthy", "degraded")
        wait_until(lambda: any(v == "A" and a == 1 for v, a, _, _ in seen), 15, lambda: f"seen {seen}")
    # and A was handed over not before its due time
    a_fail = next(t for v, a, t, _ in seen if v == "A" and a == 0)
    a_retry, a_due = next((t, d) for v, a, t, d in seen if v == "A" and a == 1)
    assert a_due is not None and a_due <= a_retry and a_retry >= a_fail + 8_000 - 5
    assert consumer.stats.counts["early"] == 0
    # and the member stayed in the group while A waited (polling, never sleeping): one assignment
    assert consumer.get_stats()["rebalances"] == 1
    assert [v for v, _, _, _ in seen] == ["A", "B", "B", "A"]


def test_poison_and_non_retriable_records_go_to_the_dlq_and_nothing_else_waits(kafka_bootstrap: str,
                                                                                new_topic) -> None:
    # Given a valid record, an undeserializable one, a record the handler rejects, and valid ones after
    topic = new_topic(partitions=1)
    poison = b"\xff\x00{not json"
    produce(kafka_bootstrap, topic, [(b"1", b'{"i": 1}'), (b"p", poison), (b"bad", b'{"bad": true}'),
                                     *[(str(i).encode(), json.dumps({"i": i}).encode()) for i in range(2, 50)]])
    handled: list[int] = []

    def handler(rec: ConsumerRecord) -> None:
        if rec.value.get("bad"):
            raise ValueError("amount is negative")
        handled.append(rec.value["i"])

    # and an unreadable record in the group's retry topic (created beforehand, as a first run would)
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    create_topic(admin, f"{topic}.pay.retry", 1)
    produce(kafka_bootstrap, f"{topic}.pay.retry", [(b"r", b'{"i": 99}')])
    consumer = new_consumer(kafka_bootstrap, topic, group="pay", non_retriable_exceptions=(ValueError,))
    with running(consumer, handler):
        wait_until(lambda: len(handled) == 49 and consumer.stats.counts["dead_lettered"] == 3, 30,
                   lambda: f"{len(handled)} handled, stats {consumer.stats.counts}")
    # Then the records after them were handled in order, once each
    assert handled == list(range(1, 50))
    dlq = read_to_end(kafka_bootstrap, f"{topic}.pay.dlq", at_least=3)
    by_key = {m.key(): m for m in dlq}
    assert {k: headers_dict(m)[h.DLQ_REASON] for k, m in by_key.items()} == {
        b"p": b"poison", b"bad": b"non_retriable", b"r": b"poison"}
    assert by_key[b"r"].value() == b'{"i": 99}'
    assert b"unreadable retry record" in headers_dict(by_key[b"r"])[h.ERROR_MESSAGE]
    by_reason = {headers_dict(m)[h.DLQ_REASON]: m for m in dlq if m.key() != b"r"}
    p = by_reason[b"poison"]
    assert p.value() == poison and p.key() == b"p" and headers_dict(p)[h.ORIGINAL_OFFSET] == b"1"
    assert headers_dict(p)[h.ERROR_CLASS] == b"PoisonRecordError"
    nr = headers_dict(by_reason[b"non_retriable"])
    assert nr[h.ERROR_CLASS] == b"ValueError" and nr[h.ERROR_MESSAGE] == b"amount is negative"
    assert nr[h.ATTEMPT] == b"1" and nr[h.ERROR_RETRIABLE] == b"false"
    # and the retry topic was never written to
    assert topic_count({"bootstrap.servers": kafka_bootstrap}, f"{topic}.pay.retry") == 1


def test_a_group_never_sees_the_retries_of_another_group(kafka_bootstrap: str, new_topic) -> None:
    # Given two groups on one topic; only group A's handler fails (every 5th record, once)
    topic = new_topic(partitions=2)
    produce(kafka_bootstrap, topic, json_items(200))
    seen_a: Counter[int] = Counter()
    seen_b: list[tuple[int, int]] = []

    def handler_a(rec: ConsumerRecord) -> None:
        seen_a[rec.value["i"]] += 1
        if rec.value["i"] % 5 == 0 and rec.attempt == 0:
            raise FlakyError("once")

    group_a, group_b = unique_name("ga"), unique_name("gb")
    a = new_consumer(kafka_bootstrap, topic, group=group_a)
    b = new_consumer(kafka_bootstrap, topic, group=group_b)
    with running(a, handler_a), running(b, lambda rec: seen_b.append((rec.value["i"], rec.attempt))):
        wait_until(lambda: a.stats.counts["successful_retries"] == 40 and len(seen_b) >= 200, 30,
                   lambda: f"A {a.stats.counts}, B saw {len(seen_b)}")
    # Then B handled each record exactly once, never as a retry
    assert sorted(seen_b) == [(i, 0) for i in range(200)]
    assert sum(seen_a.values()) == 240
    assert a.retry_topic(topic) == f"{topic}.{group_a}.retry"
    conf = {"bootstrap.servers": kafka_bootstrap}
    assert topic_count(conf, f"{topic}.{group_a}.retry") == 40
    assert topic_count(conf, f"{topic}.{group_b}.retry") == 0


def test_two_consumers_in_one_group_split_the_work(kafka_bootstrap: str, new_topic) -> None:
    # Given two members of one group, both assigned before any record exists
    topic = new_topic(partitions=4)
    group = unique_name("g")
    ok: dict[str, Counter[int]] = {"a": Counter(), "b": Counter()}

    def handler_for(name: str) -> Callable[[ConsumerRecord], None]:
        def handler(rec: ConsumerRecord) -> None:
            if rec.value["i"] % 10 == 0 and rec.attempt == 0:
                raise FlakyError("once")
            ok[name][rec.value["i"]] += 1
        return handler

    a = new_consumer(kafka_bootstrap, topic, group=group)
    b = new_consumer(kafka_bootstrap, topic, group=group)
    with running(a, handler_for("a")), running(b, handler_for("b")):
        wait_until(lambda: len(a.assignment()) == 4 and len(b.assignment()) == 4, 30,
                   lambda: f"assignments {a.assignment()} / {b.assignment()}")
        # source partition p and retry partition p stay together (range assignor)
        for c in (a, b):
            parts = c.assignment()
            assert {p for t, p in parts if t == topic} == {p for t, p in parts if t != topic}
        # When 1,000 records arrive, 10% failing once
        produce(kafka_bootstrap, topic, json_items(1_000))
        wait_until(lambda: len(ok["a"] + ok["b"]) == 1_000, 30, lambda: f"{len(ok['a'] + ok['b'])} handled")
    # Then both handled a share and every record was handled successfully exactly once
    both = ok["a"] + ok["b"]
    assert ok["a"] and ok["b"]
    assert set(both) == set(range(1_000)) and max(both.values()) == 1


def test_dlq_replay_lands_back_in_this_group_only(kafka_bootstrap: str, new_topic) -> None:
    # Given group A dead-letters a record its handler rejects; group B handles everything
    from kafka_reliable import DeadLetterQueue

    topic = new_topic(partitions=2)
    produce(kafka_bootstrap, topic, json_items(20))
    fixed = threading.Event()
    seen_a: list[tuple[int, int]] = []
    seen_b: list[int] = []

    def handler_a(rec: ConsumerRecord) -> None:
        if rec.value["i"] == 7 and not fixed.is_set():
            raise ValueError("unknown product")
        seen_a.append((rec.value["i"], rec.attempt))

    group_a, group_b = unique_name("ga"), unique_name("gb")
    a = new_consumer(kafka_bootstrap, topic, group=group_a, non_retriable_exceptions=(ValueError,))
    b = new_consumer(kafka_bootstrap, topic, group=group_b)
    with running(a, handler_a), running(b, lambda rec: seen_b.append(rec.value["i"])):
        wait_until(lambda: len(seen_a) == 19 and a.stats.counts["dead_lettered"] == 1 and len(seen_b) == 20, 30,
                   lambda: f"A {seen_a}, B {seen_b}")
        # When the bug is fixed and the group's DLQ is replayed (default target: the group's retry topic)
        fixed.set()
        dlq = DeadLetterQueue(bootstrap_servers=kafka_bootstrap)
        assert dlq.replay_dlq_messages(a.dlq_topic(topic)) == 1
        wait_until(lambda: (7, 0) in seen_a, 30, lambda: f"A {seen_a}")
    # Then only group A handled it again, once
    assert sorted(i for i, _ in seen_a) == list(range(20))
    assert sorted(seen_b) == list(range(20))


@pytest.mark.slow
def test_a_member_joining_mid_run_takes_over_cleanly(kafka_bootstrap: str, new_topic) -> None:
    # Given one member working through 2,000 records (10% failing once, retried after 300 ms)
    topic = new_topic(partitions=4)
    group = unique_name("g")
    produce(kafka_bootstrap, topic, json_items(2_000))
    ok: Counter[int] = Counter()
    by: dict[str, set[int]] = {"a": set(), "b": set()}
    lock = threading.Lock()

    def handler_for(name: str) -> Callable[[ConsumerRecord], None]:
        def handler(rec: ConsumerRecord) -> None:
            if rec.value["i"] % 10 == 0 and rec.attempt == 0:
                raise Retry("once", delay_ms=300)
            time.sleep(0.003)  # ~6 s of work for one member: the second joins with most of it left
            with lock:
                ok[rec.value["i"]] += 1
                by[name].add(rec.value["i"])
        return handler

    small_polls = {"max_poll_records": 50}
    a = new_consumer(kafka_bootstrap, topic, group=group, consumer_config=small_polls)
    with running(a, handler_for("a")):
        wait_until(lambda: len(ok) >= 200, 30, lambda: f"{len(ok)} handled")
        # When a second member joins mid-run (eager rebalance: A commits what it finished)
        b = new_consumer(kafka_bootstrap, topic, group=group, consumer_config=small_polls)
        with running(b, handler_for("b")):
            wait_until(lambda: len(ok) == 2_000, 60, lambda: f"{len(ok)} handled")
    # Then nothing was lost, nothing handled twice, and B took a share
    assert set(ok) == set(range(2_000))
    assert max(ok.values()) == 1, [i for i, c in ok.items() if c > 1][:10]
    assert by["b"]


def test_a_full_look_ahead_pauses_the_retry_partitions_and_loses_nothing(kafka_bootstrap: str, new_topic) -> None:
    # Given a look-ahead of 10 records and 1,000 records that all ask for a retry in 1 s
    n = 1_000
    topic = new_topic(partitions=2)
    produce(kafka_bootstrap, topic, json_items(n))
    retried: Counter[int] = Counter()
    early: list[int] = []

    def handler(rec: ConsumerRecord) -> None:
        if rec.attempt == 0:
            raise Retry("later", delay_ms=1_000)
        if rec.due_at_ms is None or now_ms() < rec.due_at_ms:
            early.append(rec.value["i"])
        retried[rec.value["i"]] += 1

    consumer = new_consumer(kafka_bootstrap, topic, max_pending=10)
    peak = 0

    def all_back() -> bool:
        nonlocal peak
        peak = max(peak, consumer.get_stats()["messages_pending"])
        return len(retried) == n

    with running(consumer, handler):
        wait_until(all_back, 60, lambda: f"{len(retried)} retried, {consumer.get_stats()}")
    # Then every retry came back once and on time, and never more than 10 waited in memory
    assert max(retried.values()) == 1 and early == []
    assert peak <= 10, peak


def test_a_dlq_write_that_fails_holds_only_its_own_offset_until_it_succeeds(kafka_bootstrap: str,
                                                                           new_topic) -> None:
    # Given a group DLQ that refuses records over 2,000 bytes, and an 8 KB record the handler rejects
    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

    topic = new_topic(partitions=1)
    group = unique_name("g")
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    dlq_topic = f"{topic}.{group}.dlq"
    create_topic(admin, dlq_topic, 1, {"max.message.bytes": "2000"})
    big = json.dumps({"i": 1, "big": os.urandom(4_000).hex()}).encode()  # incompressible
    produce(kafka_bootstrap, topic, [(b"0", b'{"i": 0}'), (b"1", big),
                                     *[(str(i).encode(), json.dumps({"i": i}).encode()) for i in range(2, 22)]])
    handled: list[int] = []

    def handler(rec: ConsumerRecord) -> None:
        if "big" in rec.value:
            raise ValueError("too big to process")
        handled.append(rec.value["i"])

    def committed() -> int:
        c = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": group})
        try:
            return c.committed([TopicPartition(topic, 0)], timeout=10)[0].offset
        finally:
            c.close()

    consumer = new_consumer(kafka_bootstrap, topic, group=group, non_retriable_exceptions=(ValueError,))
    with running(consumer, handler):
        # When the DLQ write keeps failing
        wait_until(lambda: len(handled) == 21 and consumer.get_stats()["writes_failing"] == 1, 30,
                   lambda: f"{handled}, {consumer.get_stats()['writes_failing']}")
        # Then the other records were handled and the commit stops just before the refused record
        wait_until(lambda: committed() == 1, 10, lambda: f"committed {committed()}")
        # and once the DLQ takes it, it is dead-lettered byte for byte and the commit moves on
        res = ConfigResource(ConfigResource.Type.TOPIC, dlq_topic, incremental_configs=[
            ConfigEntry("max.message.bytes", "1000000", incremental_operation=AlterConfigOpType.SET)])
        admin.incremental_alter_configs([res])[res].result(30)
        wait_until(lambda: consumer.stats.counts["dead_lettered"] == 1, 30, lambda: f"{consumer.get_stats()}")
        wait_until(lambda: committed() == 22, 10, lambda: f"committed {committed()}")
    assert handled == [0, *range(2, 22)]
    [m] = read_to_end(kafka_bootstrap, dlq_topic, at_least=1)
    assert m.value() == big and headers_dict(m)[h.DLQ_REASON] == b"non_retriable"
