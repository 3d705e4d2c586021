"""Configuration: RetryConfig, health thresholds, topic naming, producer_config translation."""

from __future__ import annotations

import difflib
import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kafka_reliable.errors import (
    KNOWN_ERROR_NAMES,
    Classification,
    ConfigurationError,
    ErrorKind,
)

#: Default DLQ retention: 14 days.
DEFAULT_DLQ_RETENTION_MS = 14 * 24 * 3600 * 1000


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


# ---- producer_config translation ------------------------------------------------------

#: kafka-python style key -> librdkafka key.
KAFKA_PYTHON_KEYS: dict[str, str] = {
    "bootstrap_servers": "bootstrap.servers",
    "client_id": "client.id",
    "acks": "acks",
    "retries": "retries",
    "enable_idempotence": "enable.idempotence",
    "max_in_flight_requests_per_connection": "max.in.flight.requests.per.connection",
    "compression_type": "compression.type",
    "batch_size": "batch.size",
    "linger_ms": "linger.ms",
    "buffer_memory": "queue.buffering.max.kbytes",
    "request_timeout_ms": "request.timeout.ms",
    "delivery_timeout_ms": "delivery.timeout.ms",
    "retry_backoff_ms": "retry.backoff.ms",
    "max_request_size": "message.max.bytes",
    "metadata_max_age_ms": "metadata.max.age.ms",
    "connections_max_idle_ms": "connections.max.idle.ms",
    "reconnect_backoff_ms": "reconnect.backoff.ms",
    "reconnect_backoff_max_ms": "reconnect.backoff.max.ms",
    "send_buffer_bytes": "socket.send.buffer.bytes",
    "receive_buffer_bytes": "socket.receive.buffer.bytes",
    "security_protocol": "security.protocol",
    "sasl_mechanism": "sasl.mechanism",
    "sasl_plain_username": "sasl.username",
    "sasl_plain_password": "sasl.password",
    "ssl_cafile": "ssl.ca.location",
    "ssl_certfile": "ssl.certificate.location",
    "ssl_keyfile": "ssl.key.location",
    "ssl_password": "ssl.key.password",
    "transactional_id": "transactional.id",
    "partitioner": "partitioner",
}

#: kafka-python keys that have no librdkafka meaning here, with what to do instead.
UNSUPPORTED_KEYS: dict[str, str] = {
    "key_serializer": "pass serializer=/key_serializer= to ReliableKafkaProducer",
    "value_serializer": "pass serializer= to ReliableKafkaProducer",
    "api_version": "librdkafka negotiates the API version itself",
}

#: confluent-kafka keys that are Python objects, not librdkafka settings: passed through.
PYTHON_CLIENT_KEYS = frozenset({"logger"})

#: Well-known librdkafka keys: the candidates a misspelt key is compared with (librdkafka
#: itself decides what is valid; this list only feeds "did you mean").
COMMON_LIBRDKAFKA_KEYS: tuple[str, ...] = (
    "bootstrap.servers",
    "client.id",
    "client.rack",
    "debug",
    "acks",
    "retries",
    "partitioner",
    "security.protocol",
    "sasl.mechanism",
    "sasl.mechanisms",
    "sasl.username",
    "sasl.password",
    "sasl.oauthbearer.method",
    "sasl.oauthbearer.client.id",
    "sasl.oauthbearer.client.secret",
    "sasl.oauthbearer.token.endpoint.url",
    "sasl.oauthbearer.scope",
    "sasl.oauthbearer.config",
    "sasl.kerberos.service.name",
    "sasl.kerberos.principal",
    "sasl.kerberos.keytab",
    "ssl.ca.location",
    "ssl.ca.pem",
    "ssl.certificate.location",
    "ssl.certificate.pem",
    "ssl.key.location",
    "ssl.key.pem",
    "ssl.key.password",
    "ssl.endpoint.identification.algorithm",
    "ssl.keystore.location",
    "ssl.keystore.password",
    "enable.ssl.certificate.verification",
    "socket.timeout.ms",
    "socket.keepalive.enable",
    "socket.connection.setup.timeout.ms",
    "socket.send.buffer.bytes",
    "socket.receive.buffer.bytes",
    "broker.address.family",
    "connections.max.idle.ms",
    "reconnect.backoff.ms",
    "reconnect.backoff.max.ms",
    "metadata.max.age.ms",
    "topic.metadata.refresh.interval.ms",
    "statistics.interval.ms",
    "message.max.bytes",
    "request.timeout.ms",
    "message.timeout.ms",
    "delivery.timeout.ms",
    "linger.ms",
    "batch.size",
    "batch.num.messages",
    "compression.type",
    "compression.codec",
    "enable.idempotence",
    "max.in.flight.requests.per.connection",
    "transactional.id",
    "transaction.timeout.ms",
    "queue.buffering.max.messages",
    "queue.buffering.max.kbytes",
    "retry.backoff.ms",
    "retry.backoff.max.ms",
    "group.id",
    "group.instance.id",
    "auto.offset.reset",
    "enable.auto.commit",
    "auto.commit.interval.ms",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "max.poll.interval.ms",
    "isolation.level",
    "fetch.min.bytes",
    "fetch.max.bytes",
    "fetch.wait.max.ms",
    "max.partition.fetch.bytes",
    "partition.assignment.strategy",
    "group.protocol",
    "allow.auto.create.topics",
    "log_level",
)

#: A key librdkafka is sure not to know: set last in a probe config (see ``check_client_keys``).
_PROBE_KEY = "kafka_reliable.probe"

#: Producer defaults for reliability (caller's keys win, except the ones noted in docs).
RELIABLE_DEFAULTS: dict[str, Any] = {
    "acks": "all",
    "enable.idempotence": True,
    "linger.ms": 5,
    "compression.type": "lz4",
    "delivery.timeout.ms": 120_000,
}

_SECRET_KEY = re.compile(
    r"password|secret|sasl\.jaas|oauthbearer\.config|ssl\.key\.pem|token", re.I
)


def _translate_value(key: str, value: Any) -> Any:
    if key == "bootstrap_servers" and not isinstance(value, str):
        return ",".join(str(v) for v in value)
    if key == "buffer_memory":
        return max(1, int(value) // 1024)
    if key == "acks" and value == -1:
        return "all"
    return value


def translate_producer_config(cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    """kafka-python style keys -> librdkafka keys; dotted keys pass through.

    An unknown underscore key is a ConfigurationError naming it. ``retries: 0`` together with
    idempotence is dropped: librdkafka's internal retries keep order and idempotence, and
    ``RetryConfig`` governs what happens after librdkafka gives up.
    """
    out: dict[str, Any] = {}
    for key, value in (cfg or {}).items():
        if not isinstance(key, str):
            raise ConfigurationError(f"producer_config keys must be strings, got {key!r}")
        if key in UNSUPPORTED_KEYS:
            raise ConfigurationError(
                f"producer_config key {key!r} is not supported: {UNSUPPORTED_KEYS[key]}"
            )
        if key in PYTHON_CLIENT_KEYS:
            out[key] = value
        elif "." in key:
            check_client_keys({key: value}, where="producer_config", check_values=False)
            out[key] = value
        elif key in KAFKA_PYTHON_KEYS:
            out[KAFKA_PYTHON_KEYS[key]] = _translate_value(key, value)
        else:
            hint = difflib.get_close_matches(key, list(KAFKA_PYTHON_KEYS), n=1)
            extra = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise ConfigurationError(f"unknown producer_config key {key!r}{extra}")
    idempotent = str(
        out.get("enable.idempotence", RELIABLE_DEFAULTS["enable.idempotence"])
    ).lower() in {"true", "1"}
    if idempotent and str(out.get("retries", "1")) == "0":
        del out["retries"]
    return out


def build_producer_config(
    bootstrap_servers: str | Iterable[str] | None, producer_config: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The librdkafka config a ReliableKafkaProducer uses: defaults, then the caller's keys."""
    conf = dict(RELIABLE_DEFAULTS)
    conf.update(translate_producer_config(producer_config))
    if bootstrap_servers is not None:
        conf["bootstrap.servers"] = (
            bootstrap_servers if isinstance(bootstrap_servers, str) else ",".join(bootstrap_servers)
        )
    conf.setdefault("bootstrap.servers", "localhost:9092")
    conf["bootstrap.servers"] = check_bootstrap_servers(conf["bootstrap.servers"])
    return conf


def check_bootstrap_servers(value: Any, name: str = "bootstrap_servers") -> str:
    """``host:port[,host:port…]`` as one string; ConfigurationError naming ``name`` when empty."""
    text = value if isinstance(value, str) else ",".join(str(v) for v in (value or ()))
    hosts = [h.strip() for h in text.split(",")]
    if not text.strip() or not all(hosts):
        raise ConfigurationError(
            f"{name} is empty (or has an empty entry): {value!r}; give host:port[,host:port...]"
        )
    return ",".join(hosts)


def check_client_keys(
    conf: Mapping[str, Any], *, where: str = "client config", check_values: bool = True
) -> None:
    """Ask librdkafka whether it knows every key (and, by default, accepts every value).

    librdkafka applies a config dict in order and stops at the first problem, so a dict
    ending with a key no librdkafka knows fails on that key exactly when every earlier one
    was accepted; no client is created either way. Python-only keys are skipped.
    """
    from confluent_kafka import KafkaException, Producer

    for key, value in conf.items():
        if key in PYTHON_CLIENT_KEYS or callable(value):
            continue
        try:
            Producer({key: value, _PROBE_KEY: "x"})
        except KafkaException as exc:
            text = exc.args[0].str() if exc.args and hasattr(exc.args[0], "str") else str(exc)
            if _PROBE_KEY in text:
                continue
            if "No such configuration property" in text:
                hint = difflib.get_close_matches(
                    key, [*COMMON_LIBRDKAFKA_KEYS, *KAFKA_PYTHON_KEYS], n=1, cutoff=0.75
                )
                extra = f" (did you mean {hint[0]}?)" if hint else ""
                raise ConfigurationError(f"unknown {where} key {key!r}{extra}") from None
            if check_values:
                detail = (
                    "invalid value (not shown: secret)" if _SECRET_KEY.search(key) else text.strip()
                )
                raise ConfigurationError(f"{where} {key}: {detail}") from None
        except (TypeError, ValueError) as exc:
            if check_values:
                raise ConfigurationError(f"{where} {key}: {exc}") from None


def client_config(conf: Mapping[str, Any]) -> dict[str, Any]:
    """Connection and security keys of a producer config, for admin clients and consumers."""
    keep = (
        "bootstrap.servers",
        "security.",
        "sasl.",
        "ssl.",
        "client.id",
        "socket.",
        "broker.",
        "client.dns",
        "error_cb",
        *PYTHON_CLIENT_KEYS,
    )
    return {k: v for k, v in conf.items() if k.startswith(keep)}


def redact(conf: Mapping[str, Any]) -> dict[str, Any]:
    """A copy safe to log or print: secret values replaced by ``***``."""
    return {k: ("***" if _SECRET_KEY.search(k) else v) for k, v in conf.items()}


#: A secret-looking key followed by its value, whatever the separator (``=``, ``:``, blanks).
_SECRET_IN_TEXT = re.compile(
    r"([\w.-]*(?:password|secret|jaas\.config|oauthbearer\.config|key\.pem|token|credentials?)"
    r"[\w.-]*)"
    r"(\s*[=:]\s*|\s+)(?!\*\*\*)(\S+)",
    re.I,
)


def redact_text(text: str) -> str:
    """``text`` with the value after every secret-looking key replaced by ``***``, whatever the
    separator (``sasl.password=x``, ``sasl.password:x``, ``sasl.password x``): for messages that
    repeat what the user typed (argparse's usage errors)."""
    return _SECRET_IN_TEXT.sub(r"\1\2***", text)


def parse_kafka_item(item: str, *, where: str = "--kafka-config") -> tuple[str, str]:
    """``"key=value"`` -> ``(key, value)``; ConfigurationError otherwise, naming only the key as
    typed (up to the first separator): the value is never shown, it may be a password."""
    key, sep, value = item.partition("=")
    key = key.strip()
    if not sep or not key or re.search(r"[\s:]", key):
        head = re.split(r"[\s=:]", item.strip(), maxsplit=1)[0]
        shown = f"{head!r} and a value (not shown)" if head != item.strip() else repr(head)
        raise ConfigurationError(f"{where} wants KEY=VALUE (with '='), got {shown}")
    return key, value


def redact_url(url: str) -> str:
    """``redis://user:pw@host`` -> ``redis://user:***@host``."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


#: Prefix of environment variables that carry librdkafka keys for every client of a CLI verb
#: or the worker: ``KAFKA_RELIABLE_KAFKA_SASL_PASSWORD`` -> ``sasl.password``.
KAFKA_ENV_PREFIX = "KAFKA_RELIABLE_KAFKA_"


def kafka_config_from_env(env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """``(key, value)`` pairs from ``KAFKA_RELIABLE_KAFKA_<KEY>`` variables (``_`` becomes
    ``.``)."""
    return tuple(
        (k[len(KAFKA_ENV_PREFIX) :].lower().replace("_", "."), v)
        for k, v in sorted(env.items())
        if k.startswith(KAFKA_ENV_PREFIX) and len(k) > len(KAFKA_ENV_PREFIX)
    )
