"""DLQ records nobody could decode, on the real broker: listed, shown, counted, never a crash.

Records carry every dialect's header names with garbage values (random bytes, 5,000-digit and
negative numbers, bad UTF-8, illegal topic names, 100 KB headers) plus Schema Registry rule-action
records built to ``DlqAction.populateHeaders`` (confluentinc/schema-registry,
``client/src/main/java/io/confluent/kafka/schemaregistry/rules/DlqAction.java``). ``dlq list``,
``show``, ``stats`` and ``replay`` end with their normal exit codes; a record that says nothing
usable is replayed only to an explicit target.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from kafka_reliable import headers as h
from kafka_reliable.dlq import dialects, schema_rules, share_group
from tests.helpers.cli import cli, json_lines
from tests.helpers.kafka import create_topic, read_to_end, unique_name

pytestmark = pytest.mark.usefixtures("wide_tables")

_NAMES = [
    h.ORIGINAL_TOPIC,
    h.ORIGINAL_PARTITION,
    h.ORIGINAL_OFFSET,
    h.ATTEMPT,
    h.REPLAY_COUNT,
    h.ERROR_CLASS,
    h.LAST_FAILURE_AT,
    "kafka_dlt-original-topic",
    "kafka_dlt-original-partition",
    "kafka_dlt-original-offset",
    "kafka_dlt-original-timestamp",
    dialects.CONNECT_PREFIX + "topic",
    dialects.CONNECT_PREFIX + "offset",
    dialects.STREAMS_PREFIX + "partition",
    "source_topic",
    "source_offset",
    share_group.TOPIC,
    share_group.OFFSET,
    share_group.DELIVERY_COUNT,
    share_group.MESSAGE,
    schema_rules.RULE_TOPIC,
    schema_rules.RULE_MODE,
]
_VALUES = [
    b"9" * 5000,
    b"-3",
    b"\xff\xfe",
    b"bad topic/\xc3",
    b"253402300800000",
    b"..",
    b"",
    b"\x00" * 8,
    b"2147483648",
    b"x" * 100_000,
]


def _garbage(rng: random.Random) -> list[tuple[str, bytes | None]]:
    out: list[tuple[str, bytes | None]] = []
    for _ in range(rng.randint(1, 6)):
        value = rng.choice(
            [*_VALUES, None, bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 30)))]
        )
        out.append((rng.choice(_NAMES), value))
    return out


def _rule(mode: bytes, topic: str) -> list[tuple[str, bytes | None]]:
    return [
        ("app", b"1"),
        (schema_rules.RULE_NAME, b"checkLen"),
        (schema_rules.RULE_MODE, mode),
        (schema_rules.RULE_SUBJECT, topic.encode() + b"-value"),
        (schema_rules.RULE_TOPIC, topic.encode()),
        (schema_rules.RULE_EXCEPTION, b"Expr failed: 'size(message.ssn) == 9'"),
    ]


@pytest.mark.slow
def test_undecodable_records_are_listed_shown_counted_and_replayed_only_to_a_target(
    capsys: pytest.CaptureFixture[str],
    kafka_bootstrap: str,
    admin: AdminClient,
) -> None:
    # Given a DLQ with 30 garbage records and two Schema Registry rule-action records
    source = create_topic(admin, unique_name("garbage-src"))
    dlq = create_topic(admin, source + ".dlq")
    target = create_topic(admin, unique_name("garbage-to"))
    rng = random.Random(24)
    records = [_garbage(rng) for _ in range(30)]
    records += [_rule(b"READ", source), _rule(b"WRITE", source)]
    p = Producer({"bootstrap.servers": kafka_bootstrap, "message.max.bytes": 2_000_000})
    for i, hs in enumerate(records):
        p.produce(dlq, key=b"k%d" % i, value=b"v%d" % i, headers=hs, partition=0)
    assert p.flush(30) == 0
    n = len(records)
    base = ("--bootstrap-servers", kafka_bootstrap)
    # When listed, shown, counted: normal exit codes, every record there
    code, out, err = cli(capsys, "dlq", "list", dlq, "--json", "--limit", "100", *base)
    assert code == 0, err
    rows: list[dict[str, Any]] = json_lines(out)
    assert len(rows) == n and sum(1 for r in rows if r["notes"]) >= 10
    assert all(
        isinstance(note, str) and note.startswith("undecodable: ")
        for r in rows
        for note in r["notes"]
    )
    code, out, err = cli(capsys, "dlq", "list", dlq, "--limit", "100", *base)
    assert code == 0 and "warning: 0:" in err + out
    for i in [*range(0, n, 3), n - 1]:  # every third (each show is its own consumer) and the last
        code, out, _ = cli(capsys, "dlq", "show", dlq, "--offset", f"0:{i}", "--json", *base)
        assert code == 0 and json.loads(out)["offset"] == i
        code, _, _ = cli(capsys, "dlq", "show", dlq, "--offset", f"0:{i}", *base)
        assert code == 0
    code, out, _ = cli(capsys, "dlq", "stats", dlq, "--json", *base)
    assert code == 0 and json.loads(out)["total_messages"] == n
    rule_rows = [r for r in rows if r["dialect"] == "schema_registry"]
    modes = [
        (r["extra"]["rule_mode"], r["original_topic"], r["reason"])
        for r in rule_rows
    ]
    assert modes == [
        ("READ", source, "rule_failed"),
        ("WRITE", source, "rule_failed"),
    ]
    # When replayed without a target: only records that say where they belong go anywhere
    code, out, err = cli(capsys, "dlq", "replay", dlq, "--yes", "--force", "--json", *base)
    result = json.loads(out)
    assert code in (5, 6), err
    write_skip = [s for s in result["skipped"] if s["offset"] == n - 1]
    assert write_skip and write_skip[0]["reason"].startswith("rule mode WRITE: ")
    assert all("\n" not in s["reason"] for s in result["skipped"])
    undecodable = [r for r in rows if r["dialect"] == "raw" and r["notes"]]
    assert {s["offset"] for s in result["skipped"]} >= {r["offset"] for r in undecodable}
    # the READ-mode rule record went back to its topic with the user's header, without __rule.*
    back = read_to_end(kafka_bootstrap, source)
    assert [(m.value(), m.headers()[0]) for m in back] == [(b"v%d" % (n - 2), ("app", b"1"))]
    # When replayed to an explicit target: every record goes there, nothing held up
    code, out, err = cli(
        capsys,
        "dlq",
        "replay",
        dlq,
        "--to-topic",
        target,
        "--yes",
        "--force",
        "--json",
        "--progress-group",
        unique_name("g"),
        *base,
    )
    result = json.loads(out)
    assert code == 0, err
    assert result["replayed"] == n and result["skipped"] == []
    assert sorted(m.value() for m in read_to_end(kafka_bootstrap, target)) == sorted(
        b"v%d" % i for i in range(n)
    )
