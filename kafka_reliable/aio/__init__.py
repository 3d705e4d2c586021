"""asyncio front end: ``AsyncReliableProducer`` (the sync producer's path, never blocking the loop)
and ``DeliveryRoutedError``. See docs/asyncio.md."""

from __future__ import annotations

from kafka_reliable.aio.errors import DeliveryRoutedError
from kafka_reliable.aio.producer import AsyncReliableProducer

__all__ = ["AsyncReliableProducer", "DeliveryRoutedError"]
