"""ReliableConsumer: handler failures through the retry/DLQ contract, scoped to the group."""

from __future__ import annotations

from kafka_reliable.consumer.consumer import ReliableConsumer
from kafka_reliable.consumer.engine import ConsumerError
from kafka_reliable.consumer.record import AvroDeserializer, ConsumerRecord, json_deserializer
from kafka_reliable.consumer.routes import GroupTopicNaming, Retry

__all__ = [
    "AvroDeserializer",
    "ConsumerError",
    "ConsumerRecord",
    "GroupTopicNaming",
    "ReliableConsumer",
    "Retry",
    "json_deserializer",
]
