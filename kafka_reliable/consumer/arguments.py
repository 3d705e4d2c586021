"""The ReliableConsumer's arguments, checked at construction: one line naming what is wrong."""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterable, Mapping
from typing import Any

from kafka_reliable.config import RetryConfig, check_topic_name
from kafka_reliable.consumer.record import Deserializer, as_deserializer
from kafka_reliable.consumer.settings import ConsumerSettings, translate_consumer_config
from kafka_reliable.errors import ConfigurationError


def topic_names(topics: Any) -> tuple[str, ...]:
    """``topics`` (one name or an iterable of names) as a tuple of legal topic names."""
    if isinstance(topics, str):
        topics = [topics]
    if topics is None or isinstance(topics, bytes | Mapping) or not isinstance(topics, Iterable):
        raise ConfigurationError(f"topics must be a topic name or a list of them, got {topics!r}")
    names = tuple(topics)
    if not names:
        raise ConfigurationError("topics must name at least one topic, got none")
    for name in names:
        try:
            check_topic_name(name)
        except ValueError as exc:
            raise ConfigurationError(f"topics: {exc}") from None
    return names


def exception_classes(value: Any) -> tuple[type[BaseException], ...]:
    """``non_retriable_exceptions``: one exception class or an iterable of them."""
    if isinstance(value, type):
        value = (value,)
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ConfigurationError(
            "non_retriable_exceptions must be exception classes (e.g. (ValueError,)), "
            f"got {value!r}"
        )
    out = tuple(value)
    for exc in out:
        if not (isinstance(exc, type) and issubclass(exc, BaseException)):
            raise ConfigurationError(
                f"non_retriable_exceptions must be exception classes, got {exc!r}"
            )
    return out


def retry_config_of(value: Any) -> RetryConfig:
    if value is None:
        return RetryConfig()
    if not isinstance(value, RetryConfig):
        raise ConfigurationError(
            f"retry_config must be a RetryConfig (e.g. RetryConfig(max_retries=1)), "
            f"got {type(value).__name__}"
        )
    return value


def bootstrap(value: str | Iterable[str] | None, consumer_keys: Mapping[str, Any]) -> str:
    """The bootstrap servers: the argument, ``consumer_config``, the environment, or localhost."""
    if value is None:
        value = (
            consumer_keys.get("bootstrap.servers")
            or os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
            or "localhost:9092"
        )
    if not isinstance(value, str):
        if not isinstance(value, Iterable) or not all(isinstance(v, str) for v in value):
            raise ConfigurationError(
                "bootstrap_servers must be 'host:port[,host:port]' or a list of them, "
                f"got {value!r}"
            )
        value = ",".join(value)
    if not value.strip() or any(not part.strip() for part in value.split(",")):
        raise ConfigurationError(
            f"bootstrap_servers must name at least one host:port, got {value!r}"
        )
    return value


def check_handler(handler: Any) -> None:
    """``run()`` takes a plain callable; an ``async def`` one would never run (refused)."""
    if not callable(handler):
        raise ConfigurationError(f"handler must be callable, got {type(handler).__name__}")
    if is_async(handler):
        raise ConfigurationError(
            "handler is an async function: run() would never await it; use "
            "`await kafka_reliable.aio.run_async(consumer, handler)` (or AsyncReliableConsumer)"
        )


def is_async(handler: Any) -> bool:
    if inspect.iscoroutinefunction(handler):
        return True
    return not inspect.isroutine(handler) and inspect.iscoroutinefunction(type(handler).__call__)


def settings(
    *,
    group_id: str,
    topics: Any,
    bootstrap_servers: Any,
    retry_config: Any,
    non_retriable_exceptions: Any,
    local_retries: int,
    local_retry_delay_ms: int,
    ordering: str,
    consumer_config: Mapping[str, Any] | None,
    max_pending: int,
    shutdown_timeout_s: float,
    **_others: Any,
) -> tuple[ConsumerSettings, str]:
    """The checked settings and bootstrap servers of ``ReliableConsumer(...)``'s arguments."""
    consumer_keys, producer_keys, python_keys = translate_consumer_config(consumer_config)
    s = ConsumerSettings(
        group_id=group_id,
        topics=topic_names(topics),
        retry_config=retry_config_of(retry_config),
        non_retriable_exceptions=exception_classes(non_retriable_exceptions),
        local_retries=local_retries,
        local_retry_delay_ms=local_retry_delay_ms,
        ordering=ordering,
        max_pending=max_pending,
        max_poll_records=python_keys.get("max_poll_records", 500),
        shutdown_timeout_s=shutdown_timeout_s,
        consumer=consumer_keys,
        producer=producer_keys,
    )
    return s, bootstrap(bootstrap_servers, consumer_keys)


def deserializer(obj: Any) -> Deserializer:
    try:
        return as_deserializer(obj)
    except TypeError as exc:
        raise ConfigurationError(str(exc)) from None
