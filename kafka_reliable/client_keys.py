"""Client configuration: producer_config translation, known keys, checks and redaction.

``kafka_reliable.config`` re-exports every name here.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from kafka_reliable.errors import ConfigurationError

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
