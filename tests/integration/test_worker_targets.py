"""The retry worker and a target it can never write: a ``.retry`` record naming an illegal topic
goes to ``.dlq`` at once (reason ``poison``) and the committed offset moves past it (a restart
republishes nothing again). A missing-but-legal target: ``test_retry_worker.py``
(``test_exhausted_retries_go_to_dlq``)."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer
from prometheus_client import CollectorRegistry

from kafka_reliable import headers as h
from kafka_reliable.worker import WorkerConfig
from tests.helpers.kafka import headers_dict, read_to_end, unique_name
from tests.integration.worker_helpers import (
    companions,
    group_committed,
    now_ms,
    running,
    wait_for,
    write_retry,
)

MODES = pytest.mark.parametrize("transactional", [False, True], ids=["at_least_once", "transactional"])


def ids_until(bootstrap: str, topic: str, last_id: str, timeout_s: float) -> list[str]:
    """Message ids of a one-partition topic (read_committed), in order, up to ``last_id``."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_name("reader"),
                  "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
    c.subscribe([topic])
    ids: list[str] = []
    deadline = time.monotonic() + timeout_s
    try:
        while last_id not in ids:
            assert time.monotonic() < deadline, f"{last_id} not in {topic} after {timeout_s}s: {ids}"
            ids.extend(headers_dict(m)[h.MESSAGE_ID].decode() for m in c.consume(500, timeout=0.2)
                       if m.error() is None)
    finally:
        c.close()
    return ids


@MODES
def test_illegal_target_is_dead_lettered_at_once_and_commits_move_past_it(
    kafka_bootstrap: str, new_topic, transactional: bool
) -> None:
    # Given: in one partition, a good record, one naming the illegal topic "bad topic!", a good one
    source = new_topic(partitions=1)
    companions(kafka_bootstrap, source)
    write_retry(kafka_bootstrap, source, [("before", now_ms(), 0)])
    write_retry(kafka_bootstrap, source, [("bad", now_ms(), 0)], target="bad topic!")
    write_retry(kafka_bootstrap, source, [("after", now_ms(), 0)])
    group, registry = unique_name("g"), CollectorRegistry()
    cfg = WorkerConfig(bootstrap_servers=kafka_bootstrap, topics=(source,), group_id=group,
                       commit_interval_ms=50, transactional=transactional)
    # When
    with running(cfg, registry) as worker:
        dlq = read_to_end(kafka_bootstrap, f"{source}.dlq", at_least=1, timeout_s=15)
        wait_for(lambda: group_committed(kafka_bootstrap, group, f"{source}.retry", 1) == [3], 15,
                 "the committed offset past all three records")
        wait_for(lambda: worker.counts["republished"] + worker.counts["dead_lettered"] == 3, 5, "the counts")
        counts = dict(worker.counts)
    # Then: dead-lettered once, as poison, with the bad name in the error message
    assert [m.key() for m in dlq] == [b"bad"]
    hd = headers_dict(dlq[0])
    assert hd[h.DLQ_REASON] == b"poison" and hd[h.ERROR_RETRIABLE] == b"false"
    assert hd[h.ORIGINAL_TOPIC] == source.encode() and hd[h.MESSAGE_ID] == b"bad"
    assert b"'bad topic!'" in hd[h.ERROR_MESSAGE]
    assert counts["republished"] == 2 and counts["dead_lettered"] == 1 and counts["failed"] == 0
    assert registry.get_sample_value("kafka_reliable_retry_dead_lettered_total",
                                     {"topic": source, "reason": "poison"}) == 1
    # and a restart (same group) republishes nothing again: only a new record follows
    write_retry(kafka_bootstrap, source, [("sentinel", now_ms(), 0)])
    with running(cfg) as again:
        ids = ids_until(kafka_bootstrap, source, "sentinel", timeout_s=20)
        wait_for(lambda: again.counts["republished"] == 1, 5, "the sentinel's ack")
        counts_again = dict(again.counts)
    assert ids == ["before", "after", "sentinel"]
    assert counts_again == {"republished": 1, "retried": 0, "dead_lettered": 0, "poison": 0, "failed": 0}



def test_companion_topic_target_goes_straight_to_dlq_and_nothing_is_created(
    kafka_bootstrap: str, new_topic, admin
) -> None:
    # Given: .retry records whose original.topic is a companion topic (its own .retry, its .dlq,
    # a consumer group's retry topic) between two good records
    source = new_topic(partitions=1)
    companions(kafka_bootstrap, source)
    bad = {"own-retry": f"{source}.retry", "own-dlq": f"{source}.dlq", "group-retry": f"{source}.g1.retry"}
    write_retry(kafka_bootstrap, source, [("before", now_ms(), 0)])
    for mid, target in bad.items():
        write_retry(kafka_bootstrap, source, [(mid, now_ms(), 0)], target=target)
    write_retry(kafka_bootstrap, source, [("after", now_ms(), 0)])
    group = unique_name("g")
    cfg = WorkerConfig(bootstrap_servers=kafka_bootstrap, topics=(source,), group_id=group, commit_interval_ms=50)
    # When
    with running(cfg) as worker:
        wait_for(lambda: group_committed(kafka_bootstrap, group, f"{source}.retry", 1) == [5], 20,
                 "the committed offset past all five records")
        counts = dict(worker.counts)
    # Then: each bad one dead-lettered once as poison; the .retry topic got nothing back;
    # no companion of a companion exists
    dlq = read_to_end(kafka_bootstrap, f"{source}.dlq")
    assert sorted(m.key().decode() for m in dlq) == sorted(bad)
    for m in dlq:
        hd = headers_dict(m)
        assert hd[h.DLQ_REASON] == b"poison" and hd[h.ORIGINAL_TOPIC] == source.encode()
        assert b"companion topic" in hd[h.ERROR_MESSAGE]
    assert [m.key() for m in read_to_end(kafka_bootstrap, f"{source}.retry")] == [
        b"before", b"own-retry", b"own-dlq", b"group-retry", b"after"]
    assert ids_until(kafka_bootstrap, source, "after", timeout_s=10) == ["before", "after"]
    assert counts["republished"] == 2 and counts["dead_lettered"] == 3 and counts["failed"] == 0
    names = set(admin.list_topics(timeout=10).topics)
    assert not {n for n in names if n.startswith(f"{source}.") and n.count(".") > source.count(".") + 1}
