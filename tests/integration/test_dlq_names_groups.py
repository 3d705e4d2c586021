"""``kafka-reliable dlq`` on the real broker: DLQs named by other tools, Kafka Connect times,
garbled replay counts (issue 11) and consumer-group DLQs (issue 15)."""

from __future__ import annotations

import json
import time

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from kafka_reliable import headers as h
from kafka_reliable.config import RetryConfig, TopicNaming
from kafka_reliable.dlq import DeadLetterQueue
from kafka_reliable.errors import classify
from kafka_reliable.routing import route_failure
from tests.helpers.cli import cli, json_lines
from tests.helpers.dlq import connect_headers, dead_letter, make_source, spring_headers
from tests.helpers.kafka import create_topic, headers_dict, read_to_end, unique_name

pytestmark = pytest.mark.usefixtures("wide_tables")


def _produce(bootstrap: str, topic: str, records: list[tuple[bytes, list[tuple[str, bytes]], int | None]]) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for value, hdrs, ts in records:
        p.produce(topic, value=value, key=value, headers=hdrs, **({"timestamp": ts} if ts else {}))
    assert p.flush(30) == 0


@pytest.mark.slow
def test_garbled_replay_count_is_said_unreadable_and_refused_unless_forced(
    capsys: pytest.CaptureFixture[str], kafka_bootstrap: str, admin: AdminClient
) -> None:
    # Given a DLQ record whose replay count is 4 raw bytes (b"abcd" = 1,633,837,924 big-endian)
    source = make_source(admin, kafka_bootstrap, partitions=1, prefix="garbled")
    now = int(time.time() * 1000)
    dead_letter(kafka_bootstrap, source, 1, base_ms=now)
    _produce(kafka_bootstrap, source + ".dlq", [(b"garbled", [
        (h.MESSAGE_ID, b"garbled"), (h.ORIGINAL_TOPIC, source.encode()), (h.ATTEMPT, b"1"),
        (h.ERROR_CLASS, b"KafkaTimeoutError"), (h.REPLAY_COUNT, b"abcd")], None)])
    bs = ("--bootstrap-servers", kafka_bootstrap)
    # When listed, it is unreadable, not a huge number, and the table says so
    code, out, _ = cli(capsys, "dlq", "list", source, "--json", *bs)
    row = json_lines(out)[1]
    assert code == 0 and row["replay_count"] is None and row["unreadable_headers"] == [h.REPLAY_COUNT]
    code, out, err = cli(capsys, "dlq", "list", source, *bs)
    assert code == 0 and f"warning: 0:1: unreadable header(s) {h.REPLAY_COUNT}" in err
    # When replayed, the loop guard cannot tell: refused and said why, unless forced
    code, out, _ = cli(capsys, "dlq", "replay", source, "--yes", "--json", *bs)
    res = json.loads(out)
    assert code == 5 and res["replayed"] == 1 and res["skipped_loop_guard"] == 1
    assert res["skipped"][0]["message_id"] == "garbled" and "unreadable" in res["skipped"][0]["reason"]
    code, out, _ = cli(capsys, "dlq", "replay", source, "--key", "garbled", "--force", "--yes", "--json", *bs)
    assert code == 0 and json.loads(out)["replayed"] == 1
    replayed = {headers_dict(m)[h.MESSAGE_ID]: headers_dict(m) for m in read_to_end(kafka_bootstrap, source)}
    assert replayed[b"garbled"][h.REPLAY_COUNT] == b"1" and replayed[b"m0"][h.REPLAY_COUNT] == b"1"


@pytest.mark.slow
def test_foreign_dlq_names_are_found_after_ours_and_said(
    capsys: pytest.CaptureFixture[str], kafka_bootstrap: str, admin: AdminClient
) -> None:
    # Given a source topic whose DLQ is Spring's default <source>-dlt
    orders = create_topic(admin, unique_name("orders"), 1)
    dlt = create_topic(admin, orders + "-dlt", 1)
    _produce(kafka_bootstrap, dlt, [(f"s{i}".encode(), spring_headers(orders, 0, i, 1), None) for i in range(2)])
    bs = ("--bootstrap-servers", kafka_bootstrap)
    # When the source name is given, the foreign DLQ is used and that is said
    code, out, err = cli(capsys, "dlq", "list", orders, "--json", *bs)
    assert code == 0 and [r["topic"] for r in json_lines(out)] == [dlt, dlt]
    assert f"{orders}: using DLQ topic {dlt}" in err
    code, out, _ = cli(capsys, "dlq", "stats", orders, "--json", *bs)
    assert json.loads(out)["resolved"] == {"requested": orders, "dlq_topic": dlt, "how": "foreign"}
    code, out, _ = cli(capsys, "dlq", "replay", orders, "--dry-run", "--json", *bs)
    assert code == 0 and json.loads(out)["by_target"] == {orders: 2}
    # and ours wins when both exist; .DLT and -dlq are found too; a miss names every name tried
    dlq = DeadLetterQueue(bootstrap_servers=kafka_bootstrap)
    create_topic(admin, orders + ".dlq", 1)
    assert dlq.resolve(orders).dlq_topic == orders + ".dlq"
    for suffix in (".DLT", "-dlq"):
        src = unique_name("src")
        create_topic(admin, src + suffix, 1)
        assert (dlq.resolve(src).dlq_topic, dlq.resolve(src).how) == (src + suffix, "foreign")
    nosuch = unique_name("nosuch")
    code, _, err = cli(capsys, "dlq", "list", nosuch, *bs)
    assert code == 3 and err.strip() == (
        f"kafka-reliable dlq: no DLQ topic for {nosuch} (tried {nosuch}.dlq, {nosuch}-dlt, {nosuch}.DLT, {nosuch}-dlq)")


def test_connect_times_are_original_timestamps_and_the_filters_say_so(
    capsys: pytest.CaptureFixture[str], kafka_bootstrap: str, admin: AdminClient
) -> None:
    # Given a Connect DLQ: records dead-lettered just now, carrying their original timestamp (2 h ago)
    payments = create_topic(admin, unique_name("payments"), 1)
    connect_dlq = create_topic(admin, "dlq-" + payments, 1)
    original = int(time.time() * 1000) - 7_200_000
    _produce(kafka_bootstrap, connect_dlq, [(f"c{i}".encode(), connect_headers(payments, 0, i), original + i)
                                            for i in range(3)])
    bs = ("--bootstrap-servers", kafka_bootstrap)
    # Then failed-at is unknown and the time shown is the original timestamp
    code, out, _ = cli(capsys, "dlq", "list", connect_dlq, "--json", *bs)
    rows = json_lines(out)
    assert [(r["failed_at_ms"], r["time_basis"], r["original_timestamp_ms"]) for r in rows] == [
        (None, "original timestamp", original + i) for i in range(3)]
    code, out, err = cli(capsys, "dlq", "list", connect_dlq, "--since", "3h", *bs)
    assert code == 0 and "unknown; original timestamp" in out
    assert "--since/--until filtered on: original timestamp (3 records)" in err
    # and a --since that misses them says which time it compared
    code, out, err = cli(capsys, "dlq", "list", connect_dlq, "--since", "10m", "--json", *bs)
    assert code == 0 and out == "" and "no record matched" in err and "original timestamp" in err
    code, out, _ = cli(capsys, "dlq", "show", connect_dlq, "--offset", "0:0", *bs)
    assert "unknown (Kafka Connect keeps the original timestamp" in out
    code, out, _ = cli(capsys, "dlq", "--help")
    assert "original timestamp" in out.replace("\n", " ")


@pytest.mark.slow
def test_a_consumer_group_dlq_replays_into_the_groups_retry_topic_due_now(
    capsys: pytest.CaptureFixture[str], kafka_bootstrap: str, admin: AdminClient
) -> None:
    # Given orders.billing.dlq holding a record the billing group's handler failed on
    naming = TopicNaming()
    orders = create_topic(admin, unique_name("orders"), 1)
    retry = create_topic(admin, naming.group_retry_topic(orders, "billing"), 1)
    gdlq = create_topic(admin, naming.group_dlq_topic(orders, "billing"), 1)
    route = route_failure(
        topic=orders, classification=classify("ValueError"), error_message="bad amount", attempt=4,
        retry_config=RetryConfig(max_retries=3), naming=naming, now_ms=int(time.time() * 1000), headers=[],
        message_id="c0", original_partition=0, original_offset=17,
    )
    _produce(kafka_bootstrap, gdlq, [(b"c0", [*route.headers, (h.CONSUMER_GROUP, b"billing")], None)])
    bs = ("--bootstrap-servers", kafka_bootstrap, "--group", "billing")
    code, out, err = cli(capsys, "dlq", "list", orders, "--json", *bs)
    assert code == 0 and [r["message_id"] for r in json_lines(out)] == ["c0"]
    assert f"using DLQ topic {gdlq}" in err
    stats = json.loads(cli(capsys, "dlq", "stats", orders, "--json", *bs)[1])
    assert (stats["total_messages"], stats["topic_breakdown"]) == (1, {orders: 1})
    # When replayed by default
    before = int(time.time() * 1000)
    code, out, _ = cli(capsys, "dlq", "replay", orders, "--yes", "--json", *bs)
    after = int(time.time() * 1000)
    # Then it is due now on the group's retry topic, and the source topic (all groups) gets nothing
    assert code == 0 and json.loads(out)["by_target"] == {retry: 1}
    (rec,) = read_to_end(kafka_bootstrap, retry)
    hd = headers_dict(rec)
    assert before <= int(hd[h.NEXT_ATTEMPT_AT]) <= after
    assert (hd[h.CONSUMER_GROUP], hd[h.ORIGINAL_TOPIC], hd[h.ORIGINAL_OFFSET]) == (b"billing", orders.encode(), b"17")
    assert (hd[h.MESSAGE_ID], hd[h.ATTEMPT], hd[h.REPLAY_COUNT], rec.value()) == (b"c0", b"0", b"1", b"c0")
    assert read_to_end(kafka_bootstrap, orders) == []
    # When --to-topic overrides, it goes there as a plain record
    code, out, _ = cli(capsys, "dlq", "replay", orders, "--to-topic", orders, "--yes", "--json", *bs)
    (plain,) = read_to_end(kafka_bootstrap, orders)
    assert code == 0 and h.NEXT_ATTEMPT_AT not in headers_dict(plain) and h.CONSUMER_GROUP not in headers_dict(plain)
    code, out, _ = cli(capsys, "dlq", "purge", orders, "--all", "--yes", "--json", *bs)
    assert code == 0 and json.loads(out)["deleted"] == 1
