"""kafka-reliable: reliable producing to Apache Kafka.

Failed records go to ``<topic>.retry`` / ``<topic>.dlq`` with error headers, a retry worker
republishes them when due, DLQ tools inspect and replay them; nothing is silently lost.
"""

from __future__ import annotations

__version__ = "0.1.0"

from kafka_reliable.config import HealthThresholds, RetryConfig, TopicNaming
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


#: Public names imported on first use (PEP 562): the consumer, and the data generator (which
#: needs rich and fastavro, that neither an application nor most CLI verbs should pay for).
_LAZY = {
    "ReliableConsumer": "kafka_reliable.consumer",
    "DataGenerationOrchestrator": "kafka_reliable.datagen",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is not None:
        import importlib

        return getattr(importlib.import_module(module), name)
    raise AttributeError(f"module 'kafka_reliable' has no attribute {name!r}")
