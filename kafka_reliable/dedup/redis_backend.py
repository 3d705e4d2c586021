"""Distributed dedup on Redis: ``SET key token NX EX ttl``, all keys of a batch in one round trip.

The commands of a batch are written as one pipelined buffer on one pooled connection and the
replies read back in order (no MULTI: each SET is atomic on its own, which is all dedup
needs). We pack the commands ourselves because redis-py's generic pipeline costs ~8 µs per
command in Python, and because its pipeline retries a whole half-applied batch, which would
read our own fresh claims back as duplicates and drop records.

When Redis does not answer: ``fail_open`` sends (counted as ``unavailable``), ``fail_closed``
raises :class:`~kafka_reliable.errors.DeduplicationUnavailableError`. Either way the hot path
stops calling Redis and a background probe PINGs every ``probe_interval_s`` until it answers,
so an outage costs one slow call, not one per send.
"""

from __future__ import annotations

import inspect
import itertools
import logging
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

from kafka_reliable.config import redact_url
from kafka_reliable.dedup.base import DEFAULT_TTL_S, DedupBase, OnUnavailable, validate
from kafka_reliable.dedup.keys import KeyFn
from kafka_reliable.errors import ConfigurationError, DeduplicationUnavailableError

log = logging.getLogger(__name__)

#: Default namespace of producer dedup claims in Redis.
DEFAULT_KEY_PREFIX = "kafka_reliable:dedup:"

#: Deletes the claims of one failed batch, and only those this batch made (value == token).
_UNDO_SCRIPT = (
    b"local n = 0 for _, k in ipairs(KEYS) do "
    b"if redis.call('GET', k) == ARGV[1] then redis.call('DEL', k) n = n + 1 end end return n"
)


def _pack(*args: bytes) -> bytes:
    """One command in RESP."""
    return b"*%d\r\n%s" % (len(args), b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))


def _ttl_args(ttl_s: float) -> tuple[bytes, bytes]:
    if float(ttl_s).is_integer():
        return b"EX", b"%d" % int(ttl_s)
    return b"PX", b"%d" % max(1, round(ttl_s * 1000))


def _client_from_url(url: str, socket_timeout_s: float) -> Any:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    try:
        return redis.Redis.from_url(
            url,
            socket_timeout=socket_timeout_s,
            socket_connect_timeout=socket_timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
    except ValueError as exc:
        raise ConfigurationError(f"invalid Redis URL {redact_url(url)}: {redact_url(str(exc))}") from None


def describe_client(client: Any) -> str:
    """``redis://host:port/db`` of a client, never its password."""
    kw = getattr(getattr(client, "connection_pool", None), "connection_kwargs", {}) or {}
    if kw.get("path"):
        return f"unix://{kw['path']}"
    return f"redis://{kw.get('host', '?')}:{kw.get('port', '?')}/{kw.get('db', 0)}"


def _needs_command_name(pool_cls: Any) -> bool:
    param = inspect.signature(pool_cls.get_connection).parameters.get("command_name")
    return param is not None and param.default is inspect.Parameter.empty


class RedisDeduplicator(DedupBase):
    """Dedup shared by every producer that uses the same Redis and ``key_prefix``.

    Give ``client`` (a ``redis.Redis``) or ``url`` (``redis://``, ``rediss://``, ``unix://``).
    A client you pass keeps its own timeouts and connect retries, which bound how long the
    first call of an outage blocks; a URL gets ``socket_timeout_s`` and no retries.
    """

    backend = "redis"

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
        validate(ttl_s=ttl_s, on_unavailable=on_unavailable)
        if (client is None) == (url is None):
            raise ConfigurationError("RedisDeduplicator needs exactly one of client= or url=")
        super().__init__(key_fn=key_fn)
        self.ttl_s = ttl_s
        self.key_prefix = key_prefix
        self.on_unavailable = on_unavailable
        self.probe_interval_s = probe_interval_s
        self.available = True
        self._owns_client = client is None
        self._client = client if client is not None else _client_from_url(str(url), socket_timeout_s)
        self.where = redact_url(url) if url is not None else describe_client(client)
        self._prefix = key_prefix.encode("utf-8")
        self._ttl_args = _ttl_args(ttl_s)
        unit, ttl = self._ttl_args
        self._ttl_tail = b"$2\r\n%s\r\n$%d\r\n%s\r\n" % (unit, len(ttl), ttl)
        self._token_head = os.urandom(6).hex().encode()
        self._tokens = itertools.count()
        self._named_get = _needs_command_name(type(self._client.connection_pool))
        self._state_lock = threading.Lock()
        self._down_since = 0.0
        self._unavailable_at_down = 0
        self._probe: threading.Thread | None = None
        self._closed = threading.Event()

    # -- the producer's calls -------------------------------------------------------------

    def check(self, keys: Sequence[bytes]) -> list[bool]:
        """Claim every key in one round trip; ``True`` = first seen (send it), ``False`` = duplicate."""
        n = len(keys)
        if n == 0:
            return []
        if not self.available:
            self._ensure_probe()
            return self._unverified(n, [], "no answer since the last failure")
        token = b"%s:%d:%d" % (self._token_head, os.getpid(), next(self._tokens))
        answers, error, maybe_applied = self._roundtrip(self._pack_claims(keys, token), n)
        if error is None:
            out = [a is not None for a in answers]
            self._record(checks=n, duplicates=n - sum(out))
            return out
        self._went_down(error)
        if self.on_unavailable == "fail_closed" and maybe_applied:
            self._undo_claims(keys, token)
        return self._unverified(n, answers, f"{type(error).__name__}: {error}")

    def release(self, keys: Sequence[bytes]) -> None:
        """Forget claims (their records went to the DLQ) with one ``DEL``. Never raises:
        a claim that cannot be released just blocks the same content until its TTL ends."""
        if not keys:
            return
        if self.available:
            _, error, _ = self._roundtrip(_pack(b"DEL", *(self._prefix + k for k in keys)), 1)
            if error is None:
                return
            self._went_down(error)
        log.warning(
            "could not release %d dedup claims on %s; the same content counts as a duplicate "
            "until they expire (ttl %ss)", len(keys), self.where, self.ttl_s,
        )

    # -- the consumer helper's calls ------------------------------------------------------

    def contains(self, keys: Sequence[bytes]) -> list[bool]:
        """Whether each key is claimed; claims nothing. Unavailable + fail_open: all ``False``."""
        if not keys:
            return []
        packed = b"".join(_pack(b"EXISTS", self._prefix + k) for k in keys)
        answers, error = self._plain_call(packed, len(keys))
        if error is None:
            self._record(checks=len(keys))
            return [bool(a) for a in answers]
        self._unverified(len(keys), [], error)
        return [False] * len(keys)

    def add(self, keys: Sequence[bytes]) -> None:
        """Claim keys unconditionally, each with a fresh TTL. Unavailable + fail_open: skipped."""
        if keys:
            packed = b"".join(_pack(b"SET", self._prefix + k, b"1", *self._ttl_args) for k in keys)
            _, error = self._plain_call(packed, len(keys))
            if error is not None and self.on_unavailable == "fail_closed":
                raise self._closed_error(len(keys), error)

    def ping(self) -> bool:
        """One PING; updates ``available`` either way."""
        _, error, _ = self._roundtrip(_pack(b"PING"), 1)
        if error is None:
            self._came_back()
            return True
        self._went_down(error)
        return False

    def close(self) -> None:
        """Stop the probe; close the client if this object created it from a URL."""
        self._closed.set()
        if self._owns_client:
            self._client.close()

    # -- internals ------------------------------------------------------------------------

    def _pack_claims(self, keys: Sequence[bytes], token: bytes) -> bytes:
        tail = b"\r\n$%d\r\n%s\r\n$2\r\nNX\r\n%s" % (len(token), token, self._ttl_tail)
        prefix = self._prefix
        plen = len(prefix)
        return b"".join([b"*6\r\n$3\r\nSET\r\n$%d\r\n%s%s%s" % (plen + len(k), prefix, k, tail) for k in keys])

    def _plain_call(self, packed: bytes, n: int) -> tuple[list[Any], str | None]:
        if not self.available:
            self._ensure_probe()
            return [], "no answer since the last failure"
        answers, error, _ = self._roundtrip(packed, n)
        if error is None:
            return answers, None
        self._went_down(error)
        return answers, f"{type(error).__name__}: {error}"

    def _roundtrip(self, packed: bytes, n_replies: int) -> tuple[list[Any], BaseException | None, bool]:
        """Write ``packed`` once, read ``n_replies``: (replies read, error, maybe applied)."""
        import redis

        pool = self._client.connection_pool
        try:
            conn = pool.get_connection("PIPELINE") if self._named_get else pool.get_connection()
        except (redis.RedisError, OSError) as exc:
            return [], exc, False
        answers: list[Any] = []
        try:
            conn.send_packed_command([packed])
            for _ in range(n_replies):
                answers.append(conn.read_response())
            return answers, None, True
        except (redis.RedisError, OSError) as exc:
            conn.disconnect()
            return answers, exc, True
        finally:
            pool.release(conn)

    def _unverified(self, n: int, answers: list[Any], cause: str) -> list[bool]:
        if self.on_unavailable == "fail_closed":
            self._record(checks=n, unavailable=n)
            raise self._closed_error(n, cause)
        known = [a is not None for a in answers]
        self._record(checks=n, duplicates=len(known) - sum(known), unavailable=n - len(known))
        return known + [True] * (n - len(known))

    def _closed_error(self, n: int, cause: str) -> DeduplicationUnavailableError:
        return DeduplicationUnavailableError(
            f"dedup backend redis at {self.where} is unavailable ({cause}); "
            f"on_unavailable='fail_closed', so none of the {n} records was sent"
        )

    def _undo_claims(self, keys: Sequence[bytes], token: bytes) -> None:
        prefixed = [self._prefix + k for k in keys]
        cmd = _pack(b"EVAL", _UNDO_SCRIPT, b"%d" % len(prefixed), *prefixed, token)
        _, error, _ = self._roundtrip(cmd, 1)
        if error is not None:
            log.warning(
                "could not undo dedup claims of a failed batch on %s (%s); up to %d records count "
                "as duplicates until the claims expire (ttl %ss)", self.where, type(error).__name__,
                len(keys), self.ttl_s,
            )

    def _went_down(self, error: BaseException) -> None:
        with self._state_lock:
            if not self.available:
                return
            self.available = False
            self._down_since = time.monotonic()
            self._unavailable_at_down = self.stats()["unavailable"]
        log.warning(
            "dedup backend redis at %s is unavailable (%s: %s); %s until it answers again",
            self.where, type(error).__name__, error,
            "records are sent without dedup" if self.on_unavailable == "fail_open" else "sends are refused",
        )
        self._ensure_probe()

    def _came_back(self) -> None:
        with self._state_lock:
            if self.available:
                return
            self.available = True
            down_s = time.monotonic() - self._down_since
            missed = self.stats()["unavailable"] - self._unavailable_at_down
        log.info(
            "dedup backend redis at %s answers again after %.1fs; %d checks went unverified",
            self.where, down_s, missed,
        )

    def _ensure_probe(self) -> None:
        with self._state_lock:
            if self._closed.is_set() or (self._probe is not None and self._probe.is_alive()):
                return
            self._probe = threading.Thread(target=self._probe_loop, name="kafka-reliable-dedup-probe", daemon=True)
            self._probe.start()

    def _probe_loop(self) -> None:
        while not self.available and not self._closed.wait(self.probe_interval_s):
            _, error, _ = self._roundtrip(_pack(b"PING"), 1)
            if error is None:
                self._came_back()
