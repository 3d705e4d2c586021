"""The retry worker on the real broker: never early, no head-of-line blocking, crash safety,
exhaustion and poison records to the DLQ, scaling out in one group."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import Producer
from prometheus_client import CollectorRegistry

from kafka_reliable import headers as h
from kafka_reliable.config import RetryConfig, TopicNaming
from kafka_reliable.worker import WorkerConfig
from tests.helpers.kafka import headers_dict, read_to_end, unique_name
from tests.helpers.ports import free_port
from tests.integration.worker_helpers import (
    companions,
    group_committed,
    high_watermarks,
    now_ms,
    percentile,
    read_committed_all,
    read_ids,
    retry_headers,
    running,
    wait_for,
    write_retry,
)

REPO = Path(__file__).resolve().parents[2]


# ---- tests ---------------------------------------------------------------------------

@pytest.mark.slow
def test_never_early_1000_records_over_5s(kafka_bootstrap: str, new_topic) -> None:
    # Given: a source topic stamping broker arrival time, 1,000 records due over 5 s, random order
    source = new_topic(partitions=4, config={"message.timestamp.type": "LogAppendTime"})
    companions(kafka_bootstrap, source)
    start = now_ms() + 1_500
    rnd = random.Random(11)
    due = {f"m{i}": start + rnd.randrange(0, 5_000) for i in range(1_000)}
    write_retry(kafka_bootstrap, source, [(mid, d, rnd.randrange(4)) for mid, d in due.items()])
    # When
    with running(WorkerConfig(bootstrap_servers=kafka_bootstrap, topics=(source,), group_id=unique_name("g"))):
        got = read_to_end(kafka_bootstrap, source, at_least=1_000, timeout_s=30)
    # Then: every record arrived at or after its due time
    arrival = {headers_dict(m)[h.MESSAGE_ID].decode(): m.timestamp()[1] for m in got}
    assert set(arrival) == set(due)
    early = [mid for mid in due if arrival[mid] < due[mid]]
    assert early == []
    lateness = [arrival[mid] - due[mid] for mid in due]
    print(f"\nlateness over 1000 records: p50={percentile(lateness, 0.5):.0f} ms "
          f"p99={percentile(lateness, 0.99):.0f} ms max={max(lateness)} ms")


@pytest.mark.slow
def test_no_head_of_line_blocking_and_contiguous_commit(kafka_bootstrap: str, new_topic) -> None:
    # Given: in ONE partition, a record due in 6 s ahead of one due in 200 ms
    source = new_topic(partitions=1)
    companions(kafka_bootstrap, source)
    group = unique_name("g")
    t0 = now_ms()
    write_retry(kafka_bootstrap, source, [("slow", t0 + 6_000, 0), ("fast", t0 + 200, 0)], ts_ms=t0 - 60_000)
    cfg = WorkerConfig(bootstrap_servers=kafka_bootstrap, topics=(source,), group_id=group, commit_interval_ms=50)
    with running(cfg) as worker:
        # When
        first = read_to_end(kafka_bootstrap, source, at_least=1, timeout_s=5)
        fast_seen_ms = now_ms()
        wait_for(lambda: worker.counts["republished"] == 1, 3, "the fast record's ack")
        # a commit after that ack stays at offset 0: the slow one is not acknowledged, nothing skipped
        wait_for(lambda: group_committed(kafka_bootstrap, group, f"{source}.retry", 1) == [0], 3, "commit 0")
        republished_at_commit_0 = worker.counts["republished"]
        both = read_to_end(kafka_bootstrap, source, at_least=2, timeout_s=15)
        wait_for(lambda: group_committed(kafka_bootstrap, group, f"{source}.retry", 1) == [2], 5, "commit 2")
    # Then: the 200 ms record came first and long before the 6 s one
    assert [m.key() for m in first] == [b"fast"]
    assert fast_seen_ms < t0 + 4_000
    assert republished_at_commit_0 == 1
    assert [m.key() for m in both] == [b"fast", b"slow"]
    # and the record is kept byte-for-byte: key, value, timestamp, user headers, message id
    m = both[1]
    assert m.value() == b"value-slow" and m.timestamp()[1] == t0 - 60_000
    assert m.headers() == [("app", b"\x00raw\xff"), (h.MESSAGE_ID, b"slow"), (h.ATTEMPT, b"1")]


def _worker_cmd(bootstrap: str, source: str, group: str, transactional: bool) -> list[str]:
    cmd = [sys.executable, "-m", "kafka_reliable.worker", "--bootstrap-servers", bootstrap,
           "--topics", source, "--group", group, "--max-pending", "2000"]
    return cmd + (["--transactional"] if transactional else [])


def _start_worker(cmd: list[str], instance: str, log_path: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "KAFKA_RELIABLE_INSTANCE_ID": instance, "PYTHONPATH": str(REPO)}
    with open(log_path, "ab") as log:
        return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)


@pytest.mark.slow
@pytest.mark.parametrize("transactional", [False, True], ids=["at_least_once", "transactional"])
def test_crash_safety_sigkill_halfway_through_20000(
    kafka_bootstrap: str, new_topic, transactional: bool, tmp_path: Path
) -> None:
    # Given: 20,000 records due over ~4 s in 4 partitions, a worker process
    source = new_topic(partitions=4)
    companions(kafka_bootstrap, source)
    group, n = unique_name("g"), 20_000
    t0 = now_ms() + 1_500
    write_retry(kafka_bootstrap, source, [(f"m{i}", t0 + i * 4_000 // n, i % 4) for i in range(n)])
    cmd = _worker_cmd(kafka_bootstrap, source, group, transactional)
    log_path = tmp_path / "worker.log"
    proc = _start_worker(cmd, "w1", log_path)
    try:
        # When: SIGKILL once about half has reached the topic, then start again
        wait_for(lambda: sum(high_watermarks(kafka_bootstrap, source, 4)) >= n // 2, 40, "half republished")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        at_kill = sum(high_watermarks(kafka_bootstrap, source, 4))
        proc = _start_worker(cmd, "w1", log_path)
        ends = high_watermarks(kafka_bootstrap, f"{source}.retry", 4)
        wait_for(lambda: group_committed(kafka_bootstrap, group, f"{source}.retry", 4) == ends, 45,
                 "every .retry offset committed")
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(20)
    finally:
        if proc.poll() is None:
            proc.kill()
    # Then: no message id lost; duplicates only in at-least-once mode
    ids = read_ids(kafka_bootstrap, source, n, read_committed=True)
    counts = Counter(ids)
    lost = n - len(counts)
    duplicated = len(ids) - len(counts)
    mode = "transactional" if transactional else "at-least-once"
    print(f"\ncrash test ({mode}): killed at {at_kill}/{n} in topic; lost={lost} duplicated={duplicated}")
    assert code == 0, log_path.read_text()[-3000:]
    assert set(counts) == {f"m{i}" for i in range(n)}
    assert lost == 0
    if transactional:
        assert duplicated == 0


@pytest.mark.slow
@pytest.mark.parametrize("transactional", [False, True], ids=["at_least_once", "transactional"])
def test_exhausted_retries_go_to_dlq(kafka_bootstrap: str, transactional: bool) -> None:
    # Given: the original topic is gone (auto-create is off), so every republish times out.
    # (min.insync.replicas=2 on one broker does not refuse acks=all writes on Kafka 4.x.)
    source = unique_name("gone")
    companions(kafka_bootstrap, source)
    write_retry(kafka_bootstrap, source, [(f"x{i}", now_ms(), 0) for i in range(3)])
    registry, group = CollectorRegistry(), unique_name("g")
    cfg = WorkerConfig(
        bootstrap_servers=kafka_bootstrap, topics=(source,), group_id=group, commit_interval_ms=50,
        retry_config=RetryConfig(max_retries=2, initial_delay_ms=100, max_delay_ms=200, jitter=False),
        kafka_config=(("producer.delivery.timeout.ms", "1500"), ("producer.linger.ms", "0")),
        transactional=transactional,
    )
    # When
    with running(cfg, registry):
        dlq = read_to_end(kafka_bootstrap, f"{source}.dlq", at_least=3, timeout_s=30)
        retried = read_committed_all(kafka_bootstrap, f"{source}.retry", expected=6)
        end = max(m.offset() for m in retried) + 1
        wait_for(lambda: group_committed(kafka_bootstrap, group, f"{source}.retry", 1) == [end], 10,
                 "the committed offset past every settled .retry record")
    # Then: attempt 1 failed -> .retry with attempt 2; attempt 2 failed -> attempt 3 > 2 -> .dlq
    assert sorted(m.key() for m in dlq) == [b"x0", b"x1", b"x2"]
    for m in dlq:
        hd = headers_dict(m)
        assert hd[h.DLQ_REASON] == b"retries_exhausted"
        assert hd[h.ATTEMPT] == b"3"
        assert hd[h.MESSAGE_ID] == m.key() and m.value() == b"value-" + m.key()
        assert hd[h.ERROR_RETRIABLE] == b"true"
    assert sorted(headers_dict(m)[h.ATTEMPT] for m in retried) == [b"1"] * 3 + [b"2"] * 3
    assert registry.get_sample_value("kafka_reliable_retry_dead_lettered_total",
                                     {"topic": source, "reason": "retries_exhausted"}) == 3
    assert sum(s.value for mf in registry.collect() for s in mf.samples
               if s.name == "kafka_reliable_retry_failed_total") == 6


def test_non_retriable_failure_goes_to_dlq(kafka_bootstrap: str, new_topic) -> None:
    # Given: a value larger than the source topic accepts
    source = new_topic(partitions=1, config={"max.message.bytes": "1024"})
    companions(kafka_bootstrap, source)
    p = Producer({"bootstrap.servers": kafka_bootstrap})
    p.produce(f"{source}.retry", key=b"big", value=b"x" * 4096, headers=retry_headers(source, now_ms(), "big"))
    assert p.flush(10) == 0
    # When
    with running(WorkerConfig(bootstrap_servers=kafka_bootstrap, topics=(source,), group_id=unique_name("g"),
                              kafka_config=(("producer.compression.type", "none"),))):
        dlq = read_to_end(kafka_bootstrap, f"{source}.dlq", at_least=1, timeout_s=20)
    # Then
    assert len(dlq) == 1 and dlq[0].value() == b"x" * 4096
    assert headers_dict(dlq[0])[h.DLQ_REASON] == b"non_retriable"
    assert headers_dict(dlq[0])[h.ERROR_CODE] == b"MSG_SIZE_TOO_LARGE"


def test_poison_record_goes_to_dlq_and_worker_keeps_running(kafka_bootstrap: str, new_topic) -> None:
    # Given: a garbled record between two good ones, metrics on a port
    source = new_topic(partitions=1)
    companions(kafka_bootstrap, source)
    write_retry(kafka_bootstrap, source, [("before", now_ms(), 0)])
    p = Producer({"bootstrap.servers": kafka_bootstrap})
    p.produce(f"{source}.retry", key=b"poison", value=b"?", headers=[(h.ATTEMPT, b"one"), (h.MESSAGE_ID, b"p1")])
    assert p.flush(10) == 0
    write_retry(kafka_bootstrap, source, [("after", now_ms(), 0)])
    port = free_port()
    cfg = WorkerConfig(bootstrap_servers=kafka_bootstrap, topics=(source,), group_id=unique_name("g"),
                       metrics_port=port)
    # When
    with running(cfg) as worker:
        good = read_to_end(kafka_bootstrap, source, at_least=2, timeout_s=20)
        dlq = read_to_end(kafka_bootstrap, f"{source}.dlq", at_least=1, timeout_s=10)
        wait_for(lambda: worker.counts["dead_lettered"] == 1, 5, "dead-letter ack")
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        assert not worker.stopping
    # Then
    assert [m.key() for m in good] == [b"before", b"after"]
    assert len(dlq) == 1 and dlq[0].key() == b"poison"
    hd = headers_dict(dlq[0])
    assert hd[h.DLQ_REASON] == b"poison" and hd[h.ORIGINAL_TOPIC] == source.encode()
    assert hd[h.MESSAGE_ID] == b"p1"
    assert f'kafka_reliable_retry_dead_lettered_total{{reason="poison",topic="{source}"}} 1.0' in text
    for name in ("kafka_reliable_retry_republished_total", "kafka_reliable_retry_pending",
                 "kafka_reliable_retry_lateness_seconds_bucket"):
        assert name in text


def test_two_workers_in_one_group_split_the_partitions(kafka_bootstrap: str, new_topic) -> None:
    # Given: two workers in one group, 4 partitions
    source = new_topic(partitions=4)
    companions(kafka_bootstrap, source)
    group = unique_name("g")
    cfg = WorkerConfig(bootstrap_servers=kafka_bootstrap, topics=(source,), group_id=group)
    with running(cfg) as w1, running(cfg) as w2:
        wait_for(lambda: len(w1.assignment()) == 2 and len(w2.assignment()) == 2, 30, "a 2/2 split")
        # When
        write_retry(kafka_bootstrap, source, [(f"m{i}", now_ms() + 200, i % 4) for i in range(400)])
        got = read_to_end(kafka_bootstrap, source, at_least=400, timeout_s=30)
        wait_for(lambda: w1.counts["republished"] + w2.counts["republished"] >= 400, 10, "acks")
        a1, a2 = w1.assignment(), w2.assignment()
    # Then: disjoint halves, both did work, every record once
    assert not a1 & a2 and len(a1 | a2) == 4
    assert w1.counts["republished"] == 200 and w2.counts["republished"] == 200
    assert sorted(headers_dict(m)[h.MESSAGE_ID] for m in got) == sorted(f"m{i}".encode() for i in range(400))


def test_pattern_subscribes_to_every_matching_retry_topic(kafka_bootstrap: str, new_topic) -> None:
    # Given: two source topics matching a regex, one not matching
    prefix = unique_name("pat").replace("-", "")
    a, b, other = new_topic(prefix=f"{prefix}-a"), new_topic(prefix=f"{prefix}-b"), new_topic(prefix="other")
    for t in (a, b, other):
        companions(kafka_bootstrap, t)
        write_retry(kafka_bootstrap, t, [(f"{t}-1", now_ms(), 0)])
    naming = TopicNaming()
    cfg = WorkerConfig(bootstrap_servers=kafka_bootstrap, pattern=f"{prefix}-.*", group_id=unique_name("g"),
                       naming=naming)
    # When
    with running(cfg) as worker:
        got_a = read_to_end(kafka_bootstrap, a, at_least=1, timeout_s=20)
        got_b = read_to_end(kafka_bootstrap, b, at_least=1, timeout_s=20)
        assigned = {t for t, _ in worker.assignment()}
    # Then
    assert len(got_a) == 1 and len(got_b) == 1
    assert assigned == {naming.retry_topic(a), naming.retry_topic(b)}
