"""ReliableKafkaProducer on the real broker: success, DLQ, retry, cluster down."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kafka_reliable import ReliableKafkaProducer, RetryConfig, SerializationError
from kafka_reliable import headers as H
from tests.helpers.kafka import (
    create_topic,
    headers_dict,
    is_empty,
    read_to_end,
    unique_name,
    wait_for_config,
)
from tests.helpers.waits import wait_until


def test_success_path_10k(kafka_bootstrap: str, new_topic, tmp_path: Path) -> None:
    # Given
    topic = new_topic(partitions=3)
    with ReliableKafkaProducer(bootstrap_servers=kafka_bootstrap, spool_path=tmp_path / "s.db") as p:
        # When
        first = p.send_message(topic, {"user_id": "123", "amount": 99.99}, key="123")
        res = p.send_batch(topic, [{"i": i} for i in range(9_999)], key_extractor=lambda m: str(m["i"]))
        assert p.flush(30) == 0
        # Then
        assert res["total"] == 9_999 and res["sent"] == 9_999 and res["failed"] == 0
        assert len(set(res["message_ids"])) == 9_999
        assert p.get_message_status(first) == "sent"
        assert all(p.get_message_status(m) == "sent" for m in res["message_ids"])
        stats = p.get_stats()
        assert stats["messages_sent"] == 10_000 and stats["messages_failed"] == 0
        assert stats["error_rate"] == 0.0
        assert stats["latency_stats"]["p99_ms"] >= stats["latency_stats"]["p95_ms"] > 0
        assert p.get_pending_messages() == []
    got = read_to_end(kafka_bootstrap, topic, at_least=10_000)
    assert len(got) == 10_000
    ids = {headers_dict(m)[H.MESSAGE_ID].decode() for m in got}
    assert ids == {first, *res["message_ids"]}


def test_oversized_record_goes_to_dlq_with_headers(kafka_bootstrap: str, new_topic, tmp_path: Path) -> None:
    # Given a topic that takes at most 10 kB per record
    topic = new_topic(config={"max.message.bytes": "10000"})
    big = b"x" * 50_000
    with ReliableKafkaProducer(
        bootstrap_servers=kafka_bootstrap, spool_path=tmp_path / "s.db",
        producer_config={"compression_type": "none"},
    ) as p:
        # When
        mid = p.send_message(topic, big, key="k1", headers={"trace": "abc"})
        p.flush(30)
        # Then
        assert p.get_message_status(mid) == "dlq"
        assert p.get_stats()["messages_failed"] == 1
        # and the producer's DLQ API reads it back (the feature document's "Debugging Tools")
        [dm] = p.get_dlq_messages(topic)
        assert (dm.id, dm.topic, dm.value, dm.key) == (mid, topic + ".dlq", big, b"k1")
        assert dm.error_class == "MessageSizeTooLargeError" and dm.reason == "non_retriable"
        assert dm.retry_count == 1 and "too large" in (dm.last_error or "").lower()
        assert dm.first_failed_at is not None
    [rec] = read_to_end(kafka_bootstrap, topic + ".dlq", at_least=1)
    h = headers_dict(rec)
    assert rec.value() == big and rec.key() == b"k1"
    assert h["trace"] == b"abc"
    assert h[H.MESSAGE_ID].decode() == mid
    assert h[H.ORIGINAL_TOPIC].decode() == topic
    assert h[H.ERROR_CODE] == b"MSG_SIZE_TOO_LARGE"
    assert h[H.ERROR_CLASS] == b"MessageSizeTooLargeError"
    assert h[H.ERROR_RETRIABLE] == b"false"
    assert h[H.DLQ_REASON] == b"non_retriable"
    assert h[H.ATTEMPT] == b"1"
    assert int(h[H.FIRST_FAILURE_AT]) == int(h[H.LAST_FAILURE_AT]) > 0
    assert H.ERROR_MESSAGE in h and H.NEXT_ATTEMPT_AT not in h
    assert H.ORIGINAL_TIMESTAMP not in h  # never written before: the record keeps its own timestamp
    assert 0 < rec.timestamp()[1] <= int(h[H.LAST_FAILURE_AT])


def test_retriable_failure_goes_to_retry(kafka_bootstrap: str, tmp_path: Path) -> None:
    # Given a topic that does not exist yet (auto-creation is off): a retriable failure.
    # (Kafka 4.x bounds min.insync.replicas by the replica count, so a one-broker cluster
    # can no longer be made to answer NOT_ENOUGH_REPLICAS.)
    topic = unique_name("notyet")
    rc = RetryConfig(max_retries=3, initial_delay_ms=2000, max_delay_ms=60_000, jitter=False)
    with ReliableKafkaProducer(
        bootstrap_servers=kafka_bootstrap, retry_config=rc, spool_path=tmp_path / "s.db",
        producer_config={"delivery_timeout_ms": 3000, "request_timeout_ms": 1000},
    ) as p:
        # When
        before = int(time.time() * 1000)
        mids = [p.send_message(topic, {"n": i}, key=str(i)) for i in range(20)]
        p.flush(30)
        # Then
        assert {p.get_message_status(m) for m in mids} == {"retrying"}
        assert p.get_stats()["retry_stats"]["total_retries"] == 20
        assert p.retry_manager.get_stats()["pending_retries"] == 20
    recs = read_to_end(kafka_bootstrap, topic + ".retry", at_least=20)
    assert len(recs) == 20
    for r in recs:
        h = headers_dict(r)
        assert h[H.ATTEMPT] == b"1"
        assert h[H.ERROR_RETRIABLE] == b"true"
        assert h[H.ERROR_CODE] in (b"_MSG_TIMED_OUT", b"UNKNOWN_TOPIC_OR_PART", b"_UNKNOWN_TOPIC")
        assert h[H.ORIGINAL_TOPIC].decode() == topic
        failed_at = int(h[H.LAST_FAILURE_AT])
        assert failed_at >= before
        assert int(h[H.NEXT_ATTEMPT_AT]) == failed_at + 2000  # backoff(1) without jitter
    assert {headers_dict(r)[H.MESSAGE_ID].decode() for r in recs} == set(mids)
    assert [int(headers_dict(r)[H.MESSAGE_ID].split(b"-")[1]) for r in recs] == sorted(
        int(m.split("-")[1]) for m in mids
    )  # one partition: order kept


def test_bad_value_raises_and_sends_nothing(kafka_bootstrap: str, new_topic, tmp_path: Path) -> None:
    topic = new_topic()
    with ReliableKafkaProducer(bootstrap_servers=kafka_bootstrap, spool_path=tmp_path / "s.db") as p:
        with pytest.raises(SerializationError, match="message 1 of the batch"):
            p.send_batch(topic, [{"ok": 1}, {"bad": object()}])
        with pytest.raises(ValueError, match="invalid topic name"):
            p.send_message("bad topic!", {"x": 1})
        assert p.get_stats()["messages_sent"] == 0
    assert is_empty(kafka_bootstrap, topic)


def test_cluster_down_spools_then_delivers_all(outage_broker, tmp_path: Path) -> None:
    # Given a cluster that is down
    from confluent_kafka.admin import AdminClient

    bootstrap = outage_broker.bootstrap_servers
    topic = create_topic(AdminClient({"bootstrap.servers": bootstrap}), unique_name("down"))
    spool = tmp_path / "spool.db"
    outage_broker.stop()
    try:
        # When 1,000 records are sent and the producer closes
        p = ReliableKafkaProducer(bootstrap_servers=bootstrap, spool_path=spool)
        mids = [p.send_message(topic, {"n": i}, key=str(i)) for i in range(1000)]
        p.close(timeout=3)
        assert {p.get_message_status(m) for m in mids} == {"spooled"}
    finally:
        outage_broker.start()
    # Then a new producer drains the spool and every message id arrives
    with ReliableKafkaProducer(bootstrap_servers=bootstrap, spool_path=spool) as p2:
        wait_until(lambda: p2.spool.count() == 0, 60, lambda: f"spool drained, holds {p2.spool.count()}", step_s=0.5)
    got = read_to_end(bootstrap, topic, at_least=1000, timeout_s=60)
    ids = [headers_dict(m)[H.MESSAGE_ID].decode() for m in got]
    assert set(ids) == set(mids), f"lost {len(set(mids) - set(ids))}"
    print(f"cluster-down: sent 1000, spooled 1000, arrived {len(set(ids))} distinct ({len(ids)} records)")


def test_batch_settles_and_spares_innocent_batch_mates(kafka_bootstrap: str, new_topic, tmp_path: Path) -> None:
    # Given a 10 kB topic and a batch where one record is too large
    topic = new_topic(config={"max.message.bytes": "10000"})
    with ReliableKafkaProducer(
        bootstrap_servers=kafka_bootstrap, spool_path=tmp_path / "s.db", producer_config={"compression_type": "none"},
    ) as p:
        # When
        t0 = time.monotonic()
        res = p.send_batch(topic, [b"x" * 50_000, b"small"], timeout_s=60)
        took = time.monotonic() - t0
        # Then the batch settles as soon as both are routed (not at its timeout) ...
        assert res["pending"] == 0 and res["failed"] == 2, res
        assert took < 30
        big, small = (p.get_message_status(m) for m in res["message_ids"])
        # ... the oversized one is dead-lettered, the one rejected only with it is retried
        assert big == "dlq" and small in ("retrying", "sent")


def test_record_over_the_client_limit_is_dead_lettered_not_raised(kafka_bootstrap: str, new_topic, tmp_path: Path) -> None:
    # Given a record bigger than the producer's message.max.bytes: produce() refuses it at once
    topic = new_topic()
    big = bytes(range(256)) * 6000  # 1.5 MB, over librdkafka's default 1 MB
    with ReliableKafkaProducer(bootstrap_servers=kafka_bootstrap, spool_path=tmp_path / "s.db") as p:
        # When
        mid = p.send_message(topic, big, key="big")
        p.flush(30)
        # Then it is not lost: it is in the DLQ, byte for byte, with the local error code
        assert p.get_message_status(mid) == "dlq"
    [rec] = read_to_end(kafka_bootstrap, topic + ".dlq", at_least=1)
    assert rec.value() == big
    assert headers_dict(rec)[H.ERROR_CODE] == b"MSG_SIZE_TOO_LARGE"
    assert headers_dict(rec)[H.DLQ_REASON] == b"non_retriable"


def test_secrets_never_reach_logs_stats_or_health(kafka_bootstrap: str, tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    import json
    import logging

    secret = "s3cr3t-Pa55word"
    caplog.set_level(logging.DEBUG, logger="kafka_reliable")
    with ReliableKafkaProducer(bootstrap_servers=kafka_bootstrap, spool_path=tmp_path / "s.db",
                               producer_config={"sasl_plain_username": "app", "sasl_plain_password": secret}) as p:
        text = json.dumps(p.get_stats(), default=str) + json.dumps(p.get_health_status(), default=str)
    assert secret not in text
    assert secret not in caplog.text
    assert "***" in caplog.text  # the config was logged, redacted


def test_producer_replays_and_clears_its_dlq(kafka_bootstrap: str, admin, new_topic, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

    # Given 3 records dead-lettered for their size
    topic = new_topic(config={"max.message.bytes": "10000"})
    with ReliableKafkaProducer(bootstrap_servers=kafka_bootstrap, spool_path=tmp_path / "s.db",
                               producer_config={"compression_type": "none"}, dlq_check_interval_s=0.2) as p:
        mids = [p.send_message(topic, b"q" * 20_000, key=str(i)) for i in range(3)]
        p.flush(30)
        # When the cause is fixed and the DLQ replayed, then cleared
        res = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
            ConfigEntry("max.message.bytes", "100000", incremental_operation=AlterConfigOpType.SET)])
        admin.incremental_alter_configs([res])[res].result(timeout=10)
        wait_for_config(admin, topic, "max.message.bytes", "100000")
        assert p.replay_dlq_messages(topic, max_messages=100) == 3
        assert p.clear_dlq(topic) == 3
        # Then the records are back in their topic with the same ids, and the DLQ is empty
        assert p.get_dlq_messages(topic) == []
        assert p.get_stats()["dlq_stats"]["total_messages"] == 0
    back = read_to_end(kafka_bootstrap, topic, at_least=3)
    assert sorted(headers_dict(m)[H.MESSAGE_ID].decode() for m in back) == sorted(mids)
    assert {headers_dict(m)[H.REPLAY_COUNT] for m in back} == {b"1"}
