"""ReliableConsumer settings and the librdkafka configurations of its clients.

``consumer_config`` takes kafka-python style keys (translated) and librdkafka dotted keys
(passed through), like the producer's ``producer_config``. Connection and security keys also
go to the consumer's own producer and admin client; a key prefixed ``producer.`` goes to the
producer only. The consumer owns its commits: ``enable.auto.commit`` cannot be turned on.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kafka_reliable.client_errors import with_logger
from kafka_reliable.config import KAFKA_PYTHON_KEYS, RELIABLE_DEFAULTS, RetryConfig, client_config
from kafka_reliable.errors import ConfigurationError
from kafka_reliable.owned_keys import Owned, owned, refuse_owned

#: Connection and security keys: the same kafka-python names as the producer's.
_SHARED_KEYS = [
    "bootstrap_servers",
    "client_id",
    "metadata_max_age_ms",
    "connections_max_idle_ms",
    "reconnect_backoff_ms",
    "reconnect_backoff_max_ms",
    "receive_buffer_bytes",
    "send_buffer_bytes",
    "security_protocol",
    "sasl_mechanism",
    "sasl_plain_username",
    "sasl_plain_password",
    "ssl_cafile",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl_password",
]
#: kafka-python consumer key -> librdkafka key.
CONSUMER_KEYS: dict[str, str] = {
    **{k: KAFKA_PYTHON_KEYS[k] for k in _SHARED_KEYS},
    "group_instance_id": "group.instance.id",
    "session_timeout_ms": "session.timeout.ms",
    "heartbeat_interval_ms": "heartbeat.interval.ms",
    "max_poll_interval_ms": "max.poll.interval.ms",
    "auto_offset_reset": "auto.offset.reset",
    "fetch_min_bytes": "fetch.min.bytes",
    "fetch_max_wait_ms": "fetch.wait.max.ms",
    "fetch_max_bytes": "fetch.max.bytes",
    "max_partition_fetch_bytes": "max.partition.fetch.bytes",
    "isolation_level": "isolation.level",
    "partition_assignment_strategy": "partition.assignment.strategy",
}
#: Keys handled in Python (popped before the rest reaches librdkafka).
PYTHON_KEYS = {"max_poll_records": "max_poll_records", "max.poll.records": "max_poll_records"}
_REFUSED = {
    "key_deserializer": "keys reach the handler as bytes (decode them in the handler)",
    "value_deserializer": "pass deserializer= to ReliableConsumer",
}
_COMMITS = "the ReliableConsumer commits offsets itself, after each record is handled"
#: Consumer keys the ReliableConsumer owns (``owned_keys``): setting them otherwise is refused.
CONSUMER_OWNED: tuple[Owned, ...] = (
    owned("enable.auto.commit", _COMMITS, "false"),
    owned("enable.auto.offset.store", _COMMITS, "false"),
    owned("group.id", "pass group_id= (the retry/DLQ topics are named after it)"),
    owned("enable.partition.eof", "the consumer reads on past a partition's end", "false"),
)
#: Keys of the consumer's own producer (retry/DLQ writes must be idempotent with acks=all).
WRITER_OWNED: tuple[Owned, ...] = (
    owned("acks", "its retry/DLQ writes need acks=all", "all", "-1"),
    owned("enable.idempotence", "its retry/DLQ writes need the idempotent producer", "true"),
    owned("transactional.id", "its retry/DLQ writes are not transactional"),
)
ORDERINGS = ("none", "key")
#: Eager assignors (the consumer assigns whole assignments in its rebalance callbacks).
EAGER = {"range", "roundrobin"}
#: Assignor that keeps source partition p and retry partition p on one member.
RANGE = "range"


@dataclass(frozen=True, kw_only=True)
class ConsumerSettings:
    """Everything the consumer loop needs (built by ``ReliableConsumer``)."""

    group_id: str
    topics: tuple[str, ...]
    retry_config: RetryConfig = field(default_factory=RetryConfig)
    non_retriable_exceptions: tuple[type[BaseException], ...] = ()
    local_retries: int = 0
    local_retry_delay_ms: int = 0
    ordering: str = "none"
    max_pending: int = 10_000
    max_poll_records: int = 500
    commit_interval_ms: int = 250
    shutdown_timeout_s: float = 10.0
    consumer: dict[str, Any] = field(default_factory=dict)
    producer: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.group_id or not isinstance(self.group_id, str):
            raise ConfigurationError(f"group_id must be a non-empty string, got {self.group_id!r}")
        if not self.topics or any(not isinstance(t, str) or not t for t in self.topics):
            raise ConfigurationError(
                f"topics must be a non-empty list of topic names, got {list(self.topics)!r}"
            )
        if self.ordering not in ORDERINGS:
            raise ConfigurationError(f"ordering must be one of {ORDERINGS}, got {self.ordering!r}")
        for name, low in (
            ("local_retries", 0),
            ("local_retry_delay_ms", 0),
            ("max_pending", 1),
            ("max_poll_records", 1),
            ("commit_interval_ms", 1),
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ConfigurationError(f"{name} must be an int >= {low}, got {v!r}")
        t = self.shutdown_timeout_s
        if isinstance(t, bool) or not isinstance(t, int | float) or not 0 <= t < float("inf"):
            raise ConfigurationError(
                f"shutdown_timeout_s must be a number of seconds >= 0, got {t!r}"
            )
        for exc in self.non_retriable_exceptions:
            if not (isinstance(exc, type) and issubclass(exc, BaseException)):
                raise ConfigurationError(
                    f"non_retriable_exceptions must be exception classes, got {exc!r}"
                )
        strategy = str(self.consumer.get("partition.assignment.strategy", RANGE))
        if not {x.strip() for x in strategy.split(",")} <= EAGER:
            raise ConfigurationError(
                f"partition.assignment.strategy {strategy!r} is not supported: "
                "use range or roundrobin (eager)"
            )
        if self.ordering == "key" and strategy != RANGE:
            raise ConfigurationError(
                "ordering='key' needs partition.assignment.strategy=range "
                "(source and retry partition p "
                f"on one member), got {strategy!r}"
            )

    @property
    def key_ordering(self) -> bool:
        return self.ordering == "key"


def translate_consumer_config(
    cfg: Mapping[str, Any] | None,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """``(consumer keys, producer-only keys, python keys)`` from ``consumer_config``."""
    consumer: dict[str, Any] = {}
    producer: dict[str, Any] = {}
    python: dict[str, Any] = {}
    for key, value in (cfg or {}).items():
        if not isinstance(key, str):
            raise ConfigurationError(f"consumer_config keys must be strings, got {key!r}")
        if key == "enable_auto_commit":
            key = "enable.auto.commit"
        if key in _REFUSED:
            raise ConfigurationError(
                f"consumer_config key {key!r} is not supported: {_REFUSED[key]}"
            )
        if key in PYTHON_KEYS:
            python[PYTHON_KEYS[key]] = _whole(key, value)
        elif key.startswith("producer."):
            producer[key[len("producer.") :]] = value
        elif "." in key:
            consumer[key] = value
        elif key in CONSUMER_KEYS:
            consumer[CONSUMER_KEYS[key]] = (
                ",".join(value)
                if key == "bootstrap_servers" and not isinstance(value, str)
                else value
            )
        else:
            hint = difflib.get_close_matches(key, [*CONSUMER_KEYS, *PYTHON_KEYS], n=1)
            extra = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise ConfigurationError(f"unknown consumer_config key {key!r}{extra}")
    refuse_owned(consumer, CONSUMER_OWNED, where="consumer_config")
    refuse_owned(producer, WRITER_OWNED, where="consumer_config", prefix="producer.")
    for rule in CONSUMER_OWNED:  # what agrees with ours is ours anyway
        consumer.pop(rule.key, None)
    return consumer, producer, python


def _whole(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConfigurationError(f"consumer_config {key} must be a whole number, got {value!r}")
    try:
        return int(value)
    except ValueError:
        raise ConfigurationError(
            f"consumer_config {key} must be a whole number, got {value!r}"
        ) from None


def consumer_conf(
    s: ConsumerSettings,
    bootstrap: str,
    error_cb: Callable[[Any], None],
    stats_cb: Callable[[str], None],
) -> dict[str, Any]:
    """Manual commits only; range assignment (key ordering needs it); statistics for lag and
    health."""
    conf: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "group.id": s.group_id,
        "client.id": "kafka-reliable-consumer",
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "enable.partition.eof": False,
        "partition.assignment.strategy": RANGE,
        "statistics.interval.ms": 5000,
    }
    conf.update(s.consumer)
    conf.update(
        {
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "error_cb": error_cb,
            "stats_cb": stats_cb,
        }
    )
    return with_logger(conf)


def producer_conf(
    s: ConsumerSettings, bootstrap: str, error_cb: Callable[[Any], None]
) -> dict[str, Any]:
    """Idempotent, acks=all: writes to the group's retry topic and DLQ."""
    conf: dict[str, Any] = {**RELIABLE_DEFAULTS, "delivery.timeout.ms": 30_000}
    conf.update(client_config(s.consumer))
    conf.update({"bootstrap.servers": bootstrap, "client.id": "kafka-reliable-consumer"})
    conf.update(s.producer)
    conf["error_cb"] = error_cb
    return with_logger(conf)


def admin_conf(s: ConsumerSettings, bootstrap: str) -> dict[str, Any]:
    return with_logger({**client_config(s.consumer), "bootstrap.servers": bootstrap})
