"""The retry worker SIGKILLed while it drains 20,000 due records (make test: 10,000), then restarted.

At-least-once mode may republish a record twice (the kill lands between the produce and the
offset commit), always with its one message id; ``--transactional`` must not duplicate for a
read_committed reader. Nothing may be lost in either mode.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from tests.faults.harness import (
    Probe,
    Tally,
    Worker,
    create_topics,
    read_topic,
    tally,
    value,
    wait_for,
)
from tests.faults.scenario import sized
from tests.helpers.kafka import unique_name

pytestmark = pytest.mark.faults

RECORDS = int(sized(20_000, 10_000))


def _fill_retry(conf: dict[str, Any], topic: str, n: int) -> list[int]:
    """``n`` records in ``<topic>.retry`` as the producer writes them, all due now."""
    import json

    from kafka_reliable.headers import Failure, failure_headers

    now = int(time.time() * 1000)
    p = Producer({**conf, "enable.idempotence": True, "linger.ms": 20})
    for seq in range(n):
        f = Failure(original_topic=topic, attempt=1, error_code="_MSG_TIMED_OUT", error_class="KafkaTimeoutError",
                    error_message="Local: Message timed out", retriable=True, first_failure_at_ms=now,
                    last_failure_at_ms=now, next_attempt_at_ms=now)
        p.produce(topic + ".retry", json.dumps(value(seq)).encode(), key=str(seq % 97).encode(),
                  headers=failure_headers([], f, message_id=f"fault-{seq}"))
        if seq % 5000 == 0:
            p.poll(0)
    assert p.flush(60) == 0
    return list(range(n))


def _scenario(cluster: Any, tmp: Path, transactional: bool) -> Tally:
    conf = {"bootstrap.servers": cluster.bootstrap_servers}
    mode = "transactional" if transactional else "at_least_once"
    topic = unique_name(f"f-wk-{mode[:3]}")
    create_topics(conf, topic)
    sent = _fill_retry(conf, topic, RECORDS)
    started = time.monotonic()
    group = unique_name("faults-wk")
    # a stable instance id (static membership, as a StatefulSet would give): the restarted worker
    # takes its partitions back at once instead of after the dead member's session timeout
    worker = Worker(cluster.bootstrap_servers, topic, group, tmp, transactional=transactional,
                    env={"KAFKA_RELIABLE_INSTANCE_ID": f"{group}-0"})
    with Probe(conf, topic) as probe:
        worker.start()
        try:
            # When the worker is SIGKILLed after it has moved ~a quarter of the records
            wait_for(lambda: probe.count() >= RECORDS // 4 or not worker.alive(), 120,
                     "worker moving the first quarter", step_s=0.01)
            assert worker.alive(), worker.log_tail()
            worker.kill()
            moved_at_kill = probe.count()
            assert moved_at_kill < RECORDS, "the kill came after the worker had moved every record"
            # Then a restarted worker (same group) finishes the job
            worker.start()
            wait_for(lambda: probe.count() >= RECORDS, 180, "worker draining after restart", step_s=1.0)
            wait_for(lambda: {s for s, _ in read_topic(conf, topic)} >= set(sent), 120,
                     "every record republished", 2.0)
        finally:
            worker.stop()
    t = tally(f"retry_worker_sigkill_{mode}", conf, topic, sent)
    t.seconds = round(time.monotonic() - started, 1)
    t.notes = f"SIGKILL at ~{moved_at_kill} moved of {RECORDS}, restarted"
    return t


def test_worker_sigkilled_while_draining_at_least_once(healthy: Any, tmp_path: Path, report: list[Tally]) -> None:
    t = _scenario(healthy, tmp_path, transactional=False)
    report.append(t)
    print("\n" + t.row())
    assert t.lost == 0 and t.retry == 0, t
    assert t.unknown == 0 and t.id_mismatch == 0, t


@pytest.mark.full_only
def test_worker_sigkilled_while_draining_transactional(healthy: Any, tmp_path: Path, report: list[Tally]) -> None:
    t = _scenario(healthy, tmp_path, transactional=True)
    report.append(t)
    print("\n" + t.row())
    assert t.lost == 0 and t.retry == 0, t
    assert t.dup == 0, f"--transactional duplicated {t.dup} records for a read_committed reader: {t}"
    assert t.unknown == 0 and t.id_mismatch == 0, t
