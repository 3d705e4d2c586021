"""ReliableConsumer arguments (issue 20 items 1, 3, 6, 11): every bad input is refused at
construction (or at ``run()`` for the handler) in one line naming what was wrong. No broker:
nothing here connects."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import pytest

from kafka_reliable import RetryConfig
from kafka_reliable.consumer import ReliableConsumer
from kafka_reliable.errors import ConfigurationError

BASE: dict[str, Any] = {"group_id": "g", "topics": ["orders"], "bootstrap_servers": "127.0.0.1:1"}

# (argument overrides, a fragment the one-line error must contain)
BAD_ARGUMENTS: list[tuple[dict[str, Any], str]] = [
    ({"topics": None}, "topics must be a topic name or a list"),
    ({"topics": []}, "topics must name at least one topic"),
    ({"topics": ["bad topic!"]}, "invalid topic name 'bad topic!'"),
    ({"topics": ["ok", ".."]}, "invalid topic name '..'"),
    ({"topics": [b"orders"]}, "invalid topic name b'orders'"),
    ({"bootstrap_servers": ""}, "bootstrap_servers must name at least one host:port"),
    ({"bootstrap_servers": "a:1,"}, "bootstrap_servers must name at least one host:port"),
    ({"bootstrap_servers": 9092}, "bootstrap_servers must be"),
    ({"retry_config": {"max_retries": 1}}, "retry_config must be a RetryConfig"),
    (
        {"non_retriable_exceptions": "ValueError"},
        "non_retriable_exceptions must be exception classes",
    ),
    ({"non_retriable_exceptions": [ValueError, "KeyError"]}, "got 'KeyError'"),
    ({"shutdown_timeout_s": -1}, "shutdown_timeout_s must be a number of seconds >= 0"),
    ({"shutdown_timeout_s": float("nan")}, "shutdown_timeout_s"),
    ({"shutdown_timeout_s": float("inf")}, "shutdown_timeout_s"),
    ({"shutdown_timeout_s": "3"}, "shutdown_timeout_s"),
    ({"local_retries": -1}, "local_retries must be an int >= 0"),
    ({"local_retries": 1.5}, "local_retries must be an int >= 0"),
    ({"local_retry_delay_ms": -5}, "local_retry_delay_ms must be an int >= 0"),
    ({"max_pending": 0}, "max_pending must be an int >= 1"),
    ({"ordering": "fifo"}, "ordering must be one of"),
    ({"group_id": ""}, "group_id must be a non-empty string"),
    ({"consumer_config": {"max_poll_records": "many"}}, "max_poll_records must be a whole number"),
    ({"consumer_config": {"key_deserializer": str}}, "keys reach the handler as bytes"),
    ({"deserializer": 42}, "deserializer must be callable"),
]


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    BAD_ARGUMENTS,
    ids=[next(iter(o)) + "=" + repr(next(iter(o.values())))[:20] for o, _ in BAD_ARGUMENTS],
)
def test_bad_argument_is_one_line_naming_it(overrides: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        ReliableConsumer(**{**BASE, **overrides})
    text = str(info.value)
    assert fragment in text and "\n" not in text


# Keys the consumer owns (issue 20 item 3): (consumer_config, the key the error names)
OWNED: list[tuple[dict[str, Any], str]] = [
    ({"group.id": "other"}, "group.id='other' is not allowed"),
    ({"enable.auto.commit": True}, "enable.auto.commit=True is not allowed"),
    ({"enable_auto_commit": "true"}, "enable.auto.commit='true' is not allowed"),
    ({"enable.auto.offset.store": "true"}, "enable.auto.offset.store='true' is not allowed"),
    ({"enable.partition.eof": True}, "enable.partition.eof=True is not allowed"),
    ({"producer.acks": 0}, "producer.acks=0 is not allowed"),
    ({"producer.enable.idempotence": False}, "producer.enable.idempotence=False is not allowed"),
    ({"producer.transactional.id": "x"}, "producer.transactional.id='x' is not allowed"),
]


@pytest.mark.parametrize(("config", "fragment"), OWNED, ids=[next(iter(c)) for c, _ in OWNED])
def test_consumer_config_cannot_override_what_the_consumer_owns(
    config: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(ConfigurationError, match="consumer_config: ") as info:
        ReliableConsumer(**BASE, consumer_config=config)
    assert fragment in str(info.value)


def test_consumer_config_values_that_agree_with_ours_are_accepted() -> None:
    consumer = ReliableConsumer(
        **BASE,
        retry_config=RetryConfig(max_retries=1),
        consumer_config={
            "enable.auto.commit": False,
            "producer.acks": "all",
            "producer.enable.idempotence": True,
            "enable.partition.eof": "false",
        },
    )
    assert consumer.settings.producer == {"acks": "all", "enable.idempotence": True}
    assert "enable.auto.commit" not in consumer.settings.consumer


def test_a_single_exception_class_and_a_single_topic_name_are_accepted() -> None:
    consumer = ReliableConsumer(
        **{**BASE, "topics": "orders"}, non_retriable_exceptions=KeyError, shutdown_timeout_s=0
    )
    assert consumer.settings.topics == ("orders",)
    assert consumer.settings.non_retriable_exceptions == (KeyError,)


async def _async_handler(rec: Any) -> None:
    return None


class _AsyncCallable:
    async def __call__(self, rec: Any) -> None:
        return None


@pytest.mark.parametrize(
    "handler",
    [_async_handler, functools.partial(_async_handler), _AsyncCallable()],
    ids=["def", "partial", "__call__"],
)
def test_run_refuses_an_async_handler_pointing_to_run_async(handler: Any) -> None:
    # Given a consumer (its cluster is unreachable: nothing may be read before the refusal)
    consumer = ReliableConsumer(**BASE)
    # When / Then: refused at run(), before anything started, naming run_async
    with pytest.raises(ConfigurationError, match="run_async") as info:
        consumer.run(handler)
    assert "\n" not in str(info.value) and not consumer.running
    assert consumer.stats.counts["handled"] == 0


def test_run_async_refuses_a_bad_concurrency() -> None:
    from kafka_reliable.aio import run_async

    consumer = ReliableConsumer(**BASE)
    with pytest.raises(ConfigurationError, match="concurrency must be an int >= 1"):
        asyncio.run(run_async(consumer, _async_handler, concurrency=0))


def test_retry_with_a_negative_delay_is_a_configuration_error() -> None:
    from kafka_reliable.consumer import Retry

    with pytest.raises(ConfigurationError, match="Retry delay_ms must be >= 0, got -1"):
        Retry("later", delay_ms=-1)


def test_async_producer_misuse_is_under_the_error_root() -> None:
    from kafka_reliable.aio import AsyncReliableProducer, AsyncUsageError
    from kafka_reliable.errors import KafkaReliableError

    producer = AsyncReliableProducer(bootstrap_servers="127.0.0.1:1", durability="memory")
    with pytest.raises(AsyncUsageError, match="not started") as info:
        producer.sync  # noqa: B018 - the property is what is checked
    assert isinstance(info.value, KafkaReliableError) and isinstance(info.value, RuntimeError)
