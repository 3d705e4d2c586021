"""Every bad input a new user tries: a one-line error, the right exit code, in bounded time.

One table: argv, expected exit code, a piece of the error, where it is printed, and a wall
time bound (the subprocess timeout: a hang fails the case, no timing is asserted). The cases
run in parallel threads, each its own ``python -m kafka_reliable`` process.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from kafka_reliable.spool import Spool
from tests.helpers.cli import run_cli
from tests.helpers.kafka import unique_name

DEAD = "127.0.0.1:1"  # nothing listens: every connection is refused
SILENT = "{silent}"  # a listener that accepts and never answers (a hung broker)
LIVE = "{live}"  # the test broker


@dataclass(frozen=True)
class Case:
    name: str
    argv: tuple[str, ...]
    code: int
    error: str  # a piece of the one-line error (stderr), or of stdout when ``out`` is set
    bound_s: float = 20.0
    out: bool = False


CASES = [
    # unreachable cluster: the reason in one line, at once (well before --timeout-s)
    Case("topics-ensure-dead", ("topics", "ensure", "orders", "--bootstrap-servers", DEAD, "--timeout-s", "60"),
         1, "cannot reach Kafka at 127.0.0.1:1: 127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: "
         "Connection refused", bound_s=20),
    Case("topics-status-dead", ("topics", "status", "orders", "--bootstrap-servers", DEAD, "--timeout-s", "60"),
         1, "cannot reach Kafka at 127.0.0.1:1", bound_s=20),
    Case("generate-dead", ("generate", "--bootstrap-servers", DEAD, "--max-records", "5", "--timeout-s", "60"),
         1, "cannot reach Kafka at 127.0.0.1:1", bound_s=20),
    # a broker that never answers: the verb's own --timeout-s
    Case("topics-status-silent", ("topics", "status", "orders", "--bootstrap-servers", SILENT, "--timeout-s", "3"),
         1, f"cannot reach Kafka at {SILENT}: no answer within 3 s", bound_s=20),
    # usage errors: argparse style, exit 2
    Case("generate-partitions-0", ("generate", "--partitions", "0"), 2, "argument --partitions: must be >= 1, got 0"),
    Case("generate-speed-negative", ("generate", "--speed", "-5"), 2, "argument --speed: must be a number >= 0, got -5"),
    Case("generate-max-records-0", ("generate", "--max-records", "0"), 2, "argument --max-records: must be >= 1"),
    Case("generate-empty-bootstrap", ("generate", "--bootstrap-servers", ""), 2, "--bootstrap-servers is empty"),
    Case("health-redis-notaurl", ("health", "--redis-url", "notaurl"), 2,
         "argument --redis-url: 'notaurl' is not a Redis URL"),
    Case("health-redis-url-secret", ("health", "--redis-url", "http://u:hunter2@h:1"), 2, "'http://u:***@h:1'"),
    Case("health-timeout-negative", ("health", "--timeout-s", "-1", "--bootstrap-servers", DEAD), 2,
         "argument --timeout-s: must be a number > 0, got -1"),
    Case("kafka-config-typo", ("topics", "status", "orders", "--kafka-config", "securty.protocol=SASL_SSL",
                               "--bootstrap-servers", DEAD), 2,
         "unknown --kafka-config key 'securty.protocol' (did you mean security.protocol?)"),
    Case("kafka-config-bad-value", ("topics", "ensure", "orders", "--kafka-config", "security.protocol=FOO",
                                    "--bootstrap-servers", DEAD), 2,
         '--kafka-config security.protocol: Invalid value "FOO"'),
    Case("kafka-config-no-equals", ("topics", "ensure", "orders", "--kafka-config", "sasl.password",
                                    "--bootstrap-servers", DEAD), 2, "--kafka-config wants KEY=VALUE"),
    Case("dlq-kafka-config-typo", ("dlq", "stats", "orders", "--kafka-config", "securty.protocol=SASL_SSL",
                                   "--bootstrap-servers", DEAD), 2, "did you mean security.protocol?"),
    Case("spool-kafka-config-typo", ("spool", "drain", "--spool-path", "{spool}", "--kafka-config",
                                     "securty.protocol=SASL_SSL", "--bootstrap-servers", DEAD), 2,
         "did you mean security.protocol?"),
    Case("dlq-suffix-empty", ("topics", "ensure", "orders", "--dlq-suffix", ""), 2,
         "argument --dlq-suffix: a companion topic suffix cannot be empty"),
    Case("dlq-suffix-is-retry-suffix", ("topics", "ensure", "orders", "--dlq-suffix", ".retry",
                                        "--bootstrap-servers", DEAD), 2,
         "--retry-suffix and --dlq-suffix are both '.retry'"),
    Case("topics-ensure-companion", ("topics", "ensure", "orders.retry", "--bootstrap-servers", DEAD), 2,
         "orders.retry is itself a companion topic (of orders)"),
    Case("topics-empty-bootstrap", ("topics", "ensure", "orders", "--bootstrap-servers", ""), 2,
         "--bootstrap-servers is empty"),
    # health: always answers within its own --timeout-s
    Case("health-dead", ("health", "--json", "--bootstrap-servers", DEAD, "--timeout-s", "3"), 2,
         '"status": "unhealthy"', bound_s=15, out=True),
    Case("health-silent", ("health", "--json", "--bootstrap-servers", SILENT, "--timeout-s", "3",
                           "--redis-url", f"redis://{SILENT}/0", "--dlq-topic", "x.dlq"), 2,
         '"status": "unhealthy"', bound_s=15, out=True),
    # issue 20 item 3: keys the retry worker owns are refused, naming the flag to use instead
    Case("worker-owned-group", ("retry-worker", "--topics", "orders", "--kafka-config", "consumer.group.id=other",
                                "--bootstrap-servers", DEAD), 2, "consumer.group.id='other' is not allowed"),
    Case("worker-owned-bare-group", ("retry-worker", "--topics", "orders", "--kafka-config", "group.id=other",
                                     "--bootstrap-servers", DEAD), 2, "; use --group"),
    Case("worker-owned-txn-id", ("retry-worker", "--topics", "orders", "--kafka-config",
                                 "producer.transactional.id=x", "--bootstrap-servers", DEAD), 2,
         "use --transactional"),
    Case("worker-owned-auto-commit", ("retry-worker", "--topics", "orders", "--kafka-config",
                                      "enable.auto.commit=true", "--bootstrap-servers", DEAD), 2,
         "enable.auto.commit='true' is not allowed"),
    Case("worker-owned-acks", ("retry-worker", "--topics", "orders", "--kafka-config", "producer.acks=0",
                               "--bootstrap-servers", DEAD), 2, "producer.acks='0' is not allowed"),
    Case("worker-owned-isolation", ("retry-worker", "--topics", "orders", "--kafka-config",
                                    "consumer.isolation.level=read_uncommitted", "--bootstrap-servers", DEAD), 2,
         "consumer.isolation.level='read_uncommitted' is not allowed"),
    Case("worker-owned-idempotence", ("retry-worker", "--topics", "orders", "--kafka-config",
                                      "producer.enable.idempotence=false", "--bootstrap-servers", DEAD), 2,
         "producer.enable.idempotence='false' is not allowed"),
    Case("worker-txn-no-idempotence", ("retry-worker", "--topics", "orders", "--transactional", "--kafka-config",
                                       "producer.enable.idempotence=false", "--bootstrap-servers", DEAD), 2,
         "--transactional needs the idempotent producer: drop --kafka-config producer.enable.idempotence=false"),
    # issue 20 item 6: numbers that are not numbers, times before 1970
    Case("worker-backoff-nan", ("retry-worker", "--topics", "orders", "--backoff-multiplier", "nan",
                                "--bootstrap-servers", DEAD), 2, "backoff_multiplier must be a finite number"),
    Case("worker-backoff-inf", ("retry-worker", "--topics", "orders", "--backoff-multiplier", "inf",
                                "--bootstrap-servers", DEAD), 2, "backoff_multiplier must be a finite number"),
    Case("generate-start-negative", ("generate", "--start-ms", "-1", "--bootstrap-servers", DEAD), 2,
         "argument --start-ms: must be >= 0, got -1"),
    # issue 20 item 8: SASL/SSL settings against a PLAINTEXT listener name the likely cause, at once
    Case("dlq-sasl-vs-plaintext", ("dlq", "stats", "--bootstrap-servers", LIVE, "--kafka-config",
                                   "security.protocol=SASL_PLAINTEXT", "--kafka-config", "sasl.mechanism=PLAIN",
                                   "--kafka-config", "sasl.username=u", "--kafka-config", "sasl.password=p"), 1,
         "likely a protocol mismatch: security.protocol=SASL_PLAINTEXT", bound_s=20),
    Case("dlq-ssl-vs-plaintext", ("dlq", "list", "orders", "--bootstrap-servers", LIVE, "--kafka-config",
                                  "security.protocol=SSL"), 1,
         "likely a protocol mismatch: security.protocol=SSL", bound_s=20),
    Case("health-sasl-vs-plaintext", ("health", "--json", "--bootstrap-servers", LIVE, "--kafka-config",
                                      "security.protocol=SASL_PLAINTEXT", "--kafka-config", "sasl.mechanism=PLAIN",
                                      "--kafka-config", "sasl.username=u", "--kafka-config", "sasl.password=p"), 2,
         "likely a protocol mismatch: security.protocol=SASL_PLAINTEXT", bound_s=20, out=True),
    # issue 20 item 12: an illegal name is said to be illegal, not "not found"
    Case("topics-ensure-illegal", ("topics", "ensure", "bad topic!", "--bootstrap-servers", DEAD), 2,
         "'bad topic!' is not a legal topic name"),
    Case("topics-ensure-umlaut", ("topics", "ensure", "p3-zähler", "--bootstrap-servers", DEAD), 2,
         "'p3-zähler' is not a legal topic name"),
    Case("topics-ensure-dotdot", ("topics", "ensure", "..", "--bootstrap-servers", DEAD), 2,
         "'..' is not a legal topic name"),
    Case("dlq-list-empty-name", ("dlq", "list", "", "--bootstrap-servers", DEAD), 2,
         "'' is not a legal topic name"),
    Case("worker-pattern-librdkafka-refuses", ("retry-worker", "--pattern", "(?i)orders",
                                               "--bootstrap-servers", DEAD), 2,
         "--pattern '(?i)orders' is a Python regex librdkafka's regex engine does not accept"),
    Case("health-missing-dlq", ("health", "--json", "--bootstrap-servers", LIVE, "--dlq-topic", "{missing}"), 1,
         "DLQ topic '{missing}' does not exist", out=True),
]


@dataclass
class Outcome:
    code: int | None
    stdout: str
    stderr: str
    elapsed_s: float


@pytest.fixture(scope="module")
def silent_broker() -> Iterator[str]:
    """A TCP listener that never accepts: connections hang in the handshake like a stuck broker."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield f"127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture(scope="module")
def outcomes(kafka_bootstrap: str, silent_broker: str,
             tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Case, Outcome]]:
    spool = tmp_path_factory.mktemp("cli-inputs") / "spool.db"
    Spool(spool).close()
    subst = {"silent": silent_broker, "live": kafka_bootstrap, "missing": unique_name("no-such") + ".dlq",
             "spool": str(spool)}
    cases = [Case(c.name, tuple(a.format(**subst) for a in c.argv), c.code, c.error.format(**subst), c.bound_s, c.out)
             for c in CASES]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = pool.map(_run, cases)
        return {c.name: (c, r) for c, r in zip(cases, results, strict=True)}


def _run(case: Case) -> Outcome:
    start = time.monotonic()
    try:
        p = run_cli(*case.argv, timeout_s=case.bound_s)
    except subprocess.TimeoutExpired as exc:
        return Outcome(None, str(exc.stdout or ""), str(exc.stderr or ""), time.monotonic() - start)
    return Outcome(p.returncode, p.stdout, p.stderr, time.monotonic() - start)


@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_bad_input_gets_a_one_line_error_in_bounded_time(name: str, outcomes: dict[str, tuple[Case, Outcome]]) -> None:
    case, got = outcomes[name]
    # Then: it answered within its bound, with the expected exit code and no traceback
    assert got.code is not None, f"{case.argv} still running after {case.bound_s} s; stderr: {got.stderr[-500:]}"
    assert got.code == case.code, (case.argv, got.stdout[-500:], got.stderr[-1000:])
    assert "Traceback" not in got.stderr
    if case.out:
        assert case.error in got.stdout, got.stdout
        return
    # the error is one line, the last one; librdkafka's lines (if any) are a few, not hundreds
    lines = got.stderr.strip().splitlines()
    assert case.error in lines[-1], got.stderr
    assert lines[-1].startswith(("kafka-reliable: error:", "kafka-reliable ")), lines[-1]
    assert len([ln for ln in lines if "error:" in ln]) == 1, got.stderr
    assert len(lines) <= (25 if case.code == 2 else 5), got.stderr  # argparse prints usage first


def test_health_reports_the_missing_dlq_topic_as_json(outcomes: dict[str, tuple[Case, Outcome]]) -> None:
    case, got = outcomes["health-missing-dlq"]
    status = json.loads(got.stdout)
    assert status["status"] == "degraded"
    assert status["target"]["dlq_topics_missing"] == [case.argv[-1]]
    assert status["metrics"]["connected"] is True


def test_help_says_what_the_exit_codes_mean() -> None:
    out = run_cli("--help", timeout_s=30)
    assert out.returncode == 0
    assert "2 usage error" in out.stdout and "-q, --quiet" in out.stdout and "-v, --verbose" in out.stdout
