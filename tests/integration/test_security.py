"""SASL/SCRAM-SHA-512 with the StandardAuthorizer: settings pass everywhere, denials are routed,
a wrong password fails clearly, and no secret ever shows.

A private single-broker SASL cluster (``dev-broker start --sasl``, free ports, never 9092) is
started once per session; users ``admin`` (super user) and ``limited`` (no WRITE on topics
starting with ``restricted-``) have random passwords.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from tests.conftest import _unavailable
from tests.helpers.kafka import unique_name
from tests.helpers.ports import reserve_ports

ROOT = Path(__file__).resolve().parents[2]
#: Every CLI output, worker log and stats text the session produced: grepped for secrets.
_SEEN: list[str] = []


@pytest.fixture(scope="session")
def sasl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from kafka_reliable.dev.cluster import DevCluster

    block = reserve_ports(21)
    c = DevCluster(brokers=1, base_port=block.base, data_dir=tmp_path_factory.mktemp("sasl-cluster"), sasl=True)
    try:
        try:
            c.start()
        except Exception as exc:  # noqa: BLE001
            _unavailable(f"security tests need the SASL dev cluster (Java + Maven): {exc}")
        yield c
    finally:
        for n in c.nodes():  # a half-started cluster too
            if c.pid(n.node_id):
                c.signal_node(n.node_id, signal.SIGKILL)
        block.release()


def _secrets(c: Any) -> list[str]:
    from kafka_reliable.dev import sasl as S

    return list(S.credentials(c.home).values())


def _conf(c: Any, user: str = "admin", password: str | None = None) -> dict[str, Any]:
    from kafka_reliable.dev import sasl as S

    return {"bootstrap.servers": c.bootstrap_servers, **S.client_settings(c.home, user, password)}


def _topic(c: Any, prefix: str = "sec", companions: bool = True) -> str:
    name = unique_name(prefix)
    names = [name, name + ".retry", name + ".dlq"] if companions else [name]
    admin = AdminClient(_conf(c))  # kept referenced until the futures resolve
    for f in admin.create_topics([NewTopic(n, 1, 1) for n in names]).values():
        f.result(30)
    return name


def _deny_write(c: Any, topic: str) -> None:
    b = AclBinding(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, "User:limited", "*",
                   AclOperation.WRITE, AclPermissionType.DENY)
    admin = AdminClient(_conf(c))
    for f in admin.create_acls([b]).values():
        f.result(30)


def _read(c: Any, topic: str, n: int, timeout_s: float = 30.0) -> list[Any]:
    from confluent_kafka import Consumer

    cons = Consumer({**_conf(c), "group.id": unique_name("sec-read"), "auto.offset.reset": "earliest"})
    cons.subscribe([topic])
    out: list[Any] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(out) < n and time.monotonic() < deadline:
            out += [m for m in cons.consume(100, timeout=0.5) if m.error() is None]
    finally:
        cons.close()
    return out


def _kwargs_kafka_python(c: Any, user: str = "limited", password: str | None = None) -> dict[str, Any]:
    conf = _conf(c, user, password)
    return {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_plain_username": conf["sasl.username"], "sasl_plain_password": conf["sasl.password"]}


def _producer(c: Any, tmp: Path, user: str = "limited", **kw: Any) -> Any:
    from prometheus_client import CollectorRegistry

    from kafka_reliable import ReliableKafkaProducer

    return ReliableKafkaProducer(bootstrap_servers=c.bootstrap_servers, producer_config=_kwargs_kafka_python(c, user),
                                 spool_path=tmp / "spool.sqlite3", metrics_registry=CollectorRegistry(), **kw)


def _wait(cond: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout_s} s")


# ---- the producer -----------------------------------------------------------------------------

def test_producer_sends_with_kafka_python_sasl_keys(sasl: Any, tmp_path: Path) -> None:
    topic = _topic(sasl)
    with _producer(sasl, tmp_path) as p:
        ids = [p.send_message(topic, {"n": i}) for i in range(5)]
        assert p.flush(30) == 0
        assert {p.get_message_status(i) for i in ids} == {"sent"}
    assert len(_read(sasl, topic, 5)) == 5


def test_topic_authorization_failed_goes_to_dlq_with_alert(sasl: Any, tmp_path: Path) -> None:
    # Given a topic 'limited' may not write to (its .dlq it may)
    topic = _topic(sasl)
    _deny_write(sasl, topic)
    alerts: list[dict[str, Any]] = []
    with _producer(sasl, tmp_path) as p:
        p.add_health_alert_callback(alerts.append)
        # When it sends
        ids = [p.send_message(topic, {"n": i}) for i in range(20)]  # health judges from 10 deliveries
        p.flush(60)
        _wait(lambda: {p.get_message_status(i) for i in ids} == {"dlq"}, 60, "records dead-lettered")
        _wait(lambda: bool(alerts), 30, "an alert")
        stats = p.get_stats()
        _SEEN.append(json.dumps(stats, default=str))
    # Then the records are in .dlq, non-retriable, with the broker's error code
    dlq = _read(sasl, topic + ".dlq", 20)
    assert len(dlq) == 20
    h = dict(dlq[0].headers())
    assert h["kafka_reliable.error.code"] == b"TOPIC_AUTHORIZATION_FAILED"
    assert h["kafka_reliable.error.retriable"] == b"false"
    assert h["kafka_reliable.dlq.reason"] == b"non_retriable"
    _SEEN.append(json.dumps(alerts, default=str))


def test_unauthorized_and_dlq_unwritable_goes_to_spool(sasl: Any, tmp_path: Path) -> None:
    from kafka_reliable.dev.sasl import RESTRICTED_PREFIX

    topic = _topic(sasl, prefix=RESTRICTED_PREFIX.rstrip("-"))  # restricted-*: .retry/.dlq denied too
    alerts: list[dict[str, Any]] = []
    with _producer(sasl, tmp_path) as p:
        p.add_health_alert_callback(alerts.append)
        ids = [p.send_message(topic, {"n": i}) for i in range(3)]
        p.flush(60)
        _wait(lambda: {p.get_message_status(i) for i in ids} == {"spooled"}, 60, "records spooled")
        _wait(lambda: bool(alerts), 30, "an alert")
        assert p.spool.count() >= 3
        _SEEN.append(json.dumps(p.get_health_status(), default=str))


def test_wrong_password_is_a_clear_error_without_retry_storm(sasl: Any, tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    from kafka_reliable import ReliableKafkaProducer

    topic = _topic(sasl)
    caplog.set_level(logging.DEBUG)
    p = ReliableKafkaProducer(bootstrap_servers=sasl.bootstrap_servers,
                              producer_config=_kwargs_kafka_python(sasl, "limited", "wrong-password-123"),
                              spool_path=tmp_path / "spool.sqlite3", enable_metrics=False)
    try:
        p.send_message(topic, {"n": 1})
        time.sleep(5)  # the observation window for the reconnect rate, not a wait for a condition
        health = p.get_health_status()
        text = json.dumps(health, default=str) + "\n" + caplog.text
        assert "authentication" in text.lower(), f"no clear authentication error in health/logs: {text[-2000:]}"
    finally:
        p.close(10)
    auth_lines = [r for r in caplog.records if "authentication" in r.getMessage().lower()]
    # librdkafka backs off between attempts; a storm would be hundreds of attempts in 5 s
    assert len(auth_lines) < 60, f"{len(auth_lines)} authentication log lines in 5 s"
    assert "wrong-password-123" not in caplog.text


# ---- the worker and the CLI -----------------------------------------------------------------

def _cli(args: list[str], env: dict[str, str] | None = None, timeout_s: float = 60,
         keep: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "kafka_reliable.cli.main", *args], capture_output=True, text=True,
                          timeout=timeout_s, cwd=str(ROOT), env={**os.environ, **(env or {})})
    if keep:
        _SEEN.append(proc.stdout + proc.stderr)
    return proc


def _flags(c: Any, user: str = "admin") -> list[str]:
    out = ["--bootstrap-servers", c.bootstrap_servers]
    for k, v in _conf(c, user).items():
        if k != "bootstrap.servers":
            out += ["--kafka-config", f"{k}={v}"]
    return out


def _env(c: Any, user: str = "admin") -> dict[str, str]:
    env = {"KAFKA_BOOTSTRAP_SERVERS": c.bootstrap_servers}
    for k, v in _conf(c, user).items():
        if k != "bootstrap.servers":
            env["KAFKA_RELIABLE_KAFKA_" + k.upper().replace(".", "_")] = str(v)
    return env


def _fill_retry(c: Any, topic: str, n: int) -> None:
    from kafka_reliable.headers import Failure, failure_headers

    now = int(time.time() * 1000)
    p = Producer(_conf(c))
    for i in range(n):
        f = Failure(original_topic=topic, attempt=1, error_code="_MSG_TIMED_OUT", error_class="KafkaTimeoutError",
                    error_message="timed out", retriable=True, first_failure_at_ms=now, last_failure_at_ms=now,
                    next_attempt_at_ms=now)
        p.produce(topic + ".retry", json.dumps({"n": i}).encode(), headers=failure_headers([], f, message_id=f"s-{i}"))
    assert p.flush(30) == 0


@pytest.mark.parametrize("via", ["kafka-config", "env"])
def test_retry_worker_with_sasl(sasl: Any, tmp_path: Path, via: str) -> None:
    topic = _topic(sasl)
    _fill_retry(sasl, topic, 3)
    args = ["retry-worker", "--topics", topic, "--group", unique_name("sec-wk")]
    args += _flags(sasl, "limited") if via == "kafka-config" else []
    env = {**os.environ, **(_env(sasl, "limited") if via == "env" else {})}
    log = tmp_path / "worker.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "kafka_reliable.cli.main", *args], stdout=out,
                                stderr=subprocess.STDOUT, cwd=str(ROOT), env=env)
    try:
        got = _read(sasl, topic, 3, timeout_s=60)
        assert len(got) == 3, log.read_text()[-3000:]
    finally:
        proc.terminate()
        proc.wait(30)
        _SEEN.append(log.read_text())


def test_retry_worker_wrong_password_exits_with_one_clear_error(sasl: Any, tmp_path: Path) -> None:
    args = ["retry-worker", "--topics", "anything", *[
        a if not a.startswith("sasl.password=") else "sasl.password=wrong-password-789" for a in _flags(sasl, "limited")]]
    start = time.monotonic()
    proc = _cli(args, env={"KAFKA_RELIABLE_STARTUP_TIMEOUT_S": "10"}, timeout_s=90)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-2000:]
    assert "authentication" in out.lower(), out[-2000:]
    assert time.monotonic() - start < 60
    assert "wrong-password-789" not in out
    assert out.lower().count("authentication") < 30, "a reconnect storm in the worker's output"


_VERBS = {
    "topics ensure": ["topics", "ensure", "{topic}"],
    "topics status": ["topics", "status", "{topic}"],
    "dlq stats": ["dlq", "stats", "{topic}"],
    "dlq list": ["dlq", "list", "{topic}"],
    "dlq replay": ["dlq", "replay", "{topic}", "--yes"],
    "dlq purge": ["dlq", "purge", "{topic}", "--all", "--yes"],
    "spool drain": ["spool", "drain", "--spool-path", "{spool}", "--timeout-s", "10"],
    "health": ["health", "--dlq-topic", "{topic}", "--timeout-s", "10"],
}
#: Known defects: a verb that cannot take SASL settings one of these ways (none left).
_DEFECTS: dict[tuple[str, str], str] = {}


def _verb_cases() -> list[Any]:
    cases = []
    for via in ("kafka-config", "env"):
        for verb in _VERBS:
            reason = _DEFECTS.get((verb, via))
            marks = [pytest.mark.xfail(strict=True, reason=f"defect: {reason}")] if reason else []
            cases.append(pytest.param(verb, via, marks=marks, id=f"{verb.replace(' ', '-')}-{via}"))
    return cases


def _spool_one(topic: str, spool: Path) -> None:
    """One record in a spool: a producer that never reached a broker spools it at close()."""
    from kafka_reliable import ReliableKafkaProducer
    from tests.helpers.ports import free_port

    p = ReliableKafkaProducer(bootstrap_servers=f"127.0.0.1:{free_port()}", spool_path=spool, enable_metrics=False)
    p.send_message(topic, {"n": 1})
    p.close(2)


@pytest.mark.parametrize(("verb", "via"), _verb_cases())
def test_cli_verb_with_sasl(sasl: Any, tmp_path: Path, verb: str, via: str) -> None:
    topic = _topic(sasl)
    spool = tmp_path / "spool.sqlite3"
    if verb == "spool drain":
        _spool_one(topic, spool)
    args = [a.format(topic=topic, spool=spool) for a in _VERBS[verb]]
    args += _flags(sasl) if via == "kafka-config" else []
    proc = _cli(args, env=_env(sasl) if via == "env" else {"KAFKA_BOOTSTRAP_SERVERS": sasl.bootstrap_servers},
                keep=False)
    out = proc.stdout + proc.stderr
    for secret in _secrets(sasl):
        assert secret not in out, f"{verb}: the password shows in its output"
    assert proc.returncode == 0, f"{verb}: exit {proc.returncode}: {out.strip()[-400:]}"
    _SEEN.append(out)


def test_cli_wrong_password_is_one_clear_line(sasl: Any) -> None:
    wrong = [a if not a.startswith("sasl.password=") else "sasl.password=wrong-password-456" for a in _flags(sasl)]
    start = time.monotonic()
    proc = _cli(["topics", "status", "anything", *wrong])
    assert proc.returncode == 1, proc
    assert "authentication" in proc.stderr.lower(), proc.stderr
    assert time.monotonic() - start < 30
    assert "wrong-password-456" not in proc.stdout + proc.stderr


# ---- secrets --------------------------------------------------------------------------------

def test_no_secret_in_logs_stats_health_repr_metrics_or_cli(sasl: Any, tmp_path: Path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from kafka_reliable.config import RetryConfig

    caplog.set_level(logging.DEBUG)
    registry = CollectorRegistry()
    topic = _topic(sasl)
    from kafka_reliable import ReliableKafkaProducer

    p = ReliableKafkaProducer(bootstrap_servers=sasl.bootstrap_servers, producer_config=_kwargs_kafka_python(sasl),
                              spool_path=tmp_path / "spool.sqlite3", metrics_registry=registry,
                              retry_config=RetryConfig(max_retries=1))
    try:
        p.send_message(topic, {"n": 1})
        p.flush(30)
        texts = [json.dumps(p.get_stats(), default=str), json.dumps(p.get_health_status(), default=str),
                 repr(p), str(p), repr(p.retry_config), generate_latest(registry).decode()]
    finally:
        p.close(10)
    texts += [caplog.text, *_SEEN]
    texts.append(_cli(["dev-broker", "status", "--cluster", "--port", str(sasl.base_port), "--data-dir",
                       str(sasl.home), "--json"]).stdout)
    for secret in _secrets(sasl):
        leaks = [t[max(0, t.find(secret) - 200):t.find(secret) + 40] for t in texts if secret in t]
        assert not leaks, f"a SASL password shows in {len(leaks)} outputs, e.g. {leaks[0]!r}"


def test_no_secret_in_worker_config_repr(sasl: Any) -> None:
    from kafka_reliable.worker.settings import from_values

    cfg = from_values({"bootstrap_servers": sasl.bootstrap_servers, "topics": "t",
                       "kafka_config": [f"{k}={v}" for k, v in _conf(sasl).items() if k != "bootstrap.servers"]},
                      env={})
    for secret in _secrets(sasl):
        assert secret not in repr(cfg) and secret not in str(cfg)
