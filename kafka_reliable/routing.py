"""Where a failed record goes next: ``<topic>.retry`` or ``<topic>.dlq`` (docs/architecture.md).

Pure decisions, shared by the producer (first failure) and the retry worker (later ones).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from kafka_reliable.backoff import backoff_ms
from kafka_reliable.config import RetryConfig, TopicNaming
from kafka_reliable.errors import Classification
from kafka_reliable.headers import Failure, Headers, failure_headers


@dataclass(frozen=True, slots=True)
class Route:
    """The decision for one failed record."""

    target_topic: str
    to_retry: bool
    failure: Failure
    headers: Headers


def _next_step(
    to_retry: bool,
    retriable: bool,
    poison: bool,
    attempt: int,
    retry_config: RetryConfig,
    now_ms: int,
    rand: Callable[[], float],
) -> tuple[str | None, int | None]:
    """``(dlq reason, next attempt at)``: ``(None, now + backoff)`` for a retry."""
    if to_retry:
        return None, now_ms + backoff_ms(attempt, retry_config, rand)
    reason = "poison" if poison else ("retries_exhausted" if retriable else "non_retriable")
    return reason, None


def route_failure(
    *,
    topic: str,
    classification: Classification,
    error_message: str,
    attempt: int,
    retry_config: RetryConfig,
    naming: TopicNaming,
    now_ms: int,
    headers: Iterable[tuple[str, bytes | None]] | None,
    message_id: str | None = None,
    first_failure_at_ms: int | None = None,
    original_partition: int | None = None,
    original_offset: int | None = None,
    original_timestamp_ms: int | None = None,
    replay_count: int = 0,
    poison: bool = False,
    rand: Callable[[], float] = random.random,
) -> Route:
    """Decide ``.retry`` vs ``.dlq`` for a record whose ``attempt``-th delivery just failed.

    Retriable and ``attempt <= max_retries`` -> ``.retry`` with ``next.attempt.at = now +
    backoff(attempt)``; otherwise ``.dlq`` with reason ``non_retriable``, ``retries_exhausted``
    or ``poison``.
    """
    retriable = (not poison) and retry_config.is_retriable(classification)
    to_retry = retriable and attempt <= retry_config.max_retries
    reason, next_at = _next_step(to_retry, retriable, poison, attempt, retry_config, now_ms, rand)
    failure = Failure(
        original_topic=topic,
        attempt=attempt,
        error_code=classification.code,
        error_class=classification.error_class,
        error_message=error_message,
        retriable=retriable,
        first_failure_at_ms=first_failure_at_ms if first_failure_at_ms is not None else now_ms,
        last_failure_at_ms=now_ms,
        next_attempt_at_ms=next_at,
        dlq_reason=reason,
        original_partition=original_partition,
        original_offset=original_offset,
        original_timestamp_ms=original_timestamp_ms,
        replay_count=replay_count,
    )
    target = naming.retry_topic(topic) if to_retry else naming.dlq_topic(topic)
    return Route(target, to_retry, failure, failure_headers(headers, failure, message_id))
