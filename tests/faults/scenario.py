"""One producer-side fault scenario: send paced records while faults happen, then account for all."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.faults.harness import (
    Tally,
    Worker,
    delivered_count,
    paced_send,
    read_topic,
    tally,
    value,
    wait_for,
)
from tests.helpers.kafka import unique_name

#: ``make test-faults`` (KAFKA_RELIABLE_FAULTS=all): every scenario at full size. ``make test``
#: runs the quick ones, sized to prove the same property (LOST 0, one id per copy) in seconds.
FULL = os.environ.get("KAFKA_RELIABLE_FAULTS", "").lower() == "all"


def sized(full: float, quick: float) -> float:
    """``full`` in ``make test-faults``, ``quick`` in ``make test``."""
    return full if FULL else quick


def run_producer_scenario(
    name: str, cluster: Any, tmp: Path, *, records: int, duration_s: float,
    faults: dict[float, Callable[[str], None]], producer_kwargs: dict[str, Any] | None = None,
    settle_s: float = 240.0,
) -> Tally:
    """Send ``records`` over ``duration_s``; at fraction f of the run start ``faults[f](topic)``
    in a thread. Then wait for the faults to finish, flush, drain the spool, run the retry
    worker until ``.retry`` is empty of undelivered records, close, and tally."""
    from kafka_reliable import ReliableKafkaProducer
    from tests.faults.harness import create_topics

    conf = {"bootstrap.servers": cluster.bootstrap_servers}
    topic = unique_name(f"f-{name}")
    create_topics(conf, topic)
    spool = tmp / "spool.sqlite3"
    kwargs = {"bootstrap_servers": cluster.bootstrap_servers, "spool_path": spool, "enable_metrics": False,
              **(producer_kwargs or {})}
    started = time.monotonic()
    producer = ReliableKafkaProducer(**kwargs)
    try:
        events = {int(records * f): (lambda fn=fn: fn(topic)) for f, fn in faults.items()}
        sent, refused, threads = paced_send(
            lambda s: producer.send_message(topic, value(s), key=str(s % 97)), records, duration_s, events
        )
        for th in threads:
            th.join(settle_s)
        producer.flush(settle_s)
        wait_for(lambda: producer.spool.count() == 0, settle_s, f"{name}: spool drained while the producer runs")
        stats = producer.get_stats()
    finally:
        producer.close(60)
    drain_retry(conf, cluster.bootstrap_servers, topic, tmp, len(sent))
    t = tally(name, conf, topic, sent, spool_path=spool, refused=refused)
    t.seconds = round(time.monotonic() - started, 1)
    t.routed = {k: int(stats.get(f"messages_{k}", 0)) for k in ("retried", "dead_lettered", "spooled", "drained_from_spool")}
    return t


def drain_retry(conf: dict[str, Any], bootstrap: str, topic: str, tmp: Path, expected: int,
                timeout_s: float = 180.0) -> None:
    """When ``.retry`` holds records, run the retry worker until the topic has them all."""
    if delivered_count(conf, topic + ".retry") == 0:
        return
    worker = Worker(bootstrap, topic, unique_name("faults-worker"), tmp)
    worker.start()
    try:
        wanted = _undelivered_retry(conf, topic)
        wait_for(lambda: not (wanted - _delivered(conf, topic) - _delivered(conf, topic + ".dlq"))
                 or not worker.alive(), timeout_s,
                 f"retry worker moving {len(wanted)} records of {topic}.retry back", step_s=2.0)
        assert worker.alive(), f"the retry worker exited: {worker.log_tail()}"
    finally:
        worker.stop()


def _delivered(conf: dict[str, Any], topic: str) -> set[int | None]:
    return {s for s, _ in read_topic(conf, topic)}


def _undelivered_retry(conf: dict[str, Any], topic: str) -> set[int | None]:
    return {s for s, _ in read_topic(conf, topic + ".retry")} - _delivered(conf, topic)


def later(delay_s: float, fn: Callable[[], object]) -> None:
    """Run ``fn`` after ``delay_s`` in this (fault) thread."""
    ev = threading.Event()
    ev.wait(delay_s)
    fn()
