"""Retry-worker configuration: one frozen dataclass, built from CLI arguments and the environment.

Precedence: command-line option, then environment variable, then default. librdkafka keys
(SASL, TLS, tuning) pass through from ``--kafka-config key=value`` (repeatable) and from
``KAFKA_RELIABLE_KAFKA_<KEY>`` variables (``_`` becomes ``.``, e.g.
``KAFKA_RELIABLE_KAFKA_SASL_PASSWORD`` -> ``sasl.password``). A key prefixed ``producer.`` or
``consumer.`` goes to that client only. Secrets are only ever shown through ``redact``.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kafka_reliable.config import (
    DEFAULT_WORKER_GROUP,
    RetryConfig,
    TopicNaming,
    check_client_keys,
    kafka_config_from_env,
    legal_topic_name,
    parse_kafka_item,
    redact,
)
from kafka_reliable.errors import ConfigurationError
from kafka_reliable.owned_keys import Owned, owned, refuse_owned

DEFAULT_GROUP = DEFAULT_WORKER_GROUP
DEFAULT_MAX_PENDING = 10_000
#: Seconds the worker waits for the cluster's first answer before it gives up (exit 1).
DEFAULT_STARTUP_TIMEOUT_S = 30.0

#: Consumer keys the worker sets itself (its commits and what it reads depend on them).
CONSUMER_OWNED: tuple[Owned, ...] = (
    owned("group.id", "use --group"),
    owned(
        "enable.auto.commit",
        "the worker commits each offset after its republish is acknowledged",
        "false",
    ),
    owned("enable.auto.offset.store", "the worker stores offsets itself", "false"),
    owned(
        "isolation.level",
        "the worker reads read_committed so aborted hops are never seen",
        "read_committed",
    ),
)
#: Producer keys the worker sets itself (a republish must be acknowledged by all replicas, once).
WORKER_PRODUCER_OWNED: tuple[Owned, ...] = (
    owned("transactional.id", "use --transactional (one transactional id per worker instance)"),
    owned("acks", "the worker republishes with acks=all", "all", "-1"),
    owned("enable.idempotence", "the worker's producer must be idempotent", "true"),
)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True, kw_only=True)
class WorkerConfig:
    """Everything a RetryWorker needs. ``topics`` are SOURCE topics (``a`` -> ``a.retry``);
    ``pattern`` is a regex over source topic names. Exactly one of them is set.

    A name in ``topics`` that already ends in a companion suffix (``orders.retry``) is refused:
    the worker would consume ``orders.retry.retry``. Companion topics of a source topic that
    does not exist are created only with ``create_topics``.
    """

    bootstrap_servers: str = "localhost:9092"
    topics: tuple[str, ...] = ()
    pattern: str | None = None
    group_id: str = DEFAULT_GROUP
    max_pending: int = DEFAULT_MAX_PENDING
    metrics_port: int | None = None
    transactional: bool = False
    retry_config: RetryConfig = field(default_factory=RetryConfig)
    naming: TopicNaming = field(default_factory=TopicNaming)
    #: Stable identity of this instance (static group membership and transactional.id).
    instance_id: str | None = None
    #: librdkafka settings (SASL/TLS); kept out of repr() so secrets never reach a log line.
    kafka_config: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    commit_interval_ms: int = 200
    poll_batch: int = 500
    delivery_timeout_ms: int = 30_000
    transaction_timeout_ms: int = 10_000
    shutdown_timeout_s: float = 10.0
    #: How long to wait for the cluster's first answer at start (then WorkerError).
    startup_timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S
    #: Create ``.retry``/``.dlq`` for source topics that do not exist (default: only consume).
    create_topics: bool = False

    def __post_init__(self) -> None:
        if bool(self.topics) == bool(self.pattern):
            raise ConfigurationError("give exactly one of --topics and --pattern")
        if not self.group_id.strip():
            raise ConfigurationError("the consumer group (--group) must not be empty")
        for topic in self.topics:
            self._check_source(topic)
        if self.pattern:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ConfigurationError(f"--pattern is not a valid regex: {exc}") from exc
            _check_librdkafka_regex(self.pattern, self.subscription()[0])
        if not self.bootstrap_servers:
            raise ConfigurationError("bootstrap servers are empty")
        for name in (
            "max_pending",
            "commit_interval_ms",
            "poll_batch",
            "delivery_timeout_ms",
            "transaction_timeout_ms",
        ):
            if getattr(self, name) < 1:
                raise ConfigurationError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.metrics_port is not None and not 0 <= self.metrics_port < 65536:
            raise ConfigurationError(f"metrics port {self.metrics_port} is out of range")
        check_owned_keys(self.kafka_config, transactional=self.transactional)
        for name in ("startup_timeout_s", "shutdown_timeout_s"):
            if not getattr(self, name) > 0:
                raise ConfigurationError(
                    f"{name} (--{name.replace('_', '-')}) must be > 0, got {getattr(self, name)}"
                )

    def _check_source(self, topic: str) -> None:
        """A source topic name: legal, not a companion name, with legal companion names."""
        if not legal_topic_name(topic):
            raise ConfigurationError(
                f"--topics: {topic!r} is not a legal topic name "
                "(1-249 of [a-zA-Z0-9._-], not '.' or '..')"
            )
        source = self.naming.source_of(topic)
        if source is not None:
            raise ConfigurationError(
                f"--topics: {topic!r} already ends in a companion suffix; name the source topic "
                f"({source!r}): the worker consumes {self.naming.retry_topic(source)!r}"
            )
        if not legal_topic_name(self.naming.retry_topic(topic)):
            raise ConfigurationError(
                f"--topics: {topic!r} is too long for its companion topic "
                f"{self.naming.retry_topic(topic)!r} (at most 249 characters)"
            )

    def subscription(self) -> list[str]:
        """Topic names or one librdkafka regex (leading ``^``) of the ``.retry`` topics."""
        suffix = re.escape(self.naming.retry_suffix)
        if self.pattern:
            return [f"^({self.pattern}){suffix}$"]
        return [self.naming.retry_topic(t) for t in self.topics]

    def client_keys(self, role: str) -> dict[str, str]:
        """Pass-through librdkafka keys for ``role`` (``producer``/``consumer``/``admin``)."""
        out: dict[str, str] = {}
        for key, value in self.kafka_config:
            head, _, rest = key.partition(".")
            if head in ("producer", "consumer", "admin"):
                if head == role:
                    out[rest] = value
            elif role != "admin" or key.startswith(("security.", "sasl.", "ssl.", "client.")):
                out[key] = value
        return out

    def transactional_id(self) -> str:
        who = self.instance_id or f"{socket.gethostname()}-{os.getpid()}"
        return f"{self.group_id}-{who}"

    def describe(self) -> dict[str, Any]:
        """A loggable summary: secrets redacted."""
        return {
            "bootstrap_servers": self.bootstrap_servers,
            "subscription": self.subscription(),
            "group": self.group_id,
            "instance_id": self.instance_id,
            "max_pending": self.max_pending,
            "transactional": self.transactional,
            "create_topics": self.create_topics,
            "startup_timeout_s": self.startup_timeout_s,
            "retry": self.retry_config,
            "kafka_config": redact(dict(self.kafka_config)),
        }


def _check_librdkafka_regex(pattern: str, subscription: str) -> None:
    """librdkafka's regex engine is not Python's (no ``(?i)``, no lookarounds): ask it, with a
    client that connects nowhere, so a pattern it refuses is a usage error naming the pattern."""
    from confluent_kafka import Consumer, KafkaException

    probe = Consumer({"group.id": "kafka-reliable-pattern-check", "log_level": 0})
    try:
        probe.subscribe([subscription])
    except KafkaException:
        raise ConfigurationError(
            f"--pattern {pattern!r} is a Python regex librdkafka's regex engine does not accept "
            "(POSIX-style: no (?i) flags, lookarounds or non-greedy quantifiers)"
        ) from None
    finally:
        probe.close()


def parse_kafka_config(items: Sequence[str]) -> tuple[tuple[str, str], ...]:
    return tuple(parse_kafka_item(item) for item in items)


def check_kafka_config(items: Sequence[tuple[str, str]]) -> None:
    """Refuse keys librdkafka does not know (with a suggestion); ``producer.``/``consumer.``/
    ``admin.`` prefixes are taken off first."""
    for key, value in items:
        head, _, rest = key.partition(".")
        bare = rest if head in ("producer", "consumer", "admin") and rest else key
        check_client_keys({bare: value}, where="--kafka-config")


def check_owned_keys(items: Sequence[tuple[str, str]], *, transactional: bool = False) -> None:
    """Refuse ``--kafka-config`` keys that would override what the worker owns (``CONSUMER_OWNED``,
    ``WORKER_PRODUCER_OWNED``), naming the flag to use instead; a bare key counts for both
    clients."""
    for key, value in items:
        head, _, rest = key.partition(".")
        scoped = head in ("producer", "consumer", "admin") and rest
        prefix, bare = (f"{head}.", rest) if scoped else ("", key)
        if (
            transactional
            and prefix != "consumer."
            and bare == "enable.idempotence"
            and str(value).strip().lower() != "true"
        ):
            raise ConfigurationError(
                f"--transactional needs the idempotent producer: drop "
                f"--kafka-config {prefix}enable.idempotence={value}"
            )
        rules = {"consumer.": CONSUMER_OWNED, "producer.": WORKER_PRODUCER_OWNED, "admin.": ()}.get(
            prefix, CONSUMER_OWNED + WORKER_PRODUCER_OWNED
        )
        refuse_owned({bare: value}, rules, where="--kafka-config", prefix=prefix)


def _bool(text: str, name: str) -> bool:
    t = text.strip().lower()
    if t in _TRUE:
        return True
    if t in _FALSE:
        return False
    raise ConfigurationError(f"{name} must be true or false, got {text!r}")


def _num(text: str, name: str, kind: type) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise ConfigurationError(f"{name} must be a {kind.__name__}, got {text!r}") from None


#: argparse dest -> (environment variable, type)
ENV_VARS: dict[str, tuple[str, type]] = {
    "bootstrap_servers": ("KAFKA_BOOTSTRAP_SERVERS", str),
    "topics": ("KAFKA_RELIABLE_TOPICS", str),
    "pattern": ("KAFKA_RELIABLE_PATTERN", str),
    "group": ("KAFKA_RELIABLE_GROUP", str),
    "max_pending": ("KAFKA_RELIABLE_MAX_PENDING", int),
    "metrics_port": ("KAFKA_RELIABLE_METRICS_PORT", int),
    "transactional": ("KAFKA_RELIABLE_TRANSACTIONAL", bool),
    "max_retries": ("KAFKA_RELIABLE_MAX_RETRIES", int),
    "initial_delay_ms": ("KAFKA_RELIABLE_INITIAL_DELAY_MS", int),
    "max_delay_ms": ("KAFKA_RELIABLE_MAX_DELAY_MS", int),
    "backoff_multiplier": ("KAFKA_RELIABLE_BACKOFF_MULTIPLIER", float),
    "jitter": ("KAFKA_RELIABLE_JITTER", bool),
    "instance_id": ("KAFKA_RELIABLE_INSTANCE_ID", str),
    "commit_interval_ms": ("KAFKA_RELIABLE_COMMIT_INTERVAL_MS", int),
    "shutdown_timeout_s": ("KAFKA_RELIABLE_SHUTDOWN_TIMEOUT_S", float),
    "startup_timeout_s": ("KAFKA_RELIABLE_STARTUP_TIMEOUT_S", float),
    "create_topics": ("KAFKA_RELIABLE_CREATE_TOPICS", bool),
}


def _resolve(values: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """CLI values (None = not given) completed from the environment."""
    out: dict[str, Any] = {}
    for dest, (var, kind) in ENV_VARS.items():
        value = values.get(dest)
        if value is None and env.get(var, "").strip():
            text = env[var].strip()
            value = _bool(text, var) if kind is bool else _num(text, var, kind)
        if value is not None:
            out[dest] = value
    return out


def from_values(values: Mapping[str, Any], env: Mapping[str, str] | None = None) -> WorkerConfig:
    """A WorkerConfig from parsed CLI values (argparse dests) and environment variables."""
    env = os.environ if env is None else env
    v = _resolve(values, env)
    defaults = RetryConfig()
    retry = RetryConfig(
        max_retries=v.get("max_retries", defaults.max_retries),
        initial_delay_ms=v.get("initial_delay_ms", defaults.initial_delay_ms),
        max_delay_ms=v.get("max_delay_ms", defaults.max_delay_ms),
        backoff_multiplier=v.get("backoff_multiplier", defaults.backoff_multiplier),
        jitter=v.get("jitter", defaults.jitter),
    )
    topics = tuple(t.strip() for t in v.get("topics", "").split(",") if t.strip())
    kafka = kafka_config_from_env(env) + parse_kafka_config(values.get("kafka_config") or ())
    check_kafka_config(kafka)
    extra: dict[str, Any] = {}
    for name in (
        "commit_interval_ms",
        "shutdown_timeout_s",
        "instance_id",
        "metrics_port",
        "startup_timeout_s",
        "create_topics",
    ):
        if name in v:
            extra[name] = v[name]
    return WorkerConfig(
        bootstrap_servers=v.get("bootstrap_servers", "localhost:9092"),
        topics=topics,
        pattern=v.get("pattern") or None,
        group_id=v.get("group", DEFAULT_GROUP),
        max_pending=v.get("max_pending", DEFAULT_MAX_PENDING),
        transactional=v.get("transactional", False),
        retry_config=retry,
        kafka_config=kafka,
        **extra,
    )
