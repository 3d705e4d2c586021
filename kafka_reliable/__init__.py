"""kafka-reliable: reliable producing to Apache Kafka.

Failed records go to ``<topic>.retry`` / ``<topic>.dlq`` with error headers, a retry worker
republishes them when due, DLQ tools inspect and replay them; nothing is silently lost.
"""

from __future__ import annotations

__version__ = "0.1.0"

from kafka_reliable.config import HealthThresholds, RetryConfig, TopicNaming
from kafka_reliable.datagen import DataGenerationOrchestrator  # noqa: E402  (imports the producer)
from kafka_reliable.dlq import DeadLetterQueue, DlqMessage
from kafka_reliable.errors import (
    ConfigurationError,
    DeduplicationUnavailableError,
    KafkaReliableError,
    ProducerClosedError,
    SerializationError,
    SpoolError,
)
from kafka_reliable.producer import ReliableKafkaProducer

__all__ = [
    "ConfigurationError",
    "DataGenerationOrchestrator",
    "DeadLetterQueue",
    "DlqMessage",
    "DeduplicationUnavailableError",
    "HealthThresholds",
    "KafkaReliableError",
    "ProducerClosedError",
    "ReliableConsumer",
    "ReliableKafkaProducer",
    "RetryConfig",
    "SerializationError",
    "SpoolError",
    "TopicNaming",
    "__version__",
]


def __getattr__(name: str) -> object:  # ReliableConsumer is imported on first use (PEP 562)
    if name == "ReliableConsumer":
        from kafka_reliable.consumer import ReliableConsumer

        return ReliableConsumer
    raise AttributeError(f"module 'kafka_reliable' has no attribute {name!r}")
