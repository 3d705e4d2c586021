"""The AsyncReliableProducer's status, stats, health, DLQ and spool calls: the sync producer's,
run off the event loop where they may block (``asyncio.to_thread``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from kafka_reliable.aio.errors import AsyncUsageError
from kafka_reliable.dlq import DlqMessage
from kafka_reliable.producer import ReliableKafkaProducer


class SyncTools:
    """Mixed into ``AsyncReliableProducer`` (which sets ``_sync`` and provides ``sync``)."""

    _sync: ReliableKafkaProducer | None

    @property
    def sync(self) -> ReliableKafkaProducer:
        """The sync producer underneath (after ``start``); its blocking calls block the loop."""
        if self._sync is None:
            raise AsyncUsageError(
                "AsyncReliableProducer not started: use 'async with' or await start()"
            )
        return self._sync

    def get_message_status(self, message_id: str) -> str | None:
        """``pending``, ``sent``, ``retrying``, ``dlq``, ``spooled``, ``duplicate``; None if
        unknown."""
        return self._sync.get_message_status(message_id) if self._sync is not None else None

    def get_pending_messages(self) -> list[str]:
        return self._sync.get_pending_messages() if self._sync is not None else []

    async def get_stats(self) -> dict[str, Any]:
        return await asyncio.to_thread(self.sync.get_stats)

    async def get_health_status(self) -> dict[str, Any]:
        return await asyncio.to_thread(self.sync.get_health_status)

    def add_health_alert_callback(self, callback: Callable[[dict[str, Any]], None]) -> None:
        """``callback(alert)`` from a producer thread (hand it to the loop yourself if needed)."""
        self.sync.add_health_alert_callback(callback)

    async def get_dlq_messages(
        self, topic: str, limit: int | None = 100, **filters: Any
    ) -> list[DlqMessage]:
        return await asyncio.to_thread(self.sync.get_dlq_messages, topic, limit, **filters)

    async def clear_dlq(self, topic: str) -> int:
        return await asyncio.to_thread(self.sync.clear_dlq, topic)

    async def replay_dlq_messages(
        self, topic: str, max_messages: int | None = None, **options: Any
    ) -> int:
        return await asyncio.to_thread(
            self.sync.replay_dlq_messages, topic, max_messages, **options
        )

    async def drain_spool(self, max_records: int = 5000, timeout_s: float = 30.0) -> int:
        return await asyncio.to_thread(self.sync.drain_spool, max_records, timeout_s)
