"""Dedup claims on ``redis.asyncio``: the sync backend's keys, TTL and policy, without a blocking
round trip in the event loop.

The claims are packed by the producer's :class:`~kafka_reliable.dedup.RedisDeduplicator`
itself (same ``key_prefix``, ``SET key token NX EX ttl``) and written on an asyncio connection;
its state (available / probing), counters and ``fail_open`` / ``fail_closed`` verdicts are the
sync backend's too, so ``get_stats()["deduplication_stats"]`` counts both paths. Releases of
claims (a record dead-lettered, a send refused) stay on the sync backend: they happen on the
producer's threads, never on the loop.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from kafka_reliable.config import redact_url
from kafka_reliable.dedup import RedisDeduplicator
from kafka_reliable.dedup.redis_backend import _UNDO_SCRIPT, _pack
from kafka_reliable.errors import ConfigurationError

log = logging.getLogger(__name__)

#: Seconds one claim round trip may take before Redis counts as unavailable.
SOCKET_TIMEOUT_S = 1.0


def async_client_from_url(url: str, socket_timeout_s: float = SOCKET_TIMEOUT_S) -> Any:
    """A ``redis.asyncio.Redis`` for ``url`` with no retries (a half-applied batch must not be
    re-sent: it would read its own fresh claims back as duplicates)."""
    import redis.asyncio as aredis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    try:
        return aredis.Redis.from_url(url, socket_timeout=socket_timeout_s,
                                     socket_connect_timeout=socket_timeout_s, retry=Retry(NoBackoff(), 0))
    except ValueError as exc:
        raise ConfigurationError(f"invalid Redis URL {redact_url(url)}: {redact_url(str(exc))}") from None


class AsyncClaims:
    """``await claim(keys)`` → one verdict per key (``True`` = first seen: send it)."""

    def __init__(self, backend: RedisDeduplicator, client: Any, *, owns_client: bool = True) -> None:
        self.backend = backend
        self._client = client
        self._owns_client = owns_client

    async def claim(self, keys: Sequence[bytes]) -> list[bool]:
        """Claim every key in one round trip. Redis unavailable: ``fail_open`` → all fresh
        (counted ``unavailable``); ``fail_closed`` → DeduplicationUnavailableError, with the
        claims this batch may have made undone."""
        b = self.backend
        n = len(keys)
        if n == 0:
            return []
        if not b.available:  # the sync backend's probe says when Redis answers again
            b._ensure_probe()
            return b._unverified(n, [], "no answer since the last failure")
        token = b"%s:%d:%d:a" % (b._token_head, os.getpid(), next(b._tokens))
        answers, error, maybe_applied = await self._roundtrip(b._pack_claims(keys, token), n)
        if error is None:
            out = [a is not None for a in answers]
            b._record(checks=n, duplicates=n - sum(out))
            return out
        b._went_down(error)
        if b.on_unavailable == "fail_closed" and maybe_applied:
            await self._undo(keys, token)
        return b._unverified(n, answers, f"{type(error).__name__}: {error}")

    async def release(self, keys: Sequence[bytes]) -> None:
        """Forget claims of records that were not sent after all (one ``DEL``; never raises:
        an unreleased claim blocks the same content until its TTL ends)."""
        b = self.backend
        if not keys:
            return
        _, error, _ = await self._roundtrip(_pack(b"DEL", *(b._prefix + k for k in keys)), 1)
        if error is not None:
            log.warning("could not release %d dedup claims on %s (%s); the same content counts as a "
                        "duplicate until they expire (ttl %ss)", len(keys), b.where, type(error).__name__, b.ttl_s)

    async def _undo(self, keys: Sequence[bytes], token: bytes) -> None:
        b = self.backend
        prefixed = [b._prefix + k for k in keys]
        cmd = _pack(b"EVAL", _UNDO_SCRIPT, b"%d" % len(prefixed), *prefixed, token)
        _, error, _ = await self._roundtrip(cmd, 1)
        if error is not None:
            log.warning("could not undo dedup claims of a refused batch on %s (%s); up to %d records count "
                        "as duplicates until the claims expire (ttl %ss)", b.where, type(error).__name__,
                        len(keys), b.ttl_s)

    async def _roundtrip(self, packed: bytes, n_replies: int) -> tuple[list[Any], BaseException | None, bool]:
        """Write ``packed`` once, read ``n_replies``: (replies read, error, maybe applied)."""
        import redis

        pool = self._client.connection_pool
        try:
            conn = await pool.get_connection()
        except (redis.RedisError, OSError) as exc:
            return [], exc, False
        answers: list[Any] = []
        try:
            await conn.send_packed_command([packed])
            for _ in range(n_replies):
                answers.append(await conn.read_response())
            return answers, None, True
        except (redis.RedisError, OSError) as exc:
            await conn.disconnect()
            return answers, exc, True
        except BaseException:  # cancelled mid-reply: the connection's state is unknown
            await conn.disconnect()
            raise
        finally:
            await pool.release(conn)

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()
