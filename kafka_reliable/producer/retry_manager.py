"""What waits in ``.retry`` topics: the retry worker group's lag, read from Kafka."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaException

from kafka_reliable.config import DEFAULT_WORKER_GROUP
from kafka_reliable.topics import CompanionTopics

__all__ = ["DEFAULT_WORKER_GROUP", "RetryManager"]

log = logging.getLogger(__name__)

#: The retry worker's default consumer group.


class RetryManager:
    """``get_stats()``: records waiting in the ``.retry`` topics of the producer's topics."""

    def __init__(
        self,
        *,
        companions: CompanionTopics,
        topics: Callable[[], list[str]],
        worker_group: str = DEFAULT_WORKER_GROUP,
        routed: Callable[[], int] = lambda: 0,
    ) -> None:
        self._companions = companions
        self._topics = topics
        self.worker_group = worker_group
        self._routed = routed

    def lag(self, retry_topic: str, timeout_s: float = 10.0) -> tuple[int, int]:
        """(pending, processed) for one ``.retry`` topic: high - committed, committed - low."""
        marks = self._companions.watermarks(retry_topic, timeout_s)
        if not marks:
            return 0, 0
        committed = self._companions.committed(
            self.worker_group, retry_topic, list(marks), timeout_s
        )
        pending = processed = 0
        for p, (lo, hi) in marks.items():
            pos = committed.get(p, -1)
            pos = lo if pos < 0 else max(lo, min(pos, hi))
            pending += hi - pos
            processed += pos - lo
        return pending, processed

    def get_stats(self, timeout_s: float = 10.0) -> dict[str, Any]:
        per_topic: dict[str, int] = {}
        processed = 0
        error: str | None = None
        for t in self._topics():
            rt = self._companions.naming.retry_topic(t)
            try:
                pending, done = self.lag(rt, timeout_s)
            except KafkaException as exc:
                error = str(exc)
                continue
            per_topic[rt] = pending
            processed += done
        out: dict[str, Any] = {
            "pending_retries": sum(per_topic.values()),
            "pending_by_topic": per_topic,
            "processed_retries": processed,
            "routed_to_retry": self._routed(),
            "worker_group": self.worker_group,
        }
        if error:
            out["error"] = error
        return out
