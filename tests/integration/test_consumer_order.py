"""ordering="key" on the real broker: per-key order through retries, a dead-lettered head, and
the parking state rebuilt from the retry topic after a restart."""

from __future__ import annotations

import json
import threading
from collections import defaultdict

from kafka_reliable import RetryConfig
from kafka_reliable import headers as h
from kafka_reliable.consumer import ConsumerRecord, Retry
from tests.helpers.consumer import FlakyError, keyed, new_consumer, produce, running
from tests.helpers.kafka import headers_dict, read_to_end, unique_name
from tests.helpers.waits import wait_until


def test_key_order_is_kept_through_retries_and_a_dead_lettered_head(kafka_bootstrap: str, new_topic) -> None:
    # Given 20 keys x 10 records; #2 of every key fails twice, #5 of keys 0-4 always fails (DLQ),
    # #7 of even keys asks for one quick retry
    topic = new_topic(partitions=2)
    produce(kafka_bootstrap, topic, keyed(20, 10))
    calls: dict[int, list[tuple[int, int]]] = defaultdict(list)
    ok: dict[int, list[int]] = defaultdict(list)
    lock = threading.Lock()

    def handler(rec: ConsumerRecord) -> None:
        k, s = rec.value["k"], rec.value["s"]
        with lock:
            calls[k].append((s, rec.attempt))
        if s == 2 and rec.attempt < 2:
            raise FlakyError("transient")
        if s == 5 and k < 5:
            raise FlakyError("permanent")
        if s == 7 and k % 2 == 0 and rec.attempt == 0:
            raise Retry("quick", delay_ms=50)
        with lock:
            ok[k].append(s)

    consumer = new_consumer(kafka_bootstrap, topic, ordering="key", group="ord",
                            retry_config=RetryConfig(max_retries=2, initial_delay_ms=150, max_delay_ms=300))
    # When the consumer handles them
    with running(consumer, handler):
        wait_until(lambda: sum(map(len, ok.values())) == 195 and consumer.stats.counts["dead_lettered"] == 5, 60,
                   lambda: f"{sum(map(len, ok.values()))} handled, {consumer.stats.counts}")
    # Then every key saw its records in order, failures retried in place, followers after them
    for k in range(20):
        seqs = [s for s, _ in calls[k]]
        assert seqs == sorted(seqs), (k, calls[k])
        assert ok[k] == [s for s in range(10) if not (s == 5 and k < 5)], (k, ok[k])
        assert [a for s, a in calls[k] if s == 2] == [0, 1, 2]
    assert consumer.stats.counts["parked"] > 0
    # and the dead-lettered heads are in the DLQ; their followers were handled after them
    dlq = read_to_end(kafka_bootstrap, f"{topic}.ord.dlq", at_least=5)
    assert sorted(json.loads(m.value())["k"] for m in dlq) == [0, 1, 2, 3, 4]
    assert {headers_dict(m)[h.DLQ_REASON] for m in dlq} == {b"retries_exhausted"}


def test_parked_keys_survive_a_restart(kafka_bootstrap: str, new_topic) -> None:
    # Given 5 keys x 6 records; the first consumer retries #1 of every key after 100 ms, then after
    # 1.5 s (so its newest copy sits in the retry partition behind the parked followers)
    topic = new_topic(partitions=1)
    group = unique_name("ord")
    produce(kafka_bootstrap, topic, keyed(5, 6))
    first: dict[int, list[int]] = defaultdict(list)

    def handler1(rec: ConsumerRecord) -> None:
        first[rec.value["k"]].append(rec.value["s"])
        if rec.value["s"] == 1 and rec.attempt < 2:
            raise Retry("later", delay_ms=100 if rec.attempt == 0 else 1_500)

    c1 = new_consumer(kafka_bootstrap, topic, group=group, ordering="key")
    with running(c1, handler1):
        # When #2-#5 of every key are parked behind #1 and the consumer stops before #1 is due
        wait_until(lambda: c1.stats.counts["parked"] == 20 and c1.stats.counts["retried"] == 10, 20,
                   lambda: f"{c1.stats.counts}")
    assert all(first[k] == [0, 1, 1] for k in range(5)), first
    # Then a new consumer rebuilds the parking from the retry topic and keeps each key's order
    second: dict[int, list[tuple[int, int]]] = defaultdict(list)

    def handler2(rec: ConsumerRecord) -> None:
        second[rec.value["k"]].append((rec.value["s"], rec.attempt))

    c2 = new_consumer(kafka_bootstrap, topic, group=group, ordering="key")
    with running(c2, handler2):
        wait_until(lambda: sum(map(len, second.values())) == 25, 30, lambda: f"{dict(second)}")
    for k in range(5):
        assert second[k] == [(1, 2), (2, 0), (3, 0), (4, 0), (5, 0)], second[k]
