"""The retry worker's command line, fed bad input as a new user would: a one-line error, the
right exit code (2 for usage errors), within a time bound; and what it creates or not."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from tests.helpers.kafka import unique_name

REPO = Path(__file__).resolve().parents[2]
MODULE = [sys.executable, "-m", "kafka_reliable.worker"]
VERB = [sys.executable, "-m", "kafka_reliable", "retry-worker"]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "KAFKA_RELIABLE_LOG_LEVEL": "INFO"}


@dataclass(frozen=True)
class Case:
    id: str
    argv: list[str]
    code: int
    error: str  # expected in the last stderr line
    within_s: float = 20.0


CASES = [
    Case("empty_group", [*MODULE, "--topics", "orders", "--group", ""], 2, "consumer group (--group) must not be empty"),
    Case("empty_group_verb", [*VERB, "--topics", "orders", "--group", ""], 2, "must not be empty"),
    Case("retry_suffix", [*VERB, "--topics", "orders.retry"], 2, "'orders.retry' already ends in a companion suffix"),
    Case("dlq_suffix", [*MODULE, "--topics", "a,orders.dlq"], 2, "name the source topic ('orders')"),
    Case("illegal_topic", [*MODULE, "--topics", "bad topic!"], 2, "'bad topic!' is not a legal topic name"),
    Case("typo_key", [*VERB, "--topics", "orders", "--kafka-config", "securty.protocol=SSL"], 2,
         "did you mean security.protocol?"),
    Case("startup_timeout_zero", [*MODULE, "--topics", "orders", "--startup-timeout-s", "0"], 2, "must be > 0"),
    Case("dead_cluster_pattern", [*MODULE, "--pattern", "orders.*", "--bootstrap-servers", "127.0.0.1:1",
                                  "--startup-timeout-s", "2"], 1, "no broker at 127.0.0.1:1 answered within 2 s",
         within_s=15.0),
    Case("dead_cluster_verb", [*VERB, "--topics", "orders", "--bootstrap-servers", "127.0.0.1:1",
                               "--startup-timeout-s", "2"], 1, "no broker at 127.0.0.1:1 answered within 2 s",
         within_s=15.0),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gets_one_line_error_and_exit_code(case: Case, kafka_bootstrap: str) -> None:
    # Given: a real broker unless the case names another
    argv = case.argv if "--bootstrap-servers" in case.argv else [*case.argv, "--bootstrap-servers", kafka_bootstrap]
    # When
    t0 = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=case.within_s + 10, cwd=REPO, env=ENV)
    elapsed = time.monotonic() - t0
    # Then
    err_lines = proc.stderr.strip().splitlines()
    assert proc.returncode == case.code, proc.stderr[-2000:]
    assert elapsed < case.within_s
    assert "Traceback" not in proc.stderr
    assert case.error in err_lines[-1] and err_lines[-1].count("\n") == 0
    assert err_lines[-1].startswith(("retry-worker: error: ", "kafka-reliable: error: "))
    # and a dead cluster is not a flood of log lines (was ~29 lines/s)
    assert len(err_lines) + len(proc.stdout.splitlines()) <= 8, proc.stderr


def _run_until(argv: list[str], line: str, timeout_s: float) -> tuple[int, str]:
    """Start the worker, wait for ``line`` in its output, SIGTERM it; (exit code, output)."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO, env=ENV)
    out: list[str] = []
    deadline = time.monotonic() + timeout_s
    try:
        assert proc.stdout is not None
        while not any(line in x for x in out):
            assert time.monotonic() < deadline, f"no {line!r} within {timeout_s}s: {''.join(out)[-2000:]}"
            got = proc.stdout.readline()
            assert got or proc.poll() is None, "".join(out)[-2000:]
            out.append(got)
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, "".join(out) + rest


@pytest.mark.parametrize("create", [False, True], ids=["not_asked", "create_topics"])
def test_companions_of_a_missing_source_topic_only_when_asked(kafka_bootstrap: str, create: bool) -> None:
    # Given: a source topic that does not exist
    source = unique_name("missing")
    argv = [*MODULE, "--bootstrap-servers", kafka_bootstrap, "--topics", source, "--group", unique_name("g"),
            *(["--create-topics"] if create else [])]
    expected_line = "as asked (--create-topics)" if create else "are not created (pass --create-topics"
    # When
    code, out = _run_until(argv, expected_line, timeout_s=20)
    # Then
    topics = set(AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=10).topics)
    assert code == 0, out[-2000:]
    companions = {f"{source}.retry", f"{source}.dlq"}
    assert companions & topics == (companions if create else set())
    assert source not in topics and f"{source}.retry.retry" not in topics


def test_sigterm_while_waiting_for_the_cluster_stops_at_once() -> None:
    # Given: a worker waiting (up to 60 s) for a cluster that does not answer
    argv = [*MODULE, "--bootstrap-servers", "127.0.0.1:1", "--pattern", "orders.*", "--startup-timeout-s", "60"]
    # When: SIGTERM once it says it is waiting
    t0 = time.monotonic()
    code, out = _run_until(argv, "waiting for the cluster", timeout_s=15)
    # Then: a graceful stop, long before the startup timeout
    assert code == 0, out[-2000:]
    assert time.monotonic() - t0 < 15
    assert "retry worker stopped" in out
