"""``kafka-reliable topics doctor`` against topics made wrong on purpose on the real broker.

The dev broker has one node, so every topic there has replication factor 1 (itself a finding);
RF >= 3 cases are in ``tests/unit/test_topics_doctor.py``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient

from kafka_reliable.topics import CompanionTopics
from tests.helpers.cli import cli
from tests.helpers.kafka import create_topic, unique_name

pytestmark = pytest.mark.usefixtures("wide_tables")


def _doctor(
    capsys: pytest.CaptureFixture[str], bootstrap: str, *args: str
) -> tuple[int, dict[str, Any]]:
    code, out, err = cli(
        capsys, "topics", "doctor", *args, "--json", "--bootstrap-servers", bootstrap
    )
    return code, json.loads(out)


def test_topics_made_wrong_on_purpose_are_flagged(
    capsys: pytest.CaptureFixture[str],
    kafka_bootstrap: str,
    admin: AdminClient,
) -> None:
    # Given a well-made source (companions from `topics ensure`' code) and one made wrong on purpose
    good = create_topic(admin, unique_name("doc-good"), 3)
    CompanionTopics({"bootstrap.servers": kafka_bootstrap}, admin=admin).ensure(good)
    bad = create_topic(
        admin,
        unique_name("doc-bad"),
        4,
        {"max.message.bytes": "2000000", "min.insync.replicas": "2"},
    )
    create_topic(
        admin,
        bad + ".dlq",
        2,
        {"retention.ms": "3600000", "max.message.bytes": "1000000", "cleanup.policy": "compact"},
    )
    # When the doctor examines both (no .retry for the bad one)
    code, report = _doctor(capsys, kafka_bootstrap, good, bad)
    # Then it exits 1 and names every problem of the bad one
    assert code == 1 and report["ok"] is False and report["missing"] == []
    found = {(f["topic"], f["check"]) for f in report["findings"]}
    assert found - {
        (t, "replication_factor") for t in (good, good + ".retry", good + ".dlq", bad, bad + ".dlq")
    } == {
        (bad, "min_insync_replicas"),
        (bad + ".retry", "companion_missing"),
        (bad + ".dlq", "companion_partitions"),
        (bad + ".dlq", "max_message_bytes"),
        (bad + ".dlq", "compacted_companion"),
        (bad + ".dlq", "dlq_retention"),
    }
    dlq_findings = [f for f in report["findings"] if f["topic"] == bad + ".dlq"]
    messages = {f["check"]: f["message"] for f in dlq_findings}
    assert messages["max_message_bytes"] == (
        f"max.message.bytes=1000000 < {bad}'s 2000000: "
        "a record that failed for its size cannot go to the DLQ topic"
    )
    # and the well-made one has only the single-broker finding, which --skip leaves out
    code, report = _doctor(capsys, kafka_bootstrap, good, "--skip", "replication_factor")
    assert (code, report["findings"], report["ok"]) == (0, [], True)
    # and a shorter time to notice accepts the bad DLQ's retention
    code, report = _doctor(
        capsys, kafka_bootstrap, bad, "--skip", "replication_factor", "--notice-within", "30m"
    )
    assert "dlq_retention" not in {f["check"] for f in report["findings"]}


def test_the_table_a_missing_source_and_bad_arguments(
    capsys: pytest.CaptureFixture[str],
    kafka_bootstrap: str,
    admin: AdminClient,
) -> None:
    bad = create_topic(admin, unique_name("doc-tbl"), 2)
    code, out, _ = cli(capsys, "topics", "doctor", bad, "--bootstrap-servers", kafka_bootstrap)
    assert code == 1 and "companion_missing" in out and f"{bad}.retry" in out
    code, report = _doctor(capsys, kafka_bootstrap, unique_name("doc-none"))
    assert code == 3 and len(report["missing"]) == 1
    code, _, err = cli(
        capsys, "topics", "doctor", bad + ".dlq", "--bootstrap-servers", kafka_bootstrap
    )
    assert code == 2 and "is itself a companion topic" in err
    code, _, err = cli(capsys, "topics", "doctor", bad, "--notice-within", "soon")
    assert code == 2 and "not a duration" in err


def test_without_topics_every_source_with_companions_is_examined(
    capsys: pytest.CaptureFixture[str],
    kafka_bootstrap: str,
    admin: AdminClient,
) -> None:
    src = create_topic(admin, unique_name("doc-all"), 1)
    create_topic(admin, src + ".dlq", 1, {"cleanup.policy": "compact"})
    code, report = _doctor(capsys, kafka_bootstrap, "--skip", "replication_factor")
    assert code == 1 and src in report["sources"]
    assert {
        "source": src,
        "topic": src + ".dlq",
        "check": "compacted_companion",
        "message": "cleanup.policy=compact: compaction keeps only the last record per key; earlier "
        "failures of a key are lost",
    } in report["findings"]
