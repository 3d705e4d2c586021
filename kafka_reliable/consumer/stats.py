"""Counters and latency samples of one ReliableConsumer (read by ``get_stats`` from any thread)."""

from __future__ import annotations

from typing import Any

from kafka_reliable.latency import LatencyRing
from kafka_reliable.stats import RetryStats


class ConsumerStats:
    """What happened to the records this consumer saw."""

    COUNTERS = (
        "handled",
        "failed",
        "retried",
        "dead_lettered",
        "parked",
        "poison",
        "successful_retries",
        "early",
        "rebalances",
    )

    def __init__(self) -> None:
        self.counts: dict[str, int] = dict.fromkeys(self.COUNTERS, 0)
        self.dlq_by_topic: dict[str, int] = {}
        self.failed_by_class: dict[str, int] = {}
        self.handler_ms = LatencyRing()
        self.lateness_ms = LatencyRing()

    def snapshot(self) -> dict[str, Any]:
        c = dict(self.counts)
        attempts = c["handled"] + c["failed"]
        return {
            "messages_handled": c["handled"],
            "messages_failed": c["failed"],
            "error_rate": c["failed"] / attempts if attempts else 0.0,
            "messages_retried": c["retried"],
            "messages_dead_lettered": c["dead_lettered"],
            "messages_parked": c["parked"],
            "poison_messages": c["poison"],
            "failed_by_error_class": dict(self.failed_by_class),
            "latency_stats": self.handler_ms.snapshot(),
            "lateness_stats": self.lateness_ms.snapshot(),
            "retry_stats": RetryStats(
                total_retries=c["retried"], successful_retries=c["successful_retries"]
            ),
            "rebalances": c["rebalances"],
        }
