"""Confluent Schema Registry data-contract rules with the ``DLQ`` action.

``io.confluent.kafka.schemaregistry.rules.DlqAction`` (confluentinc/schema-registry,
``client/src/main/java/io/confluent/kafka/schemaregistry/rules/DlqAction.java``) produces the
original key and value with the original headers plus ``__rule.name``, ``__rule.mode``,
``__rule.subject``, ``__rule.topic`` and, when the rule raised, ``__rule.exception`` (UTF-8
strings; ``populateHeaders``). In ``READ`` mode the value is the payload the deserializer got
(the serialized bytes); in the other modes it is the object the serializer was given, turned
into bytes by ``convertToBytes``: JSON for records (possibly with fields redacted), so it is
not the topic's wire format and is replayed only to an explicit target.
"""

from __future__ import annotations

from kafka_reliable.dlq.codecs import HeaderReader

NAME = "schema_registry"
PREFIX = "__rule."
RULE_NAME = PREFIX + "name"
RULE_MODE = PREFIX + "mode"
RULE_SUBJECT = PREFIX + "subject"
RULE_TOPIC = PREFIX + "topic"
RULE_EXCEPTION = PREFIX + "exception"
#: The only mode whose DLQ value is the record's serialized bytes.
REPLAYABLE_MODE = "READ"


def detect(names: set[str]) -> bool:
    return RULE_TOPIC in names or (RULE_NAME in names and RULE_MODE in names)


def parse(r: HeaderReader) -> dict[str, object]:
    """The context fields of a rule-action DLQ record (see :class:`DlqContext`)."""
    extra = {}
    for label, name in (("rule", RULE_NAME), ("rule_mode", RULE_MODE), ("subject", RULE_SUBJECT)):
        v = r.text(name)
        if v:
            extra[label] = v
    return {
        "original_topic": r.topic(RULE_TOPIC),
        "error_code": extra.get("rule"),
        "error_message": r.text(RULE_EXCEPTION),
        "reason": "rule_failed",
        "extra": extra,
    }


def replay_refusal(mode: str | None, topic: str | None) -> str | None:
    """Why a record of this rule mode cannot go back to its topic as is (None: it can)."""
    if mode == REPLAYABLE_MODE:
        return None
    return (
        f"rule mode {mode or '(unknown)'}: Schema Registry's DlqAction wrote the value as the "
        f"serializer's input converted to bytes (JSON for records), not {topic or 'the topic'}'s "
        "serialized format; replay it only with --to-topic"
    )
