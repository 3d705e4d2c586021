"""What the verbs share: connection options, argument types, a bounded first contact with Kafka."""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from kafka_reliable.config import (
    check_bootstrap_servers,
    check_client_keys,
    kafka_config_from_env,
    legal_topic_name,
    parse_kafka_item,
    redact_url,
)
from kafka_reliable.errors import ConfigurationError, KafkaReliableError
from kafka_reliable.logs import client_logger

#: Seconds a verb waits for the cluster's first answer unless told otherwise.
DEFAULT_CONNECT_TIMEOUT_S = 10.0
#: librdkafka errors that mean "no broker will answer": give up at once, no need to wait.
_GIVE_UP_ERRORS = frozenset({"_ALL_BROKERS_DOWN", "_AUTHENTICATION", "_SSL", "_INVALID_ARG"})
#: Redis URL schemes redis-py understands.
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


class ClusterUnreachableError(KafkaReliableError):
    """No broker answered within the time allowed (an operational failure: exit 1)."""


# ---- argument types (a bad value is an argparse error: exit 2, one line) -------------------
def _int(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
    return value


def positive_int(text: str) -> int:
    return _int(text, 1)


def non_negative_int(text: str) -> int:
    return _int(text, 0)


def _float(text: str, *, zero_ok: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value >= 0 if zero_ok else value > 0) or value == float("inf"):
        raise argparse.ArgumentTypeError(
            f"must be a number {'>=' if zero_ok else '>'} 0, got {text}"
        )
    return value


def non_negative_float(text: str) -> float:
    return _float(text, zero_ok=True)


def positive_float(text: str) -> float:
    return _float(text, zero_ok=False)


def fraction(text: str) -> float:
    value = positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def redis_url(text: str) -> str:
    if not text.startswith(_REDIS_SCHEMES):
        raise argparse.ArgumentTypeError(
            f"{redact_url(text)!r} is not a Redis URL: use redis://host:6379/0, rediss://... or unix://..."
        )
    return text


def bootstrap_servers(text: str) -> str:
    try:
        return check_bootstrap_servers(text, "--bootstrap-servers")
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def topic_name(text: str) -> str:
    """A TOPIC argument Kafka would accept: an illegal name is a usage error, not "not found"."""
    if not legal_topic_name(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a legal topic name (1-249 of [a-zA-Z0-9._-], not '.' or '..')"
        )
    return text


def suffix(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("a companion topic suffix cannot be empty")
    return text


# ---- connection options -------------------------------------------------------------------
def connection_parent() -> argparse.ArgumentParser:
    """``--bootstrap-servers`` (default $KAFKA_BOOTSTRAP_SERVERS) and repeatable
    ``--kafka-config``."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--bootstrap-servers",
        type=bootstrap_servers,
        default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092"),
        help="Kafka brokers (default: $KAFKA_BOOTSTRAP_SERVERS or localhost:9092)",
    )
    p.add_argument(
        "--kafka-config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra librdkafka client setting, repeatable (e.g. security.protocol=SASL_SSL); "
        "also from env KAFKA_RELIABLE_KAFKA_<KEY> (e.g. KAFKA_RELIABLE_KAFKA_SASL_PASSWORD); "
        "unknown keys are refused",
    )
    return p


def client_conf(args: argparse.Namespace) -> dict[str, Any]:
    """librdkafka client config from the shared options; ConfigurationError on a bad key or value.

    Includes ``logger`` (librdkafka's lines through Python logging, deduplicated).
    """
    conf: dict[str, Any] = {
        "bootstrap.servers": check_bootstrap_servers(args.bootstrap_servers, "--bootstrap-servers")
    }
    extra: dict[str, Any] = dict(kafka_config_from_env(os.environ))  # --kafka-config wins
    for item in args.kafka_config:
        key, value = parse_kafka_item(item)
        extra[key] = value
    check_client_keys(extra, where="--kafka-config")
    conf.update(extra)
    if "bootstrap.servers" in extra:
        conf["bootstrap.servers"] = check_bootstrap_servers(
            extra["bootstrap.servers"], "bootstrap.servers"
        )
    conf["logger"] = client_logger()
    return conf


def connect_admin(conf: dict[str, Any], timeout_s: float) -> Any:
    """An AdminClient that has had one answer from the cluster, within ``timeout_s``.

    Gives up early when librdkafka says every broker is down (connection refused, name not
    resolved, authentication failed): a CLI user gets the reason in one line at once instead
    of waiting for the timeout. Raises ClusterUnreachableError.
    """
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    errors: list[tuple[str, str]] = []
    on_error: Any = lambda err: errors.append((err.name(), err.str()))  # noqa: E731
    admin = AdminClient({**conf, "error_cb": on_error})
    deadline = time.monotonic() + timeout_s
    while True:
        remaining = deadline - time.monotonic()
        try:
            admin.list_topics(timeout=max(0.05, min(0.25, remaining)))
            return admin
        except KafkaException as exc:
            last = kafka_message(exc)
        admin.poll(0)
        mismatch = protocol_hint(str(conf.get("security.protocol", "plaintext")), errors)
        give_up = mismatch or any(name in _GIVE_UP_ERRORS for name, _ in errors)
        if give_up or time.monotonic() >= deadline:
            raise ClusterUnreachableError(_unreachable(conf, errors, last, timeout_s))


def kafka_message(exc: BaseException) -> str:
    """The text of a KafkaException's KafkaError (``str()`` of the exception is its repr)."""
    err: Any = exc.args[0] if exc.args else None
    return str(err.str()) if hasattr(err, "str") else str(exc)


def _unreachable(
    conf: dict[str, Any], errors: list[tuple[str, str]], last: str, timeout_s: float
) -> str:
    causes = [text for name, text in errors if name != "_ALL_BROKERS_DOWN"]
    cause = causes[0] if causes else (errors[0][1] if errors else last)
    if not errors:
        cause = f"no answer within {timeout_s:g} s ({cause})"
    hint = protocol_hint(str(conf.get("security.protocol", "plaintext")), errors)
    return f"cannot reach Kafka at {conf['bootstrap.servers']}: {hint}{cause}"


#: Words of librdkafka's errors when client and listener speak different security protocols.
_MISMATCH_SIGNS = (
    "SASL state",
    "supported mechanisms",
    "PLAINTEXT broker listener",
    "security.protocol",
    "SSL handshake failed",
    "Disconnected while requesting ApiVersion",
)


def protocol_hint(protocol: str, errors: list[tuple[str, str]]) -> str:
    """``"likely a protocol mismatch …; "`` when the errors look like the client and the
    listener disagree on the security protocol (SASL/SSL settings against a PLAINTEXT listener,
    or the reverse), else ``""``."""
    texts = [text for name, text in errors if name in ("_TRANSPORT", "_AUTHENTICATION", "_SSL")]
    if not any(sign in text for text in texts for sign in _MISMATCH_SIGNS):
        return ""
    if protocol.lower() == "plaintext":
        return (
            "likely a protocol mismatch: the client speaks PLAINTEXT and the listener seems to "
            "want SASL or SSL (set security.protocol with --kafka-config); "
        )
    return (
        f"likely a protocol mismatch: security.protocol={protocol} but the listener does not "
        "seem to speak it (a PLAINTEXT listener?); "
    )
