"""Pure units of the DLQ tools: dialect parsing, header hygiene on replay, filters, times."""

from __future__ import annotations

import struct
from datetime import UTC, datetime

import pytest

from kafka_reliable import headers as h
from kafka_reliable.config import RetryConfig, TopicNaming
from kafka_reliable.dlq import DlqFilter, DlqMessage, dialects, parse_time
from kafka_reliable.dlq.timespec import parse_duration_ms
from kafka_reliable.errors import classify
from kafka_reliable.routing import route_failure

NOW_MS = 1_700_000_000_000


def _ours(code: str = "_MSG_TIMED_OUT", **kw: object) -> list[tuple[str, bytes]]:
    route = route_failure(
        topic="orders", classification=classify(code), error_message="broker went away", attempt=4,
        retry_config=RetryConfig(max_retries=3), naming=TopicNaming(), now_ms=NOW_MS,
        headers=[("trace", b"abc")], message_id="mid-1", first_failure_at_ms=NOW_MS - 5000, **kw,  # type: ignore[arg-type]
    )
    return route.headers


def _spring_dlt() -> list[tuple[str, bytes]]:
    return [
        ("app", b"1"),
        ("kafka_dlt-original-topic", b"orders"),
        ("kafka_dlt-original-partition", struct.pack(">i", 7)),
        ("kafka_dlt-original-offset", struct.pack(">q", 1234567890123)),
        ("kafka_dlt-original-timestamp", struct.pack(">q", NOW_MS)),
        ("kafka_dlt-original-timestamp-type", b"CreateTime"),
        ("kafka_dlt-original-consumer-group", b"billing"),
        ("kafka_dlt-exception-fqcn", b"org.springframework.kafka.listener.ListenerExecutionFailedException"),
        ("kafka_dlt-exception-cause-fqcn", b"java.lang.IllegalStateException"),
        ("kafka_dlt-exception-message", b"Listener failed; bad amount"),
        ("kafka_dlt-exception-stacktrace", b"at x.y.Z(Z.java:1)\n" * 2000),
    ]


def _connect() -> list[tuple[str, bytes]]:
    p = "__connect.errors."
    return [
        (p + "topic", b"payments"), (p + "partition", b"2"), (p + "offset", b"99"),
        (p + "connector.name", b"jdbc-sink"), (p + "task.id", b"0"), (p + "stage", b"VALUE_CONVERTER"),
        (p + "class.name", b"org.apache.kafka.connect.json.JsonConverter"),
        (p + "exception.class.name", b"org.apache.kafka.connect.errors.DataException"),
        (p + "exception.message", b"Converting byte[] to Kafka Connect data failed"),
        (p + "exception.stacktrace", b"org.apache.kafka.connect.errors.DataException: ..."),
    ]


def test_our_headers_round_trip_into_the_context() -> None:
    # Given a DLQ record's headers written by our routing
    hs = _ours("MSG_SIZE_TOO_LARGE", original_partition=3, original_offset=41, replay_count=2)
    # When
    ctx = dialects.parse(hs)
    # Then
    assert ctx.dialect == dialects.OURS
    assert (ctx.original_topic, ctx.original_partition, ctx.original_offset) == ("orders", 3, 41)
    assert ctx.error_class == "MessageSizeTooLargeError" and ctx.error_code == "MSG_SIZE_TOO_LARGE"
    assert ctx.reason == "non_retriable" and ctx.retry_count == 4
    assert ctx.first_failed_at_ms == NOW_MS - 5000 and ctx.last_failed_at_ms == NOW_MS
    assert ctx.message_id == "mid-1" and ctx.replay_count == 2
    assert ctx.error_message == "broker went away"


def test_spring_dlt_binary_big_endian_numbers_are_decoded() -> None:
    ctx = dialects.parse(_spring_dlt())
    assert ctx.dialect == dialects.SPRING
    assert ctx.original_topic == "orders"
    assert ctx.original_partition == 7
    assert ctx.original_offset == 1234567890123
    assert ctx.original_timestamp_ms == NOW_MS
    assert ctx.error_class == "org.springframework.kafka.listener.ListenerExecutionFailedException"
    assert ctx.extra["cause_class"] == "java.lang.IllegalStateException"
    assert ctx.extra["consumer_group"] == "billing"
    assert ctx.error_message == "Listener failed; bad amount"
    # the stack trace is bounded
    assert ctx.stacktrace is not None and len(ctx.stacktrace.encode()) <= dialects.MAX_STACKTRACE_BYTES


def test_spring_non_dlt_target_uses_original_and_exception_names() -> None:
    hs = [
        ("kafka_original-topic", b"orders"), ("kafka_original-partition", struct.pack(">i", 1)),
        ("kafka_original-offset", struct.pack(">q", 5)), ("kafka_exception-fqcn", b"java.io.IOException"),
        ("kafka_exception-message", b"disk"), ("retry_topic-attempts", struct.pack(">i", 3)),
    ]
    ctx = dialects.parse(hs)
    assert ctx.dialect == dialects.SPRING
    assert (ctx.original_topic, ctx.original_partition, ctx.original_offset) == ("orders", 1, 5)
    assert ctx.error_class == "java.io.IOException" and ctx.retry_count == 3


def test_spring_key_deserialization_failure_is_the_error_when_no_value_error() -> None:
    hs = [("kafka_dlt-original-topic", b"t"), ("kafka_dlt-key-exception-fqcn", b"a.KeyDeserEx"),
          ("kafka_dlt-key-exception-message", b"bad key")]
    ctx = dialects.parse(hs)
    assert ctx.error_class == "a.KeyDeserEx" and ctx.error_message == "bad key"


def test_connect_streams_and_karafka_strings_are_parsed() -> None:
    c = dialects.parse(_connect())
    assert c.dialect == dialects.CONNECT
    assert (c.original_topic, c.original_partition, c.original_offset) == ("payments", 2, 99)
    assert c.error_class == "org.apache.kafka.connect.errors.DataException"
    assert c.extra["stage"] == "VALUE_CONVERTER" and c.extra["connector"] == "jdbc-sink"

    s = dialects.parse([("__streams.errors.exception", b"java.lang.NullPointerException"),
                        ("__streams.errors.message", b"Oopsie!"), ("__streams.errors.topic", b"source"),
                        ("__streams.errors.partition", b"3"), ("__streams.errors.offset", b"2")])
    assert s.dialect == dialects.STREAMS
    assert (s.original_topic, s.original_partition, s.original_offset) == ("source", 3, 2)
    assert s.error_class == "java.lang.NullPointerException" and s.error_message == "Oopsie!"

    k = dialects.parse([("source_topic", b"events"), ("source_partition", b"0"), ("source_offset", b"17"),
                        ("source_consumer_group", b"cg"), ("source_attempts", b"4"), ("source_trace_id", b"tr-9")])
    assert k.dialect == dialects.KARAFKA
    assert (k.original_topic, k.original_partition, k.original_offset, k.retry_count) == ("events", 0, 17, 4)
    assert k.extra["trace_id"] == "tr-9"


def test_unknown_headers_are_raw_and_garbled_numbers_do_not_raise() -> None:
    assert dialects.parse([("x", b"y")]) == dialects.DlqContext()
    assert dialects.parse(None).dialect == dialects.RAW
    ctx = dialects.parse([("kafka_dlt-original-topic", b"t"), ("kafka_dlt-original-partition", b"\x01\x02\x03\x04\x05"),
                          ("kafka_dlt-original-offset", b"not-a-number-at-all")])
    assert ctx.original_topic == "t"
    assert ctx.original_offset is None
    # a 5-byte partition reads as 4328719365, beyond Kafka's largest partition id: undecodable
    assert ctx.original_partition is None
    assert ctx.unreadable == ("kafka_dlt-original-partition", "kafka_dlt-original-offset")
    assert all(n.startswith("undecodable: kafka_dlt-original-") for n in ctx.notes)


def test_number_codecs() -> None:
    assert dialects.int_text_first(b"42") == 42 and dialects.int_text_first(b"-7") == -7
    assert dialects.int_text_first(struct.pack(">q", 2**40)) == 2**40
    assert dialects.int_text_first(b"") is None and dialects.int_text_first(b"abc") is None
    assert dialects.int_binary_first(struct.pack(">i", -1), 4) == -1
    assert dialects.int_binary_first(b"12", 4) == 12  # decimal fallback
    assert dialects.int_binary_first(bytes([0x01, 0x00]), 8) == 256  # BigInteger bytes


def test_ours_wins_over_an_older_foreign_context() -> None:
    assert dialects.detect(_ours() + _connect()) == dialects.OURS


def test_replay_headers_drop_every_error_context_and_keep_ids() -> None:
    # Given a record that went through Spring, Connect, and then our DLQ
    hs = _spring_dlt() + _connect() + _ours(replay_count=1)
    # When the replay headers are built
    out = h.republish_headers(dialects.strip_foreign(hs), replay_count=2)
    names = [k for k, _ in out]
    # Then only user headers, the message id and the new replay count remain
    assert names == ["app", "trace", h.MESSAGE_ID, h.REPLAY_COUNT]
    assert dict(out)[h.REPLAY_COUNT] == b"2" and dict(out)[h.MESSAGE_ID] == b"mid-1"


def test_karafka_names_are_kept_as_user_headers_on_other_dialects() -> None:
    hs = [("source_topic", b"mine")] + _connect()
    assert dialects.strip_foreign(hs) == [("source_topic", b"mine")]
    kara = [("source_topic", b"e"), ("source_partition", b"0"), ("x", b"1")]
    assert dialects.strip_foreign(kara) == [("x", b"1")]


def _msg(hs: list[tuple[str, bytes]], *, key: bytes | None = b"k1", ts: int = NOW_MS) -> DlqMessage:
    ctx = dialects.parse(hs)
    return DlqMessage(
        id=ctx.message_id or "0:1", topic="orders.dlq", partition=0, offset=1, key=key, value=b"\x00\xff",
        headers=hs, timestamp_ms=ts, dialect=ctx.dialect, message_id=ctx.message_id,
        original_topic=ctx.original_topic, error_class=ctx.error_class, error_code=ctx.error_code,
        last_error=ctx.error_message, retry_count=ctx.retry_count, reason=ctx.reason,
        first_failed_at_ms=ctx.first_failed_at_ms, last_failed_at_ms=ctx.last_failed_at_ms, extra=ctx.extra,
    )


def test_filter_matches_class_simple_name_code_cause_time_and_key() -> None:
    ours, spring = _msg(_ours()), _msg(_spring_dlt(), ts=NOW_MS - 10)
    assert DlqFilter(errors=("kafkatimeouterror",)).matches(ours)
    assert DlqFilter(errors=("_MSG_TIMED_OUT",)).matches(ours)
    assert not DlqFilter(errors=("MessageSizeTooLargeError",)).matches(ours)
    assert DlqFilter(errors=("ListenerExecutionFailedException",)).matches(spring)
    assert DlqFilter(errors=("IllegalStateException",)).matches(spring)  # the cause
    assert DlqFilter(since_ms=NOW_MS).matches(ours) and not DlqFilter(until_ms=NOW_MS).matches(ours)
    assert DlqFilter(until_ms=NOW_MS).matches(spring)  # no failure header: the record time
    assert DlqFilter(key="k1").matches(ours) and not DlqFilter(key="k2").matches(ours)
    assert DlqFilter(reason="retries_exhausted").matches(ours)


def test_message_json_is_safe_for_binary_values() -> None:
    m = _msg(_spring_dlt())
    js = m.to_json()
    assert js["value"] == "base64:AP8="
    assert js["key"] == "k1"
    assert js["original_partition"] is None or isinstance(js["original_partition"], int)
    assert ["kafka_dlt-original-partition", "base64:AAAABw=="] in js["headers"]
    assert m.first_failed_at is None
    assert _msg(_ours()).first_failed_at == datetime.fromtimestamp((NOW_MS - 5000) / 1000, tz=UTC)


@pytest.mark.parametrize(("text", "expected"), [
    ("2h", NOW_MS - 7_200_000), ("30m", NOW_MS - 1_800_000), ("7d", NOW_MS - 7 * 86_400_000),
    ("45s", NOW_MS - 45_000), ("1w ago", NOW_MS - 604_800_000),
    ("2023-11-14T22:13:20Z", NOW_MS), ("2023-11-14T22:13:20", NOW_MS),
    ("2023-11-14T23:13:20+01:00", NOW_MS), (str(NOW_MS), NOW_MS),
])
def test_parse_time(text: str, expected: int) -> None:
    assert parse_time(text, now=NOW_MS) == expected


@pytest.mark.parametrize("bad", ["", "yesterday", "2h30", "12:00 tomorrow", "-5m"])
def test_parse_time_rejects_garbage_with_a_hint(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_time(bad, now=NOW_MS)


def test_parse_duration() -> None:
    assert parse_duration_ms("250ms") == 250 and parse_duration_ms("1.5h") == 5_400_000


# ---- issue 11: garbled numbers, Connect times; issue 15: consumer-side replays -----------------

def test_a_garbled_replay_count_is_unreadable_not_a_huge_number() -> None:
    # Given our headers whose replay count is 4 raw bytes ("abcd" = 1,633,837,924 big-endian)
    hs = [*_ours(), (h.REPLAY_COUNT, b"abcd")]
    # When parsed
    ctx = dialects.parse(hs)
    m = _msg(hs)
    m = DlqMessage(**{**m.__dict__, "replay_count": ctx.replay_count, "unreadable_headers": ctx.unreadable})
    # Then it is read as unknown and said so
    assert ctx.replay_count == 0 and ctx.unreadable == (h.REPLAY_COUNT,)
    assert not m.replay_count_readable and m.to_json()["replay_count"] is None
    assert m.to_json()["unreadable_headers"] == [h.REPLAY_COUNT]
    with pytest.raises(ValueError, match="kafka_reliable.replay.count is not a decimal number"):
        h.get_int(hs, h.REPLAY_COUNT)


@pytest.mark.parametrize(("raw", "value"), [
    (b"42", 42), (b"-7", -7), (b"0", 0), (b"abcd", None), (b"1_000", None), (b"+5", None), (b" 4", None),
    (b"-", None), (b"", None), ("٣".encode(), None), (struct.pack(">i", 3), None),
])
def test_our_numbers_are_strict_decimals(raw: bytes, value: int | None) -> None:
    assert h.parse_decimal(raw) == value
    assert h.get_int_or_none([("n", raw)], "n") == (value, value is not None)
    assert h.get_int_or_none([], "n") == (None, True)


def test_connect_records_have_no_failure_time_and_filter_on_the_original_timestamp() -> None:
    ctx = dialects.parse(_connect())
    m = DlqMessage(id="0:1", topic="dlq-orders", partition=0, offset=1, key=None, value=b"v", headers=_connect(),
                   timestamp_ms=NOW_MS - 3_600_000, dialect=ctx.dialect)
    assert m.failed_at_ms is None and m.time_basis == "original timestamp"
    assert m.filter_time_ms == NOW_MS - 3_600_000
    assert not DlqFilter(since_ms=NOW_MS - 600_000).matches(m)  # filters on the original timestamp
    assert _msg(_ours()).time_basis == "failure time" and _msg(_spring_dlt()).time_basis == "DLQ record time"


@pytest.mark.parametrize(("name", "problem"), [
    ("orders", None), ("a.b_c-9", None), ("bad topic!", "illegal topic name 'bad topic!'"), ("", "empty"),
    (".", "illegal topic name '.'"), ("x" * 250, "250 characters"), ("ordérs", "illegal topic name"),
])
def test_topic_name_problems(name: str, problem: str | None) -> None:
    from kafka_reliable.dlq.targets import topic_name_problem

    found = topic_name_problem(name)
    assert (found is None) if problem is None else (found is not None and problem in found)


def test_a_consumer_side_record_is_replayed_into_its_groups_retry_topic_due_now() -> None:
    from kafka_reliable.dlq.targets import replay_headers, replay_target

    hs = [*_ours(original_partition=2, original_offset=40), (h.CONSUMER_GROUP, b"billing v2")]
    ctx = dialects.parse(hs)
    m = DlqMessage(id="mid-1", topic="orders.billing_v2.dlq", partition=0, offset=5, key=None, value=b"v",
                   headers=hs, timestamp_ms=NOW_MS, dialect=ctx.dialect, message_id=ctx.message_id,
                   original_topic=ctx.original_topic, original_partition=2, original_offset=40, extra=ctx.extra)
    naming = TopicNaming()
    target = replay_target(m, to_topic=None, naming=naming)
    assert target == "orders.billing_v2.retry"
    out = dict(replay_headers(m, target, naming=naming, now_ms=NOW_MS + 1))
    assert out[h.NEXT_ATTEMPT_AT] == str(NOW_MS + 1).encode() and out[h.ATTEMPT] == b"0"
    assert out[h.CONSUMER_GROUP] == b"billing v2" and out[h.ORIGINAL_TOPIC] == b"orders"
    assert out[h.ORIGINAL_OFFSET] == b"40" and out[h.REPLAY_COUNT] == b"1" and out[h.MESSAGE_ID] == b"mid-1"
    assert replay_target(m, to_topic="elsewhere", naming=naming) == "elsewhere"
    plain = dict(replay_headers(m, "elsewhere", naming=naming, now_ms=NOW_MS))
    assert h.NEXT_ATTEMPT_AT not in plain and h.CONSUMER_GROUP not in plain
