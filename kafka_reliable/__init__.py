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
    SpoolFullError,
)
from kafka_reliable.health import (
    CircuitBreaker,
    CircuitOpenError,
    RateLimiter,
    RateLimitExceededError,
)
from kafka_reliable.producer import ReliableKafkaProducer

#: What a user passes or catches (the data generator stays importable by name, not exported).
__all__ = [
    "AsyncReliableProducer",
    "AvroSerializer",
    "CircuitBreaker",
    "CircuitOpenError",
    "ConfigurationError",
    "DeadLetterQueue",
    "DeduplicationUnavailableError",
    "DeliveryRoutedError",
    "DlqMessage",
    "HealthThresholds",
    "KafkaReliableError",
    "ProducerClosedError",
    "RateLimitExceededError",
    "RateLimiter",
    "ReliableConsumer",
    "ReliableKafkaProducer",
    "RetryConfig",
    "SerializationError",
    "SpoolError",
    "SpoolFullError",
    "TopicNaming",
    "__version__",
]


#: Public names imported on first use (PEP 562): the consumer, the asyncio side, Avro and the
#: data generator (fastavro and rich, that neither an application nor most CLI verbs should pay
#: for).
_LAZY = {
    "ReliableConsumer": "kafka_reliable.consumer",
    "DataGenerationOrchestrator": "kafka_reliable.datagen",
    "AvroSerializer": "kafka_reliable.avro",
    "AsyncReliableProducer": "kafka_reliable.aio",
    "DeliveryRoutedError": "kafka_reliable.aio",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is not None:
        import importlib

        return getattr(importlib.import_module(module), name)
    raise AttributeError(f"module 'kafka_reliable' has no attribute {name!r}")
