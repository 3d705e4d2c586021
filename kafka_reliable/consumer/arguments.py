"""The ReliableConsumer's arguments, checked at construction: one line naming what is wrong."""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterable, Mapping
from typing import Any

from kafka_reliable.config import RetryConfig, check_topic_name
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
            f"non_retriable_exceptions must be exception classes (e.g. (ValueError,)), got {value!r}")
    out = tuple(value)
    for exc in out:
        if not (isinstance(exc, type) and issubclass(exc, BaseException)):
            raise ConfigurationError(
                f"non_retriable_exceptions must be exception classes, got {exc!r}")
    return out


def retry_config(value: Any) -> RetryConfig:
    if value is None:
        return RetryConfig()
    if not isinstance(value, RetryConfig):
        raise ConfigurationError(
            f"retry_config must be a RetryConfig (e.g. RetryConfig(max_retries=1)), "
            f"got {type(value).__name__}")
    return value


def bootstrap(value: str | Iterable[str] | None, consumer_keys: Mapping[str, Any]) -> str:
    """The bootstrap servers: the argument, ``consumer_config``, the environment, or localhost."""
    if value is None:
        value = (consumer_keys.get("bootstrap.servers")
                 or os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or "localhost:9092")
    if not isinstance(value, str):
        if not isinstance(value, Iterable) or not all(isinstance(v, str) for v in value):
            raise ConfigurationError(
                f"bootstrap_servers must be 'host:port[,host:port]' or a list of them, got {value!r}")
        value = ",".join(value)
    if not value.strip() or any(not part.strip() for part in value.split(",")):
        raise ConfigurationError(
            f"bootstrap_servers must name at least one host:port, got {value!r}")
    return value


def check_handler(handler: Any) -> None:
    """``run()`` takes a plain callable; an ``async def`` one would never run (refused)."""
    if not callable(handler):
        raise ConfigurationError(f"handler must be callable, got {type(handler).__name__}")
    if is_async(handler):
        raise ConfigurationError(
            "handler is an async function: run() would never await it; use "
            "`await kafka_reliable.aio.run_async(consumer, handler)` (or AsyncReliableConsumer)")


def is_async(handler: Any) -> bool:
    if inspect.iscoroutinefunction(handler):
        return True
    return not inspect.isroutine(handler) and inspect.iscoroutinefunction(type(handler).__call__)
