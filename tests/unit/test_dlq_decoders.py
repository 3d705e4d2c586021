"""Decoders that never fall over (issue 24 §4): every header decoder of every dialect, ours too.

Hypothesis feeds each dialect's header names with random bytes, wrong lengths, huge numbers,
5,000-digit numbers, bad UTF-8, negative numbers and missing headers. Whatever comes in, the
record decodes to values within Kafka's bounds or to ``undecodable: …`` notes: no exception,
output bounded in size, and a record that says nothing usable is replayable only to an
explicit target.
"""

from __future__ import annotations

import json
import struct
from typing import Any

from confluent_kafka import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kafka_reliable import headers as h
from kafka_reliable.dlq import codecs, dialects, schema_rules, share_group
from kafka_reliable.dlq.decode import decode_record
from kafka_reliable.dlq.model import DlqMessage
from kafka_reliable.dlq.targets import replay_refusal, topic_name_problem

_SPRING = [
    *(
        f"kafka_dlt-original-{n}"
        for n in ("topic", "partition", "offset", "timestamp", "timestamp-type", "consumer-group")
    ),
    *(f"kafka_dlt-exception-{n}" for n in ("fqcn", "cause-fqcn", "message", "stacktrace")),
    *(f"kafka_dlt-key-exception-{n}" for n in ("fqcn", "message", "stacktrace")),
    "kafka_original-topic",
    "kafka_original-partition",
    "kafka_exception-fqcn",
    "retry_topic-attempts",
    "retry_topic-backoff-timestamp",
    "kafka_deliveryAttempt",
]
_CONNECT = [
    dialects.CONNECT_PREFIX + n
    for n in (
        "topic",
        "partition",
        "offset",
        "connector.name",
        "task.id",
        "stage",
        "class.name",
        "exception.class.name",
        "exception.message",
        "exception.stacktrace",
    )
]
_STREAMS = [
    dialects.STREAMS_PREFIX + n
    for n in ("exception", "message", "stacktrace", "topic", "partition", "offset")
]
_OURS = [
    h.MESSAGE_ID,
    h.ORIGINAL_TOPIC,
    h.ORIGINAL_PARTITION,
    h.ORIGINAL_OFFSET,
    h.ORIGINAL_TIMESTAMP,
    h.ATTEMPT,
    h.NEXT_ATTEMPT_AT,
    h.FIRST_FAILURE_AT,
    h.LAST_FAILURE_AT,
    h.ERROR_CODE,
    h.ERROR_CLASS,
    h.ERROR_MESSAGE,
    h.ERROR_RETRIABLE,
    h.DLQ_REASON,
    h.REPLAY_COUNT,
    h.CONSUMER_GROUP,
]
_SHARE = [
    share_group.TOPIC,
    share_group.PARTITION,
    share_group.OFFSET,
    share_group.GROUP,
    share_group.DELIVERY_COUNT,
    share_group.MESSAGE,
]
_RULE = [
    schema_rules.RULE_NAME,
    schema_rules.RULE_MODE,
    schema_rules.RULE_SUBJECT,
    schema_rules.RULE_TOPIC,
    schema_rules.RULE_EXCEPTION,
]
_KARAFKA = sorted(dialects.KARAFKA_HEADERS)
NAMES = {
    dialects.OURS: _OURS,
    dialects.SPRING: _SPRING,
    dialects.CONNECT: _CONNECT,
    dialects.STREAMS: _STREAMS,
    dialects.KARAFKA: _KARAFKA,
    dialects.SHARE_GROUP: _SHARE,
    dialects.SCHEMA_REGISTRY: _RULE,
}

NASTY = [
    b"",
    b"-1",
    b"-9223372036854775809",
    b"9" * 5000,
    b"1" * 65,
    b"\xff\xfe\xfd",
    b"\xc3",
    "ü".encode() * 3,
    struct.pack(">q", -5),
    struct.pack(">i", 2**31 - 1),
    struct.pack(">i", -1),
    b"\x00" * 4,
    b"\x7f" * 8,
    b" 42 ",
    b"+5",
    b"1_000",
    b"0x10",
    b"NaN",
    b"..",
    b"a" * 300,
    b"\x00\x00\x00\x00\xff\xff\xff\xff",
    b"Offset rejected by client.",
    b"READ",
    b"\xed\xa0\x80",  # a UTF-16 surrogate in UTF-8
]
values = st.one_of(
    st.binary(max_size=40),
    st.sampled_from(NASTY),
    st.integers(min_value=-(2**70), max_value=2**70).map(lambda n: str(n).encode()),
    st.integers(min_value=-(2**63), max_value=2**63 - 1).map(lambda n: struct.pack(">q", n)),
    st.text(max_size=30).map(lambda t: t.encode("utf-8", "surrogatepass")),
    # big values: cheap to generate, one byte repeated (bad UTF-8 from 0x80 up), and random-ish
    st.tuples(st.integers(0, 255), st.integers(1000, 9000)).map(lambda t: bytes([t[0]]) * t[1]),
    st.binary(min_size=8, max_size=16).map(lambda b: b * 400),
)


@st.composite
def dialect_headers(draw: Any) -> list[tuple[str, bytes | None]]:
    """Headers of one dialect (some missing, some twice), plus a few of another's and users'."""
    names = draw(st.sampled_from(list(NAMES.values())))
    chosen = draw(st.lists(st.sampled_from(names), max_size=len(names) + 3))
    others = draw(
        st.lists(
            st.sampled_from([n for ns in NAMES.values() for n in ns] + ["app", ""]), max_size=3
        )
    )
    return [(n, draw(st.one_of(values, st.none()))) for n in chosen + others]


def _check_bounds(ctx: dialects.DlqContext, hs: list[tuple[str, bytes | None]]) -> None:
    assert ctx.dialect in dialects.DIALECTS
    if ctx.original_partition is not None:
        assert 0 <= ctx.original_partition <= codecs.MAX_PARTITION
    for n in (
        ctx.original_offset,
        ctx.original_timestamp_ms,
        ctx.retry_count,
        ctx.first_failed_at_ms,
        ctx.last_failed_at_ms,
    ):
        assert n is None or 0 <= n <= codecs.MAX_LONG
    assert 0 <= ctx.replay_count <= codecs.MAX_LONG
    if ctx.original_topic is not None:  # kept as text (bounded); an illegal one is noted
        assert len(ctx.original_topic.encode()) <= codecs.MAX_TEXT_BYTES
        if topic_name_problem(ctx.original_topic) is not None:
            assert any("not a legal topic name" in n for n in ctx.notes)
    assert ctx.error_message is None or len(ctx.error_message.encode()) <= h.MAX_ERROR_MESSAGE_BYTES
    assert ctx.stacktrace is None or len(ctx.stacktrace.encode()) <= dialects.MAX_STACKTRACE_BYTES
    for text in (ctx.error_class, ctx.error_code, ctx.reason, ctx.message_id, *ctx.extra.values()):
        assert text is None or len(text.encode()) <= codecs.MAX_TEXT_BYTES
    assert len(ctx.notes) <= codecs.MAX_NOTES
    present = {k for k, _ in hs}
    for note in ctx.notes:
        assert note.startswith("undecodable: ") and len(note) < 400, note
    assert set(ctx.unreadable) <= present


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dialect_headers())
def test_every_dialect_decodes_anything_to_values_or_notes(
    hs: list[tuple[str, bytes | None]],
) -> None:
    # Given any headers of any dialect; When parsed; Then no exception and every value in bounds
    ctx = dialects.parse(hs)
    _check_bounds(ctx, hs)
    # and the public per-record decoder gives JSON-safe fields with the same notes
    d = decode_record(hs, key=None, value=b"v")
    assert d.dialect == ctx.dialect and d.notes == ctx.notes
    json.dumps(d.fields)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dialect_headers(), st.one_of(st.none(), values), st.one_of(st.none(), values))
def test_a_consumed_record_always_becomes_a_listable_message(
    hs: list[tuple[str, bytes | None]],
    key: bytes | None,
    value: bytes | None,
) -> None:
    # Given a consumed record with any headers, key and value
    msg = Message(
        topic="t.dlq", partition=0, offset=7, key=key, value=value, headers=hs, timestamp=(1, 5)
    )
    # When it is read as a DLQ record
    m = DlqMessage.from_record(msg)
    # Then it is listable, JSON-safe, and a plain replay either has a target or says why not
    out = m.to_json()
    json.dumps(out)
    assert out["notes"] == list(m.notes)
    refusal = replay_refusal(m, to_topic=None, from_source=False)
    assert refusal is None or (refusal and "\n" not in refusal)
    if m.undecodable:
        assert refusal is not None and "--to-topic" in refusal
        assert replay_refusal(m, to_topic="elsewhere", from_source=False) is None


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_OURS + _SHARE + _CONNECT + _KARAFKA), values)
def test_one_garbled_header_is_either_read_or_noted(name: str, raw: bytes) -> None:
    # Given a record whose only odd header is ``name``
    base = (
        [(h.ORIGINAL_TOPIC, b"orders")]
        if name in _OURS
        else [(NAMES[_dialect_of(name)][0], b"orders")]
    )
    ctx = dialects.parse([*base, (name, raw)])
    # Then the value was read, or there is exactly one note naming that header
    noted = [n for n in ctx.notes if n.startswith(f"undecodable: {name}:")]
    assert len(noted) <= 1
    assert (name in ctx.unreadable) == bool(noted)


def _dialect_of(name: str) -> str:
    return next(d for d, names in NAMES.items() if name in names)


def test_huge_and_negative_numbers_are_notes_not_exceptions() -> None:
    # 5,000 digits used to raise ValueError out of int() (Python's 4,300-digit limit)
    ctx = dialects.parse(
        [
            (h.ORIGINAL_TOPIC, b"orders"),
            (h.ATTEMPT, b"9" * 5000),
            (h.ORIGINAL_OFFSET, b"-3"),
            (h.ORIGINAL_PARTITION, b"2147483648"),
        ]
    )
    assert (
        ctx.retry_count is None and ctx.original_offset is None and ctx.original_partition is None
    )
    assert ctx.notes == (
        f"undecodable: {h.ORIGINAL_PARTITION}: 2147483648 is above {codecs.MAX_PARTITION}: "
        "b'2147483648'",
        f"undecodable: {h.ORIGINAL_OFFSET}: negative number -3",
        f"undecodable: {h.ATTEMPT}: 5000-byte value, too long for a number",
    )
    assert h.parse_decimal(b"9" * 5000) is None


def test_bad_utf8_text_is_shown_with_replacement_and_noted() -> None:
    ctx = dialects.parse([(share_group.TOPIC, b"src"), (share_group.MESSAGE, b"bad \xff text")])
    assert ctx.error_message == "bad \ufffd text"
    assert ctx.notes == (
        f"undecodable: {share_group.MESSAGE}: not UTF-8 at byte 4 (shown with U+FFFD)",
    )


def test_an_illegal_topic_name_is_kept_noted_and_refused_by_the_target_check() -> None:
    # Given a Karafka record whose source topic is not a legal Kafka topic name (nor UTF-8)
    msg = Message(
        topic="x.dlq",
        partition=0,
        offset=1,
        value=b"v",
        headers=[
            ("source_topic", b"bad topic/\xff"),
            ("source_partition", b"0"),
            ("source_offset", b"1"),
        ],
    )
    m = DlqMessage.from_record(msg)
    # Then it is listed with the name as text and a note saying why it is no topic
    assert m.dialect == dialects.KARAFKA and m.original_topic == "bad topic/\ufffd"
    assert m.notes == ("undecodable: source_topic: not a legal topic name: b'bad topic/\\xff'",)
    # and a replay's target check names the problem (the record is skipped and listed)
    assert topic_name_problem(
        m.original_topic
    ) == "illegal topic name 'bad topic/\ufffd' (allowed: " + ("letters, digits, '.', '_', '-')")


def test_a_parser_failure_leaves_a_raw_record_replayable_only_with_a_target(
    monkeypatch: Any,
) -> None:
    # Given a parser that fails on headers nobody foresaw
    def boom(r: codecs.HeaderReader) -> dict[str, object]:
        raise RuntimeError("unforeseen")

    monkeypatch.setitem(dialects._PARSERS, dialects.CONNECT, boom)
    m = DlqMessage.from_record(
        Message(
            topic="x.dlq",
            partition=0,
            offset=3,
            value=b"v",
            headers=[(dialects.CONNECT_PREFIX + "topic", b"payments")],
        )
    )
    # Then the record is listed raw with the failure as a note
    assert m.dialect == dialects.RAW and m.undecodable
    assert m.notes == ("undecodable: connect headers: RuntimeError: unforeseen",)
    # and a plain replay refuses it in one line; an explicit target takes it
    reason = replay_refusal(m, to_topic=None, from_source=False)
    assert (
        reason
        == "undecodable: connect headers: RuntimeError: unforeseen; replay it only with --to-topic"
    )
    assert replay_refusal(m, to_topic="payments", from_source=False) is None


def test_spring_backoff_timestamp_is_a_bigint_of_any_length_up_to_8_bytes() -> None:
    # Spring writes BigInteger.valueOf(ms).toByteArray(): 6 bytes for today's epoch ms
    ms = 1_700_000_000_000
    raw = ms.to_bytes(6, "big", signed=True)
    base = [("kafka_dlt-original-topic", b"orders")]
    ctx = dialects.parse([*base, (dialects.SPRING_BACKOFF_TIMESTAMP, raw)])
    assert ctx.extra["backoff_until_ms"] == str(ms) and ctx.notes == ()
    # a 9-byte or a 40 KB "BigInteger" is noted, not decoded
    for bad in (b"\x01" * 9, b"\x7f" * 40_000):
        ctx = dialects.parse([*base, (dialects.SPRING_BACKOFF_TIMESTAMP, bad)])
        assert "backoff_until_ms" not in ctx.extra
        assert ctx.notes[0].startswith(f"undecodable: {dialects.SPRING_BACKOFF_TIMESTAMP}: ")
