"""Distributed dedup on Redis or a Redis Cluster: ``SET key token NX EX ttl``, a batch's keys in
one round trip (one pipeline per node on a cluster).

The claim logic (keys, TTLs, verdicts, undo, the outage policy) is
:class:`~kafka_reliable.dedup.claims.ClaimCore`; this module drives it with blocking I/O
(:mod:`kafka_reliable.dedup.redis_io`). When Redis does not answer: ``fail_open`` sends
(counted as ``unavailable``), ``fail_closed`` raises
:class:`~kafka_reliable.errors.DeduplicationUnavailableError` and keeps no claim of the refused
call. Either way the hot path stops calling Redis and a background probe asks every
``probe_interval_s`` until it answers (a cluster: every primary reports ``cluster_state:ok``),
so an outage costs one slow call, not one per send.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from kafka_reliable.config import redact_url
from kafka_reliable.dedup.base import DEFAULT_TTL_S, OnUnavailable
from kafka_reliable.dedup.claims import ClaimCore
from kafka_reliable.dedup.commands import drive, resume
from kafka_reliable.dedup.keys import KeyFn
from kafka_reliable.dedup.redis_io import (
    ClusterIO,
    Sent,
    SingleIO,
    client_from_url,
    describe_client,
    is_cluster_client,
    is_cluster_url,
)
from kafka_reliable.errors import ConfigurationError

#: Default namespace of producer dedup claims in Redis.
DEFAULT_KEY_PREFIX = "kafka_reliable:dedup:"


class RedisDeduplicator(ClaimCore):
    """Dedup shared by every producer that uses the same Redis (or cluster) and ``key_prefix``.

    Give ``client`` (a ``redis.Redis`` or ``redis.cluster.RedisCluster``) or ``url``
    (``redis://``, ``rediss://``, ``unix://``; a cluster:
    ``redis+cluster://host:port[,host:port…]`` or ``rediss+cluster://…``). A client you pass
    keeps its own timeouts and connect retries, which bound how long the first call of an
    outage blocks; a URL gets ``socket_timeout_s`` and no retries. On a cluster, keep ``{``
    and ``}`` out of ``key_prefix``: a hash tag there would put every claim in one slot, on
    one node (a hot slot).
    """

    def __init__(
        self,
        *,
        client: Any = None,
        url: str | None = None,
        ttl_s: float = DEFAULT_TTL_S,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        on_unavailable: OnUnavailable = "fail_open",
        key_fn: KeyFn | None = None,
        probe_interval_s: float = 1.0,
        socket_timeout_s: float = 1.0,
    ) -> None:
        if (client is None) == (url is None):
            raise ConfigurationError("RedisDeduplicator needs exactly one of client= or url=")
        if (
            client is not None
            and getattr(client, "connection_pool", None) is None
            and not is_cluster_client(client)
        ):
            raise ConfigurationError(
                "redis client must be a redis.Redis or redis.cluster.RedisCluster, "
                f"got {type(client).__name__}"
            )
        where = redact_url(url) if url is not None else describe_client(client)
        super().__init__(
            ttl_s=ttl_s,
            key_prefix=key_prefix,
            on_unavailable=on_unavailable,
            key_fn=key_fn,
            where=where,
        )
        self.probe_interval_s = probe_interval_s
        self.cluster = is_cluster_client(client) if client is not None else is_cluster_url(str(url))
        self._io: SingleIO | ClusterIO
        if self.cluster:
            self._io = ClusterIO(client=client, url=url, socket_timeout_s=socket_timeout_s)
            if url is not None:
                client_from_url(url, socket_timeout_s)  # the URL's syntax, checked now
        else:
            built = client if client is not None else client_from_url(str(url), socket_timeout_s)
            self._io = SingleIO(built, owns_client=client is None)
        self._probe: threading.Thread | None = None
        self._probe_lock = threading.Lock()
        self._closed = threading.Event()

    # -- the producer's calls -------------------------------------------------------------

    def check(self, keys: Sequence[bytes]) -> list[bool]:
        """Claim every key in one round trip; ``True`` = first seen (send it), ``False`` = dup."""
        return drive(self.claim_flow(keys, self._io.route), self._io.exchange)

    def check_chunks(self, chunks: Iterable[Sequence[bytes]]) -> Iterator[list[bool]]:
        """The verdicts of each chunk in turn, like ``check``; the next chunk's claims are
        written before this chunk's verdicts are handed out, so Redis works on them while the
        caller produces this chunk. A chunk whose verdicts are never taken (the caller stopped)
        has its fresh claims released. Under ``fail_closed`` an outage raises at the chunk it
        hits; earlier chunks were handed out already."""
        it = iter(chunks)
        pending = self._begin(next(it, None))
        try:
            while pending is not None:
                verdicts = pending.result()
                pending = self._begin(next(it, None))
                yield verdicts
        finally:
            if pending is not None:
                pending.abandon()

    def _begin(self, keys: Sequence[bytes] | None) -> _Pending | None:
        return None if keys is None else _Pending(self, keys)

    def release(self, keys: Sequence[bytes]) -> None:
        """Forget claims (their records went to the DLQ). Never raises: a claim that cannot be
        released just blocks the same content until its TTL ends."""
        drive(self.release_flow(keys, self._io.route), self._io.exchange)

    # -- the consumer helper's calls ------------------------------------------------------

    def contains(self, keys: Sequence[bytes]) -> list[bool]:
        """Whether each key is claimed; claims nothing. Unavailable + fail_open: all ``False``."""
        return drive(self.contains_flow(keys, self._io.route), self._io.exchange)

    def add(self, keys: Sequence[bytes]) -> None:
        """Claim keys unconditionally, each with a fresh TTL. Unavailable + fail_open: skipped."""
        drive(self.add_flow(keys, self._io.route), self._io.exchange)

    def ping(self) -> bool:
        """One probe (PING; a cluster: ``CLUSTER INFO`` on every primary); updates ``available``."""
        error = self._io.probe()
        if error is None:
            self.came_back()
            return True
        self.went_down(error)
        return False

    def close(self) -> None:
        """Stop the probe; close the client if this object created it from a URL."""
        self._closed.set()
        self._io.close()

    # -- outage probe ---------------------------------------------------------------------

    def on_down(self) -> None:
        """Start the background probe (once) that brings ``available`` back."""
        with self._probe_lock:
            if self._closed.is_set() or (self._probe is not None and self._probe.is_alive()):
                return
            self._probe = threading.Thread(
                target=self._probe_loop, name="kafka-reliable-dedup-probe", daemon=True
            )
            self._probe.start()

    def _release_fresh(self, keys: Sequence[bytes], verdicts: list[bool]) -> None:
        self.release([k for k, fresh in zip(keys, verdicts, strict=True) if fresh])

    def _probe_loop(self) -> None:
        while not self.available and not self._closed.wait(self.probe_interval_s):
            if self._io.probe() is None:
                self.came_back()


class _Pending:
    """One chunk's claims, written; ``result()`` reads the verdicts (or raises the refusal)."""

    def __init__(self, owner: RedisDeduplicator, keys: Sequence[bytes]) -> None:
        self._owner, self._keys, self._io = owner, keys, owner._io
        self._flow = owner.claim_flow(keys, self._io.route)
        self._value: list[bool] | None = None
        self._error: Exception | None = None
        self._sent: Sent | None = None
        try:
            self._sent = self._io.send(next(self._flow))
        except StopIteration as stop:
            self._value = stop.value
        except Exception as exc:  # noqa: BLE001 - raised when the verdicts are asked for
            self._error = exc

    def result(self) -> list[bool]:
        if self._error is not None:
            raise self._error
        if self._value is None:
            assert self._sent is not None
            replies = self._io.receive(self._sent)
            self._value = resume(self._flow, replies, self._io.exchange)
        return self._value

    def abandon(self) -> None:
        """The caller will not use these verdicts: give back the claims they made."""
        try:
            verdicts = self.result()
        except Exception:  # noqa: BLE001 - refused: fail_closed kept no claim
            return
        self._owner._release_fresh(self._keys, verdicts)
