"""ReliableConsumer crash safety on the real broker: SIGKILL mid-run, restart, nothing lost;
SIGTERM stops run() gracefully."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.helpers.consumer import json_items, produce
from tests.helpers.kafka import unique_name
from tests.helpers.waits import wait_until

#: A consumer process: every 10th record fails once; each successful handling is one line.
SCRIPT = r"""
import sys, time
from prometheus_client import CollectorRegistry
from kafka_reliable import ReliableConsumer, RetryConfig

bootstrap, topic, group, out = sys.argv[1:5]
f = open(out, "a", buffering=1)

def handler(rec):
    i = rec.value["i"]
    if i % 10 == 0 and rec.attempt == 0:
        raise TimeoutError("transient")
    time.sleep(0.0005)
    f.write(f"{rec.message_id} {i} {rec.attempt}\n")

c = ReliableConsumer(bootstrap_servers=bootstrap, group_id=group, topics=[topic],
                     retry_config=RetryConfig(max_retries=3, initial_delay_ms=100, max_delay_ms=200),
                     metrics_registry=CollectorRegistry(),
                     # the killed member's partitions move after this (librdkafka default: 45 s)
                     consumer_config={"session_timeout_ms": 6000, "heartbeat_interval_ms": 1000})
c.run(handler)
f.write("STOPPED\n")
"""


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def start(bootstrap: str, topic: str, group: str, out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", SCRIPT, bootstrap, topic, group, str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ})


@pytest.mark.slow
def test_sigkill_mid_run_then_restart_loses_nothing(kafka_bootstrap: str, new_topic, tmp_path: Path) -> None:
    # Given 3,000 records (10% failing once) and a consumer process handling them
    n = 3_000
    topic = new_topic(partitions=3)
    group = unique_name("crash")
    produce(kafka_bootstrap, topic, json_items(n))
    out = tmp_path / "handled.txt"
    proc = start(kafka_bootstrap, topic, group, out)
    try:
        # When it is killed with SIGKILL a third of the way through
        wait_until(lambda: len(lines(out)) >= n // 3 or proc.poll() is not None, 60, "first third handled")
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        at_kill = len(lines(out))
        assert at_kill < n
        # and restarted
        proc = start(kafka_bootstrap, topic, group, out)
        wait_until(lambda: len({ln.split()[1] for ln in lines(out)}) >= n or proc.poll() is not None, 60,
                   lambda: f"{len({ln.split()[1] for ln in lines(out)})} of {n} handled")
        # Then SIGTERM stops it gracefully
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() - t0 < 15
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    handled = [ln.split() for ln in lines(out) if ln != "STOPPED"]
    assert lines(out)[-1] == "STOPPED"
    per_record = Counter(int(i) for _, i, _ in handled)
    # and every record was handled; duplicates are only re-deliveries with the same message id
    assert set(per_record) == set(range(n)), f"lost {sorted(set(range(n)) - set(per_record))[:10]}"
    ids: dict[int, set[str]] = {}
    for mid, i, _ in handled:
        ids.setdefault(int(i), set()).add(mid)
    assert all(len(v) == 1 for v in ids.values())
    duplicates = len(handled) - n
    print(f"crash test: {at_kill} handled before SIGKILL, 0 lost, {duplicates} duplicates")
