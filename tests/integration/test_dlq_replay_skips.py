"""Replay of a DLQ holding records that can never reach their target (issue 11, defect 4).

A record whose target is an illegal name, a topic that does not exist, or a topic that refuses
it is skipped and reported; the others are delivered once, progress moves past the skipped
ones, and running the same replay again replays nothing twice.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
from confluent_kafka import (
    Producer,
)
from confluent_kafka.admin import AdminClient

from kafka_reliable import headers as h
from kafka_reliable.dlq import DeadLetterQueue, ReplayOptions, ReplayTargetError
from tests.helpers.cli import cli
from tests.helpers.dlq import dead_letter, make_source
from tests.helpers.kafka import create_topic, headers_dict, read_to_end, unique_name

pytestmark = pytest.mark.usefixtures("wide_tables")


def _bad(p: Producer, dlq: str, target: str, mid: str, value: bytes = b"bad") -> None:
    p.produce(dlq, value=value, key=mid.encode(), headers=[
        (h.MESSAGE_ID, mid.encode()), (h.ORIGINAL_TOPIC, target.encode()), (h.ATTEMPT, b"1"),
        (h.ERROR_CLASS, b"MessageSizeTooLargeError"), (h.DLQ_REASON, b"non_retriable"),
    ])


def dlq_with_bad_targets(bootstrap: str, admin: AdminClient) -> tuple[str, str, str]:
    """``<source>.dlq`` (1 partition): m0 m1, an illegal target, a missing one, one refused
    (4 KB into a topic taking 1 KB), m2. Returns (source, missing topic, tiny topic)."""
    source = make_source(admin, bootstrap, partitions=1, prefix="skips")
    tiny = create_topic(admin, unique_name("tiny"), 1, {"max.message.bytes": "1024"})
    missing = f"nosuch-{uuid.uuid4().hex[:8]}"
    now = int(time.time() * 1000)
    dead_letter(bootstrap, source, 2, base_ms=now - 10_000)
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    _bad(p, source + ".dlq", "bad topic!", "bad-name")
    _bad(p, source + ".dlq", missing, "bad-missing")
    _bad(p, source + ".dlq", tiny, "bad-refused", value=b"x" * 4000)
    assert p.flush(30) == 0
    dead_letter(bootstrap, source, 1, base_ms=now - 5000, start=2)
    return source, missing, tiny


def _assert_skips(skipped: list[dict[str, object]], missing: str, tiny: str) -> None:
    assert [(s["partition"], s["offset"], s["message_id"], s["target"]) for s in skipped] == [
        (0, 2, "bad-name", "bad topic!"), (0, 3, "bad-missing", missing), (0, 4, "bad-refused", tiny)]
    reasons = [str(s["reason"]) for s in skipped]
    assert "illegal topic name" in reasons[0]
    assert reasons[1] == f"topic {missing} does not exist"
    assert "MSG_SIZE_TOO_LARGE" in reasons[2]


def _ids(bootstrap: str, topic: str) -> list[str]:
    return sorted(headers_dict(m)[h.MESSAGE_ID].decode() for m in read_to_end(bootstrap, topic))


@pytest.mark.slow
def test_cli_at_least_once_skips_reports_and_a_rerun_duplicates_nothing(
    capsys: pytest.CaptureFixture[str], kafka_bootstrap: str, admin: AdminClient
) -> None:
    # Given a DLQ whose 3rd, 4th and 5th records can never reach their targets
    source, missing, tiny = dlq_with_bad_targets(kafka_bootstrap, admin)
    bs = ("--bootstrap-servers", kafka_bootstrap)
    # When planned, the dry run already names the two it can tell without sending
    code, out, _ = cli(capsys, "dlq", "replay", source, "--dry-run", *bs)
    assert code == 6 and "bad topic!" in out and f"topic {missing} does not exist" in out
    # When replayed at least once
    code, out, err = cli(capsys, "dlq", "replay", source, "--at-least-once", "--yes", "--json", *bs)
    # Then the good ones arrive, the bad ones are listed, the exit code says "partial"
    res = json.loads(out)
    assert code == 6, err
    assert res["replayed"] == 3 and res["partial"] is True and res["skipped_bad_target"] == 3
    _assert_skips(res["skipped"], missing, tiny)
    assert res["by_target"] == {source: 3}
    assert _ids(kafka_bootstrap, source) == ["m0", "m1", "m2"]
    # and running it again replays nothing twice
    code, out, _ = cli(capsys, "dlq", "replay", source, "--at-least-once", "--yes", "--json", *bs)
    assert code == 0 and json.loads(out)["replayed"] == 0
    assert _ids(kafka_bootstrap, source) == ["m0", "m1", "m2"]


@pytest.mark.slow
def test_library_transactional_replay_isolates_the_refused_record(kafka_bootstrap: str, admin: AdminClient) -> None:
    # Given the same DLQ, replayed in transactions (the refused record fails its chunk)
    source, missing, tiny = dlq_with_bad_targets(kafka_bootstrap, admin)
    dlq = DeadLetterQueue(bootstrap_servers=kafka_bootstrap)
    # When replayed through the library's int API
    assert dlq.replay_dlq_messages(source) == 3
    # Then the skipped records are on the richer result
    assert dlq.last_replay is not None and dlq.last_replay.partial
    _assert_skips([s.to_json() for s in dlq.last_replay.skipped], missing, tiny)
    # and each good record is visible exactly once, none twice after a rerun
    assert _ids(kafka_bootstrap, source) == ["m0", "m1", "m2"]
    again = dlq.replay(source)
    assert again.replayed == 0 and again.skipped == [] and not again.partial
    assert _ids(kafka_bootstrap, source) == ["m0", "m1", "m2"]


def test_replay_to_a_topic_that_does_not_exist_says_so_in_one_line(
    capsys: pytest.CaptureFixture[str], kafka_bootstrap: str, admin: AdminClient
) -> None:
    source = make_source(admin, kafka_bootstrap, partitions=1, prefix="nosuchto")
    dead_letter(kafka_bootstrap, source, 2, base_ms=int(time.time() * 1000))
    missing = unique_name("nosuch-target")
    code, out, err = cli(capsys, "dlq", "replay", source, "--to-topic", missing, "--yes",
                         "--bootstrap-servers", kafka_bootstrap)
    lines = [line for line in err.splitlines() if "error" in line]
    assert code == 3 and out == "" and len(lines) == 1
    assert f"{missing!r}: topic {missing} does not exist" in lines[0]
    with pytest.raises(ReplayTargetError, match="illegal topic name"):
        DeadLetterQueue(bootstrap_servers=kafka_bootstrap).replay(source, ReplayOptions(to_topic="no way"))


@pytest.mark.parametrize("transactional", [True, False], ids=["transactional", "at-least-once"])
def test_batch_mates_of_a_refused_record_are_delivered_once(
    kafka_bootstrap: str, admin: AdminClient, transactional: bool
) -> None:
    # Given a 4 KB record between two small ones, all for a topic taking 1 KB batches, and
    # a 1.2 MB one (the DLQ takes it, the replaying client refuses it: message.max.bytes 1 MB)
    source = make_source(admin, kafka_bootstrap, partitions=1, prefix="mates")
    tiny = create_topic(admin, unique_name("tiny"), 1, {"max.message.bytes": "1024"})
    p = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True, "message.max.bytes": 2_000_000})
    _bad(p, source + ".dlq", tiny, "small-0", value=b"s" * 300)
    _bad(p, source + ".dlq", tiny, "big", value=b"x" * 4000)
    _bad(p, source + ".dlq", tiny, "small-1", value=b"s" * 300)
    _bad(p, source + ".dlq", tiny, "huge", value=b"h" * 1_200_000)
    _bad(p, source + ".dlq", tiny, "small-2", value=b"s" * 300)
    assert p.flush(30) == 0
    dlq = DeadLetterQueue(bootstrap_servers=kafka_bootstrap)
    # When replayed (one chunk; the client may put all three in one batch)
    res = dlq.replay(source, ReplayOptions(transactional=transactional, chunk_interval_s=60))
    # Then only the big ones are skipped and each small one arrives once
    assert (res.replayed, [(s.message_id, s.target) for s in res.skipped]) == (3, [("big", tiny), ("huge", tiny)])
    assert "MSG_SIZE_TOO_LARGE" in res.skipped[1].reason
    assert _ids(kafka_bootstrap, tiny) == ["small-0", "small-1", "small-2"]
