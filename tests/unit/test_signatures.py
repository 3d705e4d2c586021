"""The asyncio twins take exactly the keyword arguments of their sync twins (issue 21 §6):
names, order, kinds, defaults and annotations, so IDEs and type checkers see them and a new
argument of one cannot be forgotten in the other."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from kafka_reliable import ReliableKafkaProducer
from kafka_reliable.aio import AsyncReliableConsumer, AsyncReliableProducer
from kafka_reliable.consumer import ReliableConsumer


def _params(cls: type) -> list[tuple[str, Any, Any, Any]]:
    sig = inspect.signature(cls.__init__)
    return [
        (p.name, p.kind, p.default, p.annotation)
        for p in sig.parameters.values()
        if p.name != "self"
    ]


@pytest.mark.parametrize(
    ("sync", "aio"),
    [(ReliableKafkaProducer, AsyncReliableProducer), (ReliableConsumer, AsyncReliableConsumer)],
    ids=["producer", "consumer"],
)
def test_async_twin_signature_matches_the_sync_one(sync: type, aio: type) -> None:
    assert _params(aio) == _params(sync)
    assert all(kind is inspect.Parameter.KEYWORD_ONLY for _, kind, _, _ in _params(aio))
