"""The asyncio contender: ``kafka_reliable.aio.AsyncReliableProducer`` when it exists (issue
16's API:
``async with``, ``await send_message(..., wait=False)`` returns once queued, without ``wait`` once
delivered or routed)."""

from __future__ import annotations

import asyncio
import inspect
import tempfile
from pathlib import Path
from typing import Any

from bench.suite.common import POOL, RDKAFKA_CONF, bootstrap

BATCH = 1000


async def _maybe_await(x: Any) -> Any:
    return await x if inspect.isawaitable(x) else x


class AsyncReliable:
    """``wait=False`` loop then flush, or 1,000 concurrent awaited sends at a time."""

    def __init__(self, *, concurrent: bool) -> None:
        from kafka_reliable.aio import AsyncReliableProducer

        self.concurrent = concurrent
        self._dir = tempfile.TemporaryDirectory(prefix="bench-spool-")
        self.loop = asyncio.new_event_loop()

        async def make() -> Any:
            p = AsyncReliableProducer(
                bootstrap_servers=bootstrap(),
                producer_config=dict(RDKAFKA_CONF),
                spool_path=Path(self._dir.name) / "spool",
                durability="memory",  # paired with the sync loop's memory row
            )
            if hasattr(p, "__aenter__"):
                return await p.__aenter__()
            if hasattr(p, "start"):
                await _maybe_await(p.start())
            return p

        self.p = self.loop.run_until_complete(make())

    def _sent(self) -> int:
        stats = self.loop.run_until_complete(_maybe_await(self.p.get_stats()))
        return int(stats["messages_sent"])

    def warm(self, topic: str) -> None:
        self.loop.run_until_complete(
            _maybe_await(self.p.send_message(topic, {"warm": True}, key="warm"))
        )
        self.loop.run_until_complete(_maybe_await(self.p.flush()))
        self.base = self._sent()

    def run(self, topic: str, n: int, pool: list[dict[str, Any]]) -> int:
        self.loop.run_until_complete(
            self._gather(topic, n, pool) if self.concurrent else self._nowait(topic, n, pool)
        )
        return self._sent() - self.base

    async def _nowait(self, topic: str, n: int, pool: list[dict[str, Any]]) -> None:
        send = self.p.send_message
        for i in range(n):
            d = pool[i % POOL]
            d["seq"] = i
            await _maybe_await(send(topic, d, key=str(i), wait=False))
        await _maybe_await(self.p.flush())

    async def _gather(self, topic: str, n: int, pool: list[dict[str, Any]]) -> None:
        send = self.p.send_message
        for start in range(0, n, BATCH):
            chunk = pool[: min(BATCH, n - start)]
            for j, d in enumerate(chunk):
                d["seq"] = start + j
            await asyncio.gather(*(send(topic, d, key=str(d["seq"])) for d in chunk))
        await _maybe_await(self.p.flush())

    def close(self) -> None:
        if hasattr(self.p, "__aexit__"):
            self.loop.run_until_complete(self.p.__aexit__(None, None, None))
        else:
            self.loop.run_until_complete(_maybe_await(self.p.close()))
        self.loop.close()
        self._dir.cleanup()
