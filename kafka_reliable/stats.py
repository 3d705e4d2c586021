"""The shapes of the stats every part reports the same way (``get_stats()`` of the producer,
the ReliableConsumer and the asyncio front ends): one TypedDict each, so the keys are checked
by type checkers instead of held by convention."""

from __future__ import annotations

from typing import NotRequired, TypedDict

from kafka_reliable.latency import LatencyStats

__all__ = ["DlqStats", "LatencyStats", "RetryStats"]


class RetryStats(TypedDict):
    """``retry_stats``: records routed to a retry topic, and retries that then succeeded."""

    total_retries: int
    successful_retries: int


class DlqStats(TypedDict):
    """``dlq_stats``: records in the DLQs (exact, from watermarks) and routed by this client."""

    total_messages: int | None
    topic_breakdown: dict[str, int]
    routed_by_this_producer: NotRequired[dict[str, int]]
    routed_by_this_consumer: NotRequired[dict[str, int]]
    trimmed: NotRequired[int]
    unknown: NotRequired[str]
