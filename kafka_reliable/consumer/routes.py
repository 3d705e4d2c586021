"""Where a record goes when its handler failed: the group's retry topic or its DLQ. Pure.

Topics are scoped to the consumer group (``<topic>.<group>.retry`` / ``.dlq``, see
``TopicNaming.group_retry_topic``) so that a retry makes only this group process the record
again. The header contract is the producer's (docs/architecture.md) plus
``kafka_reliable.consumer.group``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from kafka_reliable import headers as h
from kafka_reliable.config import RetryConfig, TopicNaming
from kafka_reliable.errors import Classification, ConfigurationError, ErrorKind
from kafka_reliable.headers import Failure, Headers
from kafka_reliable.routing import Route, route_failure

#: ``error.code`` of a handler exception, of a requested retry, and of a parked record.
HANDLER_ERROR = "HANDLER_ERROR"
RETRY_REQUESTED = "RETRY_REQUESTED"
PARKED = "PARKED"
POISON = "POISON"


class Retry(Exception):  # noqa: N818 - flow control, not an error (dramatiq's Retry)
    """Raise from a handler to retry the record after ``delay_ms`` (default: the backoff).

    It counts as a failed attempt (``max_retries`` applies) but is never dead-lettered as
    non-retriable.
    """

    def __init__(self, reason: str = "retry requested", *, delay_ms: int | None = None) -> None:
        super().__init__(reason)
        if delay_ms is not None and delay_ms < 0:
            raise ConfigurationError(f"Retry delay_ms must be >= 0, got {delay_ms}")
        self.delay_ms = delay_ms


@dataclass(frozen=True, kw_only=True)
class GroupTopicNaming(TopicNaming):
    """``TopicNaming`` whose companions are those of one consumer group."""

    group: str

    def retry_topic(self, topic: str) -> str:
        return self.group_retry_topic(topic, self.group)

    def dlq_topic(self, topic: str) -> str:
        return self.group_dlq_topic(topic, self.group)

    def source_of(self, companion: str) -> str | None:
        """The source topic of one of this group's companion topics, or None."""
        for i in range(len(companion) - 1, 0, -1):
            if companion[i] == "." and companion in (
                self.retry_topic(companion[:i]),
                self.dlq_topic(companion[:i]),
            ):
                return companion[:i]
        return None


@dataclass(frozen=True, kw_only=True, slots=True)
class Origin:
    """The original record a failure is about (what the headers must carry on every hop)."""

    topic: str
    partition: int
    offset: int | None
    timestamp_ms: int | None
    message_id: str
    headers: Sequence[tuple[str, bytes | None]] | None = None
    attempt: int = 0
    first_failure_at_ms: int | None = None
    replay_count: int = 0


def classify_exception(
    exc: BaseException, name: str, non_retriable: tuple[type[BaseException], ...]
) -> Classification:
    if isinstance(exc, Retry):
        return Classification(RETRY_REQUESTED, name, ErrorKind.RETRIABLE)
    kind = (
        ErrorKind.NON_RETRIABLE
        if non_retriable and isinstance(exc, non_retriable)
        else ErrorKind.RETRIABLE
    )
    return Classification(HANDLER_ERROR, name, kind)


def _with_group(route: Route, group: str) -> Route:
    hdrs: Headers = [*route.headers, (h.CONSUMER_GROUP, group.encode("utf-8"))]
    return dataclasses.replace(route, headers=hdrs)


def failure_route(
    origin: Origin,
    *,
    classification: Classification,
    error_message: str,
    retry_config: RetryConfig,
    naming: GroupTopicNaming,
    now_ms: int,
    delay_ms: int | None = None,
    poison: bool = False,
) -> Route:
    """The route of a record whose ``origin.attempt + 1``-th attempt just failed."""
    cfg = (
        retry_config
        if retry_config.retriable_errors is None
        else dataclasses.replace(retry_config, retriable_errors=None)
    )
    route = route_failure(
        topic=origin.topic,
        classification=classification,
        error_message=error_message,
        attempt=origin.attempt + 1,
        retry_config=cfg,
        naming=naming,
        now_ms=now_ms,
        headers=origin.headers,
        message_id=origin.message_id,
        first_failure_at_ms=origin.first_failure_at_ms,
        original_partition=origin.partition,
        original_offset=origin.offset,
        original_timestamp_ms=origin.timestamp_ms,
        replay_count=origin.replay_count,
        poison=poison,
    )
    if route.to_retry and delay_ms is not None:
        failure = dataclasses.replace(route.failure, next_attempt_at_ms=now_ms + delay_ms)
        return _to_retry(route.target_topic, failure, origin, naming)
    return _with_group(route, naming.group)


def park_route(
    origin: Origin, *, behind_offset: int, naming: GroupTopicNaming, now_ms: int
) -> Route:
    """A record whose key waits behind an earlier record of the same key: to the retry topic,
    due now, attempt unchanged (it was not tried); the consumer hands it over after the earlier
    one."""
    failure = Failure(
        original_topic=origin.topic,
        attempt=origin.attempt,
        error_code=PARKED,
        error_class="ParkedBehindKey",
        error_message=(
            f"key waits behind offset {behind_offset} of {origin.topic}[{origin.partition}]"
        ),
        retriable=True,
        first_failure_at_ms=now_ms,
        last_failure_at_ms=now_ms,
        next_attempt_at_ms=now_ms,
        original_partition=origin.partition,
        original_offset=origin.offset,
        original_timestamp_ms=origin.timestamp_ms,
        replay_count=origin.replay_count,
    )
    return _to_retry(naming.retry_topic(origin.topic), failure, origin, naming)


def _to_retry(topic: str, failure: Failure, origin: Origin, naming: GroupTopicNaming) -> Route:
    headers = h.failure_headers(origin.headers, failure, origin.message_id)
    return _with_group(Route(topic, True, failure, headers), naming.group)
