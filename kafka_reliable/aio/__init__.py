"""asyncio front end (see docs/asyncio.md).

- :class:`AsyncReliableProducer`: the sync producer's path, awaited without blocking the loop;
  :class:`DeliveryRoutedError` when an awaited record was routed instead of acknowledged.
- :func:`run_async` / :class:`AsyncReliableConsumer`: a ReliableConsumer with an ``async def``
  handler (imported on first use, like ``kafka_reliable.ReliableConsumer``).
"""

from __future__ import annotations

from typing import Any

from kafka_reliable.aio.errors import AsyncUsageError, DeliveryRoutedError
from kafka_reliable.aio.producer import AsyncReliableProducer

__all__ = [
    "AsyncReliableConsumer",
    "AsyncReliableProducer",
    "AsyncUsageError",
    "DeliveryRoutedError",
    "run_async",
]


def __getattr__(name: str) -> Any:
    if name in ("AsyncReliableConsumer", "run_async"):
        from kafka_reliable.aio import consumer

        return getattr(consumer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
