"""``kafka-reliable dlq`` on the real broker: JSON for scripts, tables for people, exit codes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient

from kafka_reliable import headers as h
from tests.helpers.cli import ROOT, cli, json_lines, run_cli
from tests.helpers.dlq import Dlq500, code_of, dead_letter, iso, make_source, write_foreign
from tests.helpers.kafka import create_topic, headers_dict, is_empty, read_to_end, unique_name

pytestmark = pytest.mark.usefixtures("wide_tables")


def test_help_documents_every_verb_and_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "dlq", "--help")
    assert code == 0
    for verb in ("stats", "list", "show", "replay", "purge"):
        assert verb in out
    assert "exit codes" in out and "130" in out and "not confirmed" in out


def test_stats_json_and_table(capsys: pytest.CaptureFixture[str], kafka_bootstrap: str, dlq500: Dlq500) -> None:
    code, out, _ = cli(capsys, "dlq", "stats", dlq500.source, "--json", "--bootstrap-servers", kafka_bootstrap)
    assert code == 0
    stats = json.loads(out)
    assert stats["total_messages"] == 500 and stats["topic_breakdown"] == {dlq500.source: 500}
    assert stats["error_class_breakdown"]["KafkaTimeoutError"] == 200
    code, out, _ = cli(capsys, "dlq", "stats", dlq500.source + ".dlq", "--bootstrap-servers", kafka_bootstrap)
    assert code == 0 and "500 records" in out and "TopicAuthorizationFailedError" in out


def test_list_filters_and_json_lines(capsys: pytest.CaptureFixture[str], kafka_bootstrap: str, dlq500: Dlq500) -> None:
    bs = ("--bootstrap-servers", kafka_bootstrap)
    code, out, _ = cli(capsys, "dlq", "list", dlq500.source, "--error", "MessageSizeTooLargeError",
                       "--limit", "1000", "--json", *bs)
    rows = json_lines(out)
    assert code == 0 and len(rows) == 200 and {r["error_class"] for r in rows} == {"MessageSizeTooLargeError"}

    since, until = iso(dlq500.base_ms + 10_000), iso(dlq500.base_ms + 20_000)
    code, out, _ = cli(capsys, "dlq", "list", dlq500.source, "--since", since, "--until", until, "--json", *bs)
    assert sorted(r["id"] for r in json_lines(out)) == sorted(f"m{i}" for i in range(10, 20))

    code, out, _ = cli(capsys, "dlq", "list", dlq500.source, "--key", "k42", "--json", *bs)
    assert [r["id"] for r in json_lines(out)] == ["m42"]

    code, out, _ = cli(capsys, "dlq", "list", dlq500.source, "--limit", "5", *bs)
    assert code == 0 and "m0" in out and "KafkaTimeoutError" in out and "m5 " not in out


def test_show_by_id_and_offset_and_exit_codes(capsys: pytest.CaptureFixture[str], kafka_bootstrap: str, dlq500: Dlq500) -> None:
    bs = ("--bootstrap-servers", kafka_bootstrap)
    code, out, _ = cli(capsys, "dlq", "show", dlq500.source, "--message-id", "m77", "--json", *bs)
    rec = json.loads(out)
    assert code == 0 and rec["key"] == "k77" and rec["last_error"] == "failure 77"
    code, out, _ = cli(capsys, "dlq", "show", dlq500.source, "--offset", f"{rec['partition']}:{rec['offset']}", *bs)
    assert code == 0 and "m77" in out and "kafka_reliable.error.class" in out
    assert cli(capsys, "dlq", "show", dlq500.source, "--message-id", "missing", *bs)[0] == 3
    assert cli(capsys, "dlq", "show", dlq500.source, "--offset", "zero", *bs)[0] == 2
    assert cli(capsys, "dlq", "list", unique_name("nosuch") + ".dlq", *bs)[0] == 3
    assert cli(capsys, "dlq", "list", dlq500.source, "--since", "last tuesday", *bs)[0] == 2


def test_dry_run_shows_the_histogram_of_failure_reasons(
    capsys: pytest.CaptureFixture[str], kafka_bootstrap: str, dlq500: Dlq500
) -> None:
    code, out, _ = cli(capsys, "dlq", "replay", dlq500.source, "--dry-run", "--json",
                       "--bootstrap-servers", kafka_bootstrap)
    plan = json.loads(out)
    assert code == 0 and plan["replayed"] == 500 and plan["dry_run"] is True
    assert plan["by_error_class"] == {
        "KafkaTimeoutError": 200, "MessageSizeTooLargeError": 200, "TopicAuthorizationFailedError": 100}
    assert plan["by_reason"] == {"non_retriable": 300, "retries_exhausted": 200}


def _count_until(bootstrap: str, topic: str, at_least: int, timeout_s: float) -> int:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_name("count"),
                  "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
    c.subscribe([topic])
    n, deadline = 0, time.monotonic() + timeout_s
    try:
        while n < at_least and time.monotonic() < deadline:
            n += sum(1 for m in c.consume(500, timeout=0.2) if m.error() is None)
    finally:
        c.close()
    return n


@pytest.mark.slow
def test_replay_killed_halfway_then_resumed_replays_exactly_200(
    kafka_bootstrap: str, dlq500: Dlq500, admin: AdminClient
) -> None:
    # Given a replay of the 200 timeout records at 50 records/s, as its own process
    target = create_topic(admin, unique_name("cli-replay"), 3)
    argv = ["dlq", "replay", dlq500.source, "--error", "KafkaTimeoutError", "--to-topic", target,
            "--yes", "--bootstrap-servers", kafka_bootstrap]
    proc = subprocess.Popen([sys.executable, "-m", "kafka_reliable", *argv, "--rate", "50"], cwd=ROOT,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # When it is killed (no chance to clean up) once some records arrived
    try:
        seen = _count_until(kafka_bootstrap, target, 40, timeout_s=30)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert 40 <= seen < 200, f"first run replayed {seen}; stderr: {proc.stderr.read() if proc.stderr else ''}"
    # and the same command runs again
    again = run_cli(*argv, "--json")  # same job, full speed
    # Then 200 records arrived in total, each once
    assert again.returncode == 0, again.stderr
    assert 0 < json.loads(again.stdout)["replayed"] < 200
    got = read_to_end(kafka_bootstrap, target, at_least=200, timeout_s=30)
    ids = [headers_dict(m)[h.MESSAGE_ID].decode() for m in got]
    assert len(ids) == 200 and set(ids) == {f"m{i}" for i in range(500) if code_of(i) == "_MSG_TIMED_OUT"}


def test_replay_and_purge_refuse_without_yes_when_stdin_is_not_a_terminal(
    kafka_bootstrap: str, dlq500: Dlq500, admin: AdminClient
) -> None:
    target = create_topic(admin, unique_name("refused"), 1)
    r = run_cli("dlq", "replay", dlq500.source, "--to-topic", target, "--bootstrap-servers", kafka_bootstrap)
    assert r.returncode == 4 and "--yes" in r.stderr and "would replay" in r.stderr
    p = run_cli("dlq", "purge", dlq500.source, "--all", "--bootstrap-servers", kafka_bootstrap)
    assert p.returncode == 4 and "--yes" in p.stderr
    assert is_empty(kafka_bootstrap, target)
    s = run_cli("dlq", "stats", dlq500.source, "--json", "--scan-limit", "0", "--bootstrap-servers", kafka_bootstrap)
    assert json.loads(s.stdout)["total_messages"] == 500


def test_purge_before_then_all(capsys: pytest.CaptureFixture[str], kafka_bootstrap: str, admin: AdminClient) -> None:
    # Given 30 records stamped two hours ago and 20 stamped now
    source = make_source(admin, kafka_bootstrap, partitions=2, prefix="purge")
    now = int(time.time() * 1000)
    dead_letter(kafka_bootstrap, source, 30, base_ms=now - 7_200_000, step_ms=10)
    dead_letter(kafka_bootstrap, source, 20, base_ms=now - 1000, step_ms=10, start=30)
    bs = ("--bootstrap-servers", kafka_bootstrap)
    # When records older than one hour are purged
    code, out, err = cli(capsys, "dlq", "purge", source, "--before", "1h", "--yes", "--json", *bs)
    # Then only those go
    res = json.loads(out)
    assert code == 0 and (res["dlq_topic"], res["deleted"]) == (source + ".dlq", 30)
    assert res["resolved"] == {"requested": source, "dlq_topic": source + ".dlq", "how": "ours"}
    code, out, _ = cli(capsys, "dlq", "list", source, "--limit", "100", "--json", *bs)
    assert sorted(r["id"] for r in json_lines(out)) == sorted(f"m{i}" for i in range(30, 50))
    code, out, _ = cli(capsys, "dlq", "purge", source, "--all", "--yes", *bs)
    assert code == 0 and "deleted 20 records" in out
    assert cli(capsys, "dlq", "purge", source, "--before", "soon", "--yes", *bs)[0] == 2


def test_spring_and_connect_dlqs_through_the_cli(
    capsys: pytest.CaptureFixture[str], kafka_bootstrap: str, admin: AdminClient
) -> None:
    orders, spring_dlt, payments, connect_dlq = write_foreign(kafka_bootstrap, admin)
    bs = ("--bootstrap-servers", kafka_bootstrap)
    code, out, _ = cli(capsys, "dlq", "list", spring_dlt, "--json", *bs)
    rows = json_lines(out)
    assert code == 0 and [(r["original_topic"], r["original_partition"], r["original_offset"]) for r in rows] == [
        (orders, 1, 1000 + i) for i in range(3)]
    assert rows[0]["error_class"] == "org.springframework.kafka.listener.ListenerExecutionFailedException"
    code, out, _ = cli(capsys, "dlq", "list", connect_dlq, *bs)
    assert code == 0 and "DataException" in out and payments in out
    code, out, _ = cli(capsys, "dlq", "replay", connect_dlq, "--yes", "--json", *bs)
    assert code == 0 and json.loads(out)["by_target"] == {payments: 3}
    assert len(read_to_end(kafka_bootstrap, payments, at_least=3, timeout_s=20)) == 3
