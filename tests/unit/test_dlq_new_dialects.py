"""Share-group (KIP-1191) and Schema Registry rule-action DLQ records, built to their writers' code.

Share groups: ``org.apache.kafka.server.share.dlq.ShareGroupDLQStateManager$ProduceRequestHandler
.headers`` in kafka-server-4.4.0.jar (apache/kafka 4.4.0, ``server/src/main/java/org/apache/kafka/
server/share/dlq/ShareGroupDLQStateManager.java``): UTF-8 strings, ``Integer.toString`` /
``Long.toString`` numbers; messages from ``ShareGroupDLQManager``.
Schema Registry: confluentinc/schema-registry @ 794611bd86d1ce0422581269e2b13a2ab010c7fb,
``client/src/main/java/io/confluent/kafka/schemaregistry/rules/DlqAction.java``
(``populateHeaders``: ``__rule.name``, ``.mode``, ``.subject``, ``.topic``, ``.exception``, UTF-8;
the original headers are kept, ``new ProducerRecord<>(dlqTopic, null, key, value, ctx.headers())``).
"""

from __future__ import annotations

from confluent_kafka import Message

from kafka_reliable import headers as h
from kafka_reliable.config import TopicNaming
from kafka_reliable.dlq import dialects, schema_rules, share_group
from kafka_reliable.dlq.decode import decode_message, decode_record
from kafka_reliable.dlq.model import DlqMessage
from kafka_reliable.dlq.targets import replay_headers, replay_refusal, replay_target


def _share(
    message: bytes = b"Offset rejected by client.", count: bytes = b"1"
) -> list[tuple[str, bytes]]:
    return [
        (share_group.TOPIC, b"orders"),
        (share_group.PARTITION, b"2"),
        (share_group.OFFSET, b"41"),
        (share_group.GROUP, b"billing"),
        (share_group.DELIVERY_COUNT, count),
        (share_group.MESSAGE, message),
    ]


def _rule(mode: bytes = b"READ") -> list[tuple[str, bytes]]:
    return [
        ("traceparent", b"00-abc-def-01"),  # an original header: DlqAction keeps them
        (schema_rules.RULE_NAME, b"checkSsnLen"),
        (schema_rules.RULE_MODE, mode),
        (schema_rules.RULE_SUBJECT, b"orders-value"),
        (schema_rules.RULE_TOPIC, b"orders"),
        (schema_rules.RULE_EXCEPTION, b"Expr failed: 'size(message.ssn) == 9'"),
    ]


def _msg(
    hs: list[tuple[str, bytes]], *, key: bytes | None = b"k", value: bytes | None = b"v"
) -> DlqMessage:
    return DlqMessage.from_record(
        Message(
            topic="dlq.orders",
            partition=0,
            offset=5,
            key=key,
            value=value,
            headers=hs,
            timestamp=(1, 1_700_000_000_000),
        )
    )


def test_a_rejected_share_group_record_is_read_with_its_reason() -> None:
    m = _msg(_share())
    assert (m.dialect, m.original_topic, m.original_partition, m.original_offset) == (
        dialects.SHARE_GROUP,
        "orders",
        2,
        41,
    )
    assert (m.reason, m.error_code, m.retry_count) == ("rejected", "CLIENT_REJECT", 1)
    assert m.last_error == "Offset rejected by client." and m.extra == {"share_group": "billing"}
    assert m.notes == () and not m.headers_only
    assert "client_reject" in m.error_names


def test_a_share_group_record_past_the_delivery_limit() -> None:
    m = _msg(_share(b"Offset delivery count exceeded the threshold.", b"5"))
    assert (m.reason, m.error_code, m.retry_count) == (
        "delivery_count_exceeded",
        "DELIVERY_COUNT_EXCEEDED",
        5,
    )


def test_a_copied_share_group_record_goes_back_to_its_topic_without_dlq_headers() -> None:
    m = _msg(_share())
    assert replay_refusal(m, to_topic=None, from_source=False) is None
    assert replay_target(m, to_topic=None, naming=TopicNaming()) == "orders"
    out = replay_headers(m, "orders", naming=TopicNaming(), now_ms=1)
    assert not [k for k, _ in out if k.startswith(share_group.PREFIX)]
    assert h.get(out, h.REPLAY_COUNT) == b"1"


def test_a_headers_only_share_group_record_says_why_and_offers_from_source() -> None:
    m = _msg(_share(), key=None, value=None)
    assert m.headers_only
    reason = replay_refusal(m, to_topic=None, from_source=False)
    assert reason == (
        "headers-only share-group DLQ record (group billing has "
        "errors.deadletterqueue.copy.record.enable=false): no key or value to resend; "
        "the original is orders[2]@41; --from-source re-reads it there "
        "if still retained"
    )
    assert replay_refusal(m, to_topic="elsewhere", from_source=False) == reason
    assert replay_refusal(m, to_topic=None, from_source=True) is None
    assert decode_message(m).replay == reason and decode_message(m).headers_only


def test_a_schema_registry_read_mode_record_goes_back_to_its_topic_keeping_user_headers() -> None:
    m = _msg(_rule())
    assert (m.dialect, m.original_topic, m.reason, m.error_code) == (
        dialects.SCHEMA_REGISTRY,
        "orders",
        "rule_failed",
        "checkSsnLen",
    )
    assert m.last_error == "Expr failed: 'size(message.ssn) == 9'"
    assert m.extra == {"rule": "checkSsnLen", "rule_mode": "READ", "subject": "orders-value"}
    assert replay_refusal(m, to_topic=None, from_source=False) is None
    out = replay_headers(m, "orders", naming=TopicNaming(), now_ms=1)
    assert ("traceparent", b"00-abc-def-01") in out
    assert not [k for k, _ in out if k.startswith(schema_rules.PREFIX)]


def test_a_schema_registry_write_mode_record_needs_an_explicit_target() -> None:
    m = _msg(_rule(b"WRITE"))
    reason = replay_refusal(m, to_topic=None, from_source=False)
    assert (
        reason is not None
        and reason.startswith("rule mode WRITE: ")
        and reason.endswith("--to-topic")
    )
    assert replay_refusal(m, to_topic="orders-repaired", from_source=False) is None


def test_decode_record_is_the_one_public_decoder() -> None:
    d = decode_record(
        _share(b"Offset delivery count exceeded the threshold.", b"3"), key=b"k", value=b"v"
    )
    assert d.dialect == "share_group" and d.replay is None and d.notes == ()
    assert d.fields == {
        "original_topic": "orders",
        "original_partition": 2,
        "original_offset": 41,
        "error_code": "DELIVERY_COUNT_EXCEEDED",
        "error_message": "Offset delivery count exceeded the threshold.",
        "retry_count": 3,
        "reason": "delivery_count_exceeded",
        "share_group": "billing",
    }
    raw = decode_record([("x", b"\xff")])
    assert (
        raw.dialect == "raw"
        and raw.replay == "no original topic in its headers; replay it only with --to-topic"
    )
