"""Kafka share-group DLQ records (KIP-1191, Apache Kafka 4.4, ``share.version=2``).

The broker writes one when a share consumer REJECTs a record or its delivery count passes
``share.delivery.count.limit``, if the group sets ``errors.deadletterqueue.topic.name`` (the
name must start with ``errors.deadletterqueue.topic.name.prefix``, ``dlq.`` by default) and
that topic has ``errors.deadletterqueue.group.enable=true``. Headers are UTF-8 strings, numbers
in decimal (``ShareGroupDLQStateManager.ProduceRequestHandler.headers`` in kafka-server 4.4.0).
The key and value are copied only with the group config
``errors.deadletterqueue.copy.record.enable=true``; the original headers never are, and the
record's timestamp is the time the broker wrote it.
"""

from __future__ import annotations

from kafka_reliable.dlq.codecs import MAX_PARTITION, HeaderReader

NAME = "share_group"
PREFIX = "__dlq.errors."
TOPIC = PREFIX + "topic"
PARTITION = PREFIX + "partition"
OFFSET = PREFIX + "offset"
GROUP = PREFIX + "group"
DELIVERY_COUNT = PREFIX + "delivery.count"
MESSAGE = PREFIX + "message"

#: The broker's messages (``ShareGroupDLQManager``) -> (error code, reason).
CAUSES = {
    "Offset rejected by client.": ("CLIENT_REJECT", "rejected"),
    "Offset delivery count exceeded the threshold.": (
        "DELIVERY_COUNT_EXCEEDED",
        "delivery_count_exceeded",
    ),
}

#: Group config naming the DLQ topic; topic config allowing it; group config copying key/value.
GROUP_DLQ_TOPIC = "errors.deadletterqueue.topic.name"
TOPIC_DLQ_ENABLE = "errors.deadletterqueue.group.enable"
GROUP_COPY_RECORD = "errors.deadletterqueue.copy.record.enable"
#: Broker config: required prefix of share-group DLQ topic names (default ``dlq.``).
BROKER_DLQ_PREFIX = "errors.deadletterqueue.topic.name.prefix"
DEFAULT_DLQ_PREFIX = "dlq."


def detect(names: set[str]) -> bool:
    return TOPIC in names or (PARTITION in names and OFFSET in names and GROUP in names)


def parse(r: HeaderReader) -> dict[str, object]:
    """The context fields of a share-group DLQ record (see :class:`DlqContext`)."""
    message = r.text(MESSAGE)
    code, reason = CAUSES.get((message or "").strip(), (None, None))
    extra = {}
    group = r.text(GROUP)
    if group:
        extra["share_group"] = group
    return {
        "original_topic": r.topic(TOPIC),
        "original_partition": r.int_text(PARTITION, high=MAX_PARTITION),
        "original_offset": r.int_text(OFFSET),
        "error_code": code,
        "error_message": message,
        "retry_count": r.int_text(DELIVERY_COUNT),
        "reason": reason,
        "extra": extra,
    }
