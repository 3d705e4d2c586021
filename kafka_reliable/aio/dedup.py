"""Dedup claims on ``redis.asyncio``: the sync backend's claim logic, driven without a blocking
round trip in the event loop.

:class:`AsyncClaims` runs the generators of :class:`~kafka_reliable.dedup.claims.ClaimCore`
(the producer's :class:`~kafka_reliable.dedup.RedisDeduplicator`: same ``key_prefix``, TTL,
verdicts, undo, counters and available/unavailable state) over ``redis.asyncio`` (one Redis
or a cluster), so ``get_stats()["deduplication_stats"]`` counts both paths and the sync
backend's probe says when Redis answers again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from kafka_reliable.config import redact_url
from kafka_reliable.dedup import RedisDeduplicator
from kafka_reliable.dedup.commands import Flow
from kafka_reliable.dedup.redis_aio import async_io_for
from kafka_reliable.dedup.redis_io import is_cluster_url, split_cluster_url
from kafka_reliable.errors import ConfigurationError

T = TypeVar("T")

#: Seconds one claim round trip may take before Redis counts as unavailable.
SOCKET_TIMEOUT_S = 1.0


def async_client_from_url(url: str, socket_timeout_s: float = SOCKET_TIMEOUT_S) -> Any:
    """A ``redis.asyncio`` client for ``url`` (a ``RedisCluster`` for ``redis+cluster://``),
    with no retries: a half-applied batch must not be re-sent (it would read its own fresh
    claims back as duplicates). A cluster client learns its slot map on first use."""
    import redis.asyncio as aredis
    from redis.asyncio.cluster import ClusterNode, RedisCluster
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    t = socket_timeout_s
    try:
        if is_cluster_url(url):
            plain, others = split_cluster_url(url)
            nodes = [ClusterNode(h, p) for h, p in others]
            return RedisCluster.from_url(
                plain, startup_nodes=nodes, socket_timeout=t, socket_connect_timeout=t
            )
        return aredis.Redis.from_url(
            url, retry=Retry(NoBackoff(), 0), socket_timeout=t, socket_connect_timeout=t
        )
    except ValueError as exc:
        raise ConfigurationError(
            f"invalid Redis URL {redact_url(url)}: {redact_url(str(exc))}"
        ) from None


class AsyncClaims:
    """``await claim(keys)`` → one verdict per key (``True`` = first seen: send it)."""

    def __init__(
        self, backend: RedisDeduplicator, client: Any, *, owns_client: bool = True
    ) -> None:
        self.backend = backend
        self._io = async_io_for(client)
        self._owns_client = owns_client

    async def claim(self, keys: Sequence[bytes]) -> list[bool]:
        """Claim every key in one round trip. Redis unavailable: ``fail_open`` → all fresh
        (counted ``unavailable``); ``fail_closed`` → DeduplicationUnavailableError, with the
        claims this call may have made undone."""
        if keys and self.backend.available:
            await self._io.prepare()
        return await self._drive(self.backend.claim_flow(keys, self._io.route))

    async def release(self, keys: Sequence[bytes]) -> None:
        """Forget claims of records that were not sent after all (never raises: an unreleased
        claim blocks the same content until its TTL ends)."""
        await self._drive(self.backend.release_flow(keys, self._io.route))

    async def _drive(self, flow: Flow[T]) -> T:
        try:
            commands = next(flow)
            while True:
                commands = flow.send(await self._io.exchange(commands))
        except StopIteration as stop:
            return stop.value

    async def aclose(self) -> None:
        if self._owns_client:
            await self._io.aclose()
