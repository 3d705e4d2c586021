"""Configuration: RetryConfig, health thresholds, topic naming; client keys re-exported."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Client configuration lives in client_keys; this module is its public path.
from kafka_reliable.client_keys import (
    _SECRET_KEY,
    COMMON_LIBRDKAFKA_KEYS,
    KAFKA_ENV_PREFIX,
    KAFKA_PYTHON_KEYS,
    PYTHON_CLIENT_KEYS,
    RELIABLE_DEFAULTS,
    UNSUPPORTED_KEYS,
    build_producer_config,
    check_bootstrap_servers,
    check_client_keys,
    client_config,
    kafka_config_from_env,
    parse_kafka_item,
    redact,
    redact_text,
    redact_url,
    translate_producer_config,
)
from kafka_reliable.errors import (
    KNOWN_ERROR_NAMES,
    Classification,
    ConfigurationError,
    ErrorKind,
)

__all__ = [
    "DEFAULT_DLQ_RETENTION_MS",
    "RetryConfig",
    "HealthThresholds",
    "MAX_TOPIC_NAME_LENGTH",
    "legal_topic_name",
    "check_topic_name",
    "TopicNaming",
    "_SECRET_KEY",
    "COMMON_LIBRDKAFKA_KEYS",
    "KAFKA_ENV_PREFIX",
    "KAFKA_PYTHON_KEYS",
    "PYTHON_CLIENT_KEYS",
    "RELIABLE_DEFAULTS",
    "UNSUPPORTED_KEYS",
    "build_producer_config",
    "check_bootstrap_servers",
    "check_client_keys",
    "client_config",
    "kafka_config_from_env",
    "parse_kafka_item",
    "redact",
    "redact_text",
    "redact_url",
    "translate_producer_config",
]

#: Default DLQ retention: 14 days.
DEFAULT_DLQ_RETENTION_MS = 14 * 24 * 3600 * 1000


#: The retry worker's consumer group by default (the producer reads its lag, the console too).
DEFAULT_WORKER_GROUP = "kafka-reliable-retry"


@dataclass(frozen=True, kw_only=True)
class RetryConfig:
    """How failed deliveries are retried after librdkafka has given up on them.

    librdkafka keeps its own internal retries (they preserve order and idempotence);
    this governs the second level: ``<topic>.retry`` with exponential backoff, then the DLQ.
    ``retriable_errors`` accepts librdkafka names (``_MSG_TIMED_OUT``) and the feature
    document's class names (``KafkaTimeoutError``); ``None`` means the built-in table.
    """

    max_retries: int = 3
    initial_delay_ms: int = 100
    max_delay_ms: int = 30_000
    backoff_multiplier: float = 2.0
    jitter: bool = True
    retriable_errors: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if (
            isinstance(self.max_retries, bool)
            or not isinstance(self.max_retries, int)
            or self.max_retries < 0
        ):
            raise ConfigurationError(
                f"RetryConfig.max_retries must be an int >= 0, got {self.max_retries!r}"
            )
        for name in ("initial_delay_ms", "max_delay_ms"):
            v = getattr(self, name)
            if (
                isinstance(v, bool)
                or not isinstance(v, int | float)
                or not math.isfinite(v)
                or v < 0
            ):
                raise ConfigurationError(
                    f"RetryConfig.{name} must be a finite number >= 0, got {v!r}"
                )
        if self.max_delay_ms < self.initial_delay_ms:
            raise ConfigurationError(
                f"RetryConfig.max_delay_ms ({self.max_delay_ms}) is below "
                f"initial_delay_ms ({self.initial_delay_ms})"
            )
        m = self.backoff_multiplier
        if isinstance(m, bool) or not isinstance(m, int | float) or not math.isfinite(m) or m < 1.0:
            raise ConfigurationError(
                f"RetryConfig.backoff_multiplier must be a finite number >= 1.0, got {m!r}"
            )
        if self.retriable_errors is not None:
            if isinstance(self.retriable_errors, str):
                raise ConfigurationError(
                    "RetryConfig.retriable_errors must be a list of names, not a string"
                )
            names = tuple(self.retriable_errors)
            unknown = [n for n in names if n not in KNOWN_ERROR_NAMES]
            if unknown:
                raise ConfigurationError(
                    f"RetryConfig.retriable_errors has unknown error names {unknown}; "
                    "use librdkafka names (e.g. _MSG_TIMED_OUT) "
                    "or class names (e.g. KafkaTimeoutError)"
                )
            object.__setattr__(self, "retriable_errors", names)

    def is_retriable(self, c: Classification) -> bool:
        """Whether a failure of this class may go to ``.retry`` (attempts permitting)."""
        if c.kind is ErrorKind.FATAL:
            return True
        if self.retriable_errors is None:
            return c.kind is ErrorKind.RETRIABLE
        allowed = frozenset(self.retriable_errors)
        return c.code in allowed or c.error_class in allowed


@dataclass(frozen=True, kw_only=True)
class HealthThresholds:
    """The feature document's health thresholds."""

    error_rate_threshold: float = 0.05
    latency_threshold_ms: float = 1000.0
    dlq_size_threshold: int = 100
    memory_usage_threshold: float = 0.8

    def __post_init__(self) -> None:
        for name in ("error_rate_threshold", "memory_usage_threshold"):
            v = getattr(self, name)
            if not isinstance(v, int | float) or not 0.0 < v <= 1.0:
                raise ConfigurationError(f"HealthThresholds.{name} must be in (0, 1], got {v!r}")
        if not isinstance(self.latency_threshold_ms, int | float) or self.latency_threshold_ms <= 0:
            raise ConfigurationError(
                "HealthThresholds.latency_threshold_ms must be > 0, "
                f"got {self.latency_threshold_ms!r}"
            )
        if (
            isinstance(self.dlq_size_threshold, bool)
            or not isinstance(self.dlq_size_threshold, int)
            or self.dlq_size_threshold < 0
        ):
            raise ConfigurationError(
                "HealthThresholds.dlq_size_threshold must be an int >= 0, "
                f"got {self.dlq_size_threshold!r}"
            )

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any] | HealthThresholds | None) -> HealthThresholds:
        if m is None:
            return cls()
        if isinstance(m, HealthThresholds):
            return m
        unknown = set(m) - {f for f in cls.__dataclass_fields__}
        if unknown:
            raise ConfigurationError(f"unknown health thresholds: {sorted(unknown)}")
        return cls(**dict(m))


#: Kafka's limit on topic names.
MAX_TOPIC_NAME_LENGTH = 249
_ILLEGAL_TOPIC_CHARS = re.compile(r"[^a-zA-Z0-9._-]")
_LEGAL_TOPIC = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")


def legal_topic_name(name: object) -> bool:
    """Whether ``name`` is a topic name Kafka accepts (1-249 of ``[a-zA-Z0-9._-]``, not . or ..)."""
    return isinstance(name, str) and bool(_LEGAL_TOPIC.match(name)) and name not in {".", ".."}


def check_topic_name(name: object) -> str:
    """``name`` when legal, else ValueError naming it (nothing is sent for such a record)."""
    if not legal_topic_name(name):
        raise ValueError(
            f"invalid topic name {name!r}: use 1-249 of [a-zA-Z0-9._-], not '.' or '..'"
        )
    return name  # type: ignore[return-value]


@dataclass(frozen=True, kw_only=True)
class TopicNaming:
    """Companion topic names: ``<topic><retry_suffix>`` and ``<topic><dlq_suffix>``.

    A ReliableConsumer's companions are scoped to its group: ``<topic>.<group><retry_suffix>``
    and ``<topic>.<group><dlq_suffix>`` (``group_retry_topic``/``group_dlq_topic``).
    """

    retry_suffix: str = ".retry"
    dlq_suffix: str = ".dlq"
    dlq_retention_ms: int = DEFAULT_DLQ_RETENTION_MS

    def __post_init__(self) -> None:
        for name in ("retry_suffix", "dlq_suffix"):
            v = getattr(self, name)
            if not isinstance(v, str) or not v or _ILLEGAL_TOPIC_CHARS.search(v):
                raise ConfigurationError(
                    f"TopicNaming.{name} must be non-empty [a-zA-Z0-9._-] "
                    "(else a topic would be its own "
                    f"companion), got {v!r}"
                )
        if self.retry_suffix == self.dlq_suffix:
            raise ConfigurationError(
                "TopicNaming.retry_suffix and dlq_suffix are both "
                f"{self.retry_suffix!r}: retry and DLQ "
                "records would share one topic"
            )
        r = self.dlq_retention_ms
        if isinstance(r, bool) or not isinstance(r, int) or r == 0 or r < -1:
            raise ConfigurationError(
                f"TopicNaming.dlq_retention_ms must be > 0 (or -1: forever), got {r!r}"
            )

    def retry_topic(self, topic: str) -> str:
        return topic + self.retry_suffix

    def dlq_topic(self, topic: str) -> str:
        return topic + self.dlq_suffix

    def group_retry_topic(self, topic: str, group: str) -> str:
        """A consumer group's retry topic: ``<topic>.<group><retry_suffix>`` (see group_part)."""
        return self._group_topic(topic, group, self.retry_suffix)

    def group_dlq_topic(self, topic: str, group: str) -> str:
        """A consumer group's DLQ: ``<topic>.<group><dlq_suffix>`` (see group_part)."""
        return self._group_topic(topic, group, self.dlq_suffix)

    def _group_topic(self, topic: str, group: str, suffix: str) -> str:
        """``<topic>.<group><suffix>`` with the group mapped to legal topic characters.

        Every character of the group outside ``[a-zA-Z0-9._-]`` becomes ``_`` (``"billing v2"``
        -> ``billing_v2``), so two groups differing only in such characters share topics. When
        the name would exceed Kafka's 249 characters, the mapped group is cut and ``-`` plus 8
        hex digits of blake2b(original group) are appended, keeping long names apart.
        """
        if not group:
            raise ConfigurationError("consumer group id must not be empty")
        mapped = _ILLEGAL_TOPIC_CHARS.sub("_", group)
        head = f"{topic}."
        if len(head) + len(mapped) + len(suffix) <= MAX_TOPIC_NAME_LENGTH:
            return head + mapped + suffix
        digest = hashlib.blake2b(group.encode("utf-8"), digest_size=4).hexdigest()
        room = MAX_TOPIC_NAME_LENGTH - len(head) - len(suffix) - 1 - len(digest)
        if room < 1:
            raise ConfigurationError(
                f"topic name {topic!r} is too long for a group companion topic "
                f"(at most {MAX_TOPIC_NAME_LENGTH} characters in all)"
            )
        return f"{head}{mapped[:room]}-{digest}{suffix}"

    def source_of(self, companion: str) -> str | None:
        """The source topic of a companion topic name, or None if it is not one."""
        for suffix in (self.retry_suffix, self.dlq_suffix):
            if companion.endswith(suffix) and len(companion) > len(suffix):
                return companion[: -len(suffix)]
        return None
