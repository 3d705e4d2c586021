"""Where a replayed record goes, with which headers, and which targets can never take it.

A record goes to ``to_topic`` when one is given, else back where it belongs: a consumer-side
record of ours (header ``kafka_reliable.consumer.group``) to its group's retry topic, due now,
so that only that group handles it again; any other record to its original topic.

Before anything is produced, every target is checked once per run: an illegal topic name or
a topic that does not exist (the cluster may not create topics on first use) makes the record
a *skipped* one, reported with its coordinates and reason, instead of failing the whole run.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kafka_reliable import headers as h
from kafka_reliable.config import MAX_TOPIC_NAME_LENGTH, TopicNaming
from kafka_reliable.dlq import dialects, schema_rules
from kafka_reliable.dlq.model import DlqMessage
from kafka_reliable.errors import ConfigurationError

_LEGAL_TOPIC = re.compile(r"[a-zA-Z0-9._-]+")

#: ``error.code`` / ``error.class`` written on a record replayed into a group's retry topic.
REPLAY_CODE = "REPLAYED"
REPLAY_CLASS = "ReplayedFromDlq"


def topic_name_problem(name: str) -> str | None:
    """Why ``name`` can never be a Kafka topic, or None when it can."""
    if not name:
        return "empty topic name"
    if name in (".", ".."):
        return f"illegal topic name {name!r}"
    if len(name) > MAX_TOPIC_NAME_LENGTH:
        return f"illegal topic name: {len(name)} characters (at most {MAX_TOPIC_NAME_LENGTH})"
    if not _LEGAL_TOPIC.fullmatch(name):
        return f"illegal topic name {name!r} (allowed: letters, digits, '.', '_', '-')"
    return None


@dataclass(frozen=True, kw_only=True)
class SkippedRecord:
    """A DLQ record a replay could not deliver; progress moved past it, it stays in the DLQ."""

    partition: int
    offset: int
    message_id: str | None
    target: str | None
    reason: str

    @property
    def coordinates(self) -> str:
        return f"{self.partition}:{self.offset}"

    def to_json(self) -> dict[str, Any]:
        return {
            "partition": self.partition,
            "offset": self.offset,
            "message_id": self.message_id,
            "target": self.target,
            "reason": self.reason,
        }


class TargetCheck:
    """Illegal names and missing topics, each target looked up once per run."""

    def __init__(self, exists: Callable[[str], bool]) -> None:
        self._exists = exists
        self._known: dict[str, bool] = {}

    def problem(self, topic: str) -> str | None:
        bad = topic_name_problem(topic)
        if bad is not None:
            return bad
        if topic not in self._known:
            self._known[topic] = self._exists(topic)
        return None if self._known[topic] else f"topic {topic} does not exist"


def replay_target(m: DlqMessage, *, to_topic: str | None, naming: TopicNaming) -> str | None:
    """The topic a record is replayed to, or None when nothing says where it belongs.

    ConfigurationError when a consumer-side record's group retry topic cannot be named.
    """
    if to_topic:
        return to_topic
    if m.consumer_group and m.original_topic:
        return naming.group_retry_topic(m.original_topic, m.consumer_group)
    return m.original_topic


def where(m: DlqMessage) -> str:
    """``topic[partition]@offset`` of the original record, as far as known."""
    at = m.original_topic or "(unknown topic)"
    if m.original_partition is not None:
        at += f"[{m.original_partition}]"
    return at + (f"@{m.original_offset}" if m.original_offset is not None else "")


#: Control characters shown escaped, so a reason built from header text stays on one line.
_ONE_LINE = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F)}


def replay_refusal(m: DlqMessage, *, to_topic: str | None, from_source: bool) -> str | None:
    """Why this record cannot be resent as it is (one line), or None when it can."""
    reason = _refusal(m, to_topic=to_topic, from_source=from_source)
    return None if reason is None else reason.translate(_ONE_LINE)


def _refusal(m: DlqMessage, *, to_topic: str | None, from_source: bool) -> str | None:
    """Why this record cannot be resent as it is, or None when it can.

    A headers-only share-group record has nothing to resend (``--from-source`` re-reads the
    original); an undecodable record goes only to an explicit target; a Schema Registry
    rule-action record not written in READ mode holds the serializer's input, not the
    topic's wire format, so it goes back only to an explicit target.
    """
    if m.headers_only and not from_source:
        group = m.extra.get("share_group", "?")
        return (
            f"headers-only share-group DLQ record (group {group} has "
            "errors.deadletterqueue.copy.record.enable=false): no key or value to resend; "
            f"the original is {where(m)}; --from-source re-reads it there if still retained"
        )
    if to_topic or from_source:
        return None
    if m.undecodable:
        return f"{m.notes[0]}; replay it only with --to-topic"
    if m.dialect == dialects.SCHEMA_REGISTRY:
        return schema_rules.replay_refusal(m.extra.get("rule_mode"), m.original_topic)
    return None


def into_group_retry(m: DlqMessage, target: str, naming: TopicNaming) -> bool:
    """True when ``target`` is the retry topic of the record's consumer group."""
    if not (m.consumer_group and m.original_topic):
        return False
    try:
        return target == naming.group_retry_topic(m.original_topic, m.consumer_group)
    except ConfigurationError:
        return False


def replay_headers(m: DlqMessage, target: str, *, naming: TopicNaming, now_ms: int) -> h.Headers:
    """Headers of the replayed record: the user's own, message id, replay count + 1, no stale error.

    Into a group's retry topic the record carries the header contract the consumer reads:
    original coordinates, a fresh attempt count, ``next.attempt.at`` = now, the group.
    """
    count = (m.replay_count if m.replay_count_readable else 0) + 1
    base = dialects.strip_foreign(m.headers)
    if not into_group_retry(m, target, naming):
        return h.republish_headers(base, replay_count=count)
    assert m.original_topic is not None and m.consumer_group is not None
    failure = h.Failure(
        original_topic=m.original_topic,
        attempt=0,
        error_code=REPLAY_CODE,
        error_class=REPLAY_CLASS,
        error_message=f"replayed from {m.topic} {m.coordinates}",
        retriable=True,
        first_failure_at_ms=m.first_failed_at_ms or now_ms,
        last_failure_at_ms=m.last_failed_at_ms or now_ms,
        next_attempt_at_ms=now_ms,
        original_partition=m.original_partition,
        original_offset=m.original_offset,
        original_timestamp_ms=m.original_timestamp_ms,
        replay_count=count,
    )
    return [
        *h.failure_headers(base, failure, m.message_id),
        (h.CONSUMER_GROUP, m.consumer_group.encode()),
    ]
