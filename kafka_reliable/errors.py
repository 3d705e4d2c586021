"""One error root, and the table that classifies Kafka delivery errors.

Delivery-report errors from librdkafka never say ``retriable()`` (librdkafka has already
retried what it could), so the decision is ours: this table maps librdkafka error names and
the feature document's (kafka-python style) class names to retriable / non-retriable / fatal.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class KafkaReliableError(Exception):
    """Root of every error this library raises."""


class InputError(KafkaReliableError):
    """Marker: the caller's input is wrong (fix the call, do not retry); the CLI exits 2."""


class ConfigurationError(InputError, ValueError):
    """A configuration value is unknown or invalid; the message names it."""


class SerializationError(KafkaReliableError, ValueError):
    """A value or key could not be serialized; nothing was sent."""


class DeduplicationUnavailableError(KafkaReliableError):
    """The dedup backend could not be reached and the policy is fail-closed; nothing was sent."""


class SpoolError(KafkaReliableError):
    """The local spool could not be written or read."""


class SpoolFullError(SpoolError):
    """The durable send path's write-ahead log reached ``spool_max_bytes`` (or the disk is
    full): the record was not accepted; nothing accepted before it is lost."""


class ProducerClosedError(KafkaReliableError):
    """The producer was used after ``close()``."""


class ErrorKind(enum.Enum):
    RETRIABLE = "retriable"
    NON_RETRIABLE = "non_retriable"
    FATAL = "fatal"


@dataclass(frozen=True, slots=True)
class Classification:
    """What we know about one failure: librdkafka's name, the document's class, the kind."""

    code: str
    error_class: str
    kind: ErrorKind


_R, _N, _F = ErrorKind.RETRIABLE, ErrorKind.NON_RETRIABLE, ErrorKind.FATAL

#: librdkafka error name -> (feature-document class name, kind).
ERROR_TABLE: dict[str, tuple[str, ErrorKind]] = {
    # retriable: the cluster may accept the same bytes later
    "_MSG_TIMED_OUT": ("KafkaTimeoutError", _R),
    "_TIMED_OUT": ("KafkaTimeoutError", _R),
    "REQUEST_TIMED_OUT": ("RequestTimedOutError", _R),
    "NOT_LEADER_FOR_PARTITION": ("NotLeaderForPartitionError", _R),
    "NOT_LEADER_OR_FOLLOWER": ("NotLeaderForPartitionError", _R),
    "LEADER_NOT_AVAILABLE": ("LeaderNotAvailableError", _R),
    "NOT_ENOUGH_REPLICAS": ("NotEnoughReplicasError", _R),
    "NOT_ENOUGH_REPLICAS_AFTER_APPEND": ("NotEnoughReplicasAfterAppendError", _R),
    "BROKER_NOT_AVAILABLE": ("BrokerNotAvailableError", _R),
    "_TRANSPORT": ("KafkaConnectionError", _R),
    "_ALL_BROKERS_DOWN": ("NoBrokersAvailable", _R),
    "NETWORK_EXCEPTION": ("NetworkError", _R),
    "UNKNOWN_TOPIC_OR_PART": ("UnknownTopicOrPartitionError", _R),
    "_UNKNOWN_TOPIC": ("UnknownTopicOrPartitionError", _R),
    "_UNKNOWN_PARTITION": ("UnknownTopicOrPartitionError", _R),
    "KAFKA_STORAGE_ERROR": ("KafkaStorageError", _R),
    "_PURGE_QUEUE": ("KafkaTimeoutError", _R),
    "_PURGE_INFLIGHT": ("KafkaTimeoutError", _R),
    "_DESTROY": ("KafkaConnectionError", _R),
    "THROTTLING_QUOTA_EXCEEDED": ("ThrottlingQuotaExceededError", _R),
    # non-retriable: the same bytes will fail again
    "MSG_SIZE_TOO_LARGE": ("MessageSizeTooLargeError", _N),
    "_MSG_SIZE_TOO_LARGE": ("MessageSizeTooLargeError", _N),
    "RECORD_LIST_TOO_LARGE": ("RecordListTooLargeError", _N),
    "INVALID_RECORD": ("InvalidRecordError", _N),
    "CORRUPT_MESSAGE": ("CorruptRecordError", _N),
    "INVALID_MSG": ("CorruptRecordError", _N),
    "TOPIC_AUTHORIZATION_FAILED": ("TopicAuthorizationFailedError", _N),
    "CLUSTER_AUTHORIZATION_FAILED": ("ClusterAuthorizationFailedError", _N),
    "TRANSACTIONAL_ID_AUTHORIZATION_FAILED": ("TransactionalIdAuthorizationFailedError", _N),
    "TOPIC_EXCEPTION": ("InvalidTopicError", _N),
    "INVALID_REQUIRED_ACKS": ("InvalidRequiredAcksError", _N),
    "UNSUPPORTED_FOR_MESSAGE_FORMAT": ("UnsupportedForMessageFormatError", _N),
    "_INVALID_ARG": ("ValueError", _N),
    "_KEY_SERIALIZATION": ("SerializationError", _N),
    "_VALUE_SERIALIZATION": ("SerializationError", _N),
    "SERIALIZATION": ("SerializationError", _N),
    "VALUE_ERROR": ("ValueError", _N),
    "POISON": ("PoisonRecordError", _N),
    # fatal for the idempotent producer: rebuild it; the records themselves are fine
    "_FATAL": ("KafkaFatalError", _F),
    "OUT_OF_ORDER_SEQUENCE_NUMBER": ("OutOfOrderSequenceNumberError", _F),
    "INVALID_PRODUCER_EPOCH": ("InvalidProducerEpochError", _F),
    "PRODUCER_FENCED": ("ProducerFencedError", _F),
    "_FENCED": ("ProducerFencedError", _F),
    "UNKNOWN_PRODUCER_ID": ("UnknownProducerIdError", _F),
    "INVALID_PRODUCER_ID_MAPPING": ("InvalidProducerIdMappingError", _F),
    "_INCONSISTENT": ("KafkaFatalError", _F),
    "_GAPLESS_GUARANTEE": ("KafkaFatalError", _F),
}

#: Every name a user may put in ``RetryConfig.retriable_errors`` (both naming styles).
KNOWN_ERROR_NAMES: frozenset[str] = frozenset(ERROR_TABLE) | frozenset(
    c for c, _ in ERROR_TABLE.values()
)

#: The document's default retriable set, as librdkafka names and class names.
DEFAULT_RETRIABLE: frozenset[str] = frozenset(
    name for name, (_, kind) in ERROR_TABLE.items() if kind is not ErrorKind.NON_RETRIABLE
) | frozenset(cls for cls, kind in ERROR_TABLE.values() if kind is not ErrorKind.NON_RETRIABLE)


def classify(code: str, *, fatal: bool = False) -> Classification:
    """Classify a librdkafka error name (``KafkaError.name()``) or a class name.

    Unknown codes are non-retriable: the record goes to the DLQ where a person can see it,
    rather than circling forever.
    """
    if fatal:
        entry = ERROR_TABLE.get(code)
        return Classification(code, entry[0] if entry else "KafkaFatalError", ErrorKind.FATAL)
    entry = ERROR_TABLE.get(code)
    if entry is not None:
        return Classification(code, entry[0], entry[1])
    for name, (cls, kind) in ERROR_TABLE.items():
        if cls == code:
            return Classification(name, cls, kind)
    return Classification(code, "KafkaError", ErrorKind.NON_RETRIABLE)
