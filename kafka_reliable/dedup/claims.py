"""Redis dedup claims without I/O: keys, TTLs, verdicts, undo, and the outage policy.

Each operation is a generator (the "sans-I/O" pattern): it yields the commands to write, as
one :class:`Command` per Redis node, and receives one :class:`Reply` per command; its return
value is the result. :class:`~kafka_reliable.dedup.RedisDeduplicator` drives these generators
with blocking sockets, :class:`~kafka_reliable.aio.dedup.AsyncClaims` with ``redis.asyncio``:
the logic exists once.

A claim is ``SET prefix+key token NX EX ttl``: ``OK`` = first seen (send it), nil =
duplicate. On a Redis Cluster the keys of a call are grouped by the node that owns their hash
slot (one pipeline per node); a ``MOVED`` answer (slots moved) re-plans those keys once on the
refreshed slot map. An undo (a refused batch under ``fail_closed``) deletes only the claims
this call made (value == its token) with one script call per hash slot, since a script may
touch only the keys of one slot on a cluster.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from kafka_reliable.dedup.base import DedupBase, validate
from kafka_reliable.dedup.commands import (
    Command,
    Flow,
    Reply,
    Route,
    failure,
    group,
    is_redirect,
    multi_key,
    pack,
    per_key,
    ttl_args,
)
from kafka_reliable.dedup.keys import KeyFn
from kafka_reliable.errors import DeduplicationUnavailableError

log = logging.getLogger(__name__)

#: Deletes the claims of one failed batch, and only those this batch made (value == token).
UNDO_SCRIPT = (
    b"local n = 0 for _, k in ipairs(KEYS) do "
    b"if redis.call('GET', k) == ARGV[1] then redis.call('DEL', k) n = n + 1 end end return n"
)


@dataclass(slots=True)
class _Tally:
    """Verdicts of one claim call as they come in: True, False, or None (not verified)."""

    verdicts: list[bool | None]
    maybe_mine: set[int] = field(default_factory=set)
    cause: BaseException | None = None

    def take(self, cmds: list[Command], replies: list[Reply], retry: bool) -> list[int]:
        """Record answers; return the positions answered ``MOVED`` when a retry is allowed."""
        moved: list[int] = []
        for cmd, rep in zip(cmds, replies, strict=True):
            for j, a in zip(cmd.index, rep.answers, strict=False):
                if a is None:
                    self.verdicts[j] = False
                elif not isinstance(a, Exception):
                    self.verdicts[j] = True
                elif retry and is_redirect(a):
                    moved.append(j)
                else:
                    self.cause = self.cause or a
            if rep.error is not None:
                self.cause = self.cause or rep.error
                if rep.sent:
                    self.maybe_mine.update(cmd.index[len(rep.answers) :])
        return moved


class ClaimCore(DedupBase):
    """Prefix, TTL, tokens, verdicts, undo, counters, and the available/unavailable state of
    one Redis (or cluster). Subclasses give it I/O: ``on_down`` is called when Redis stops
    answering (the sync backend starts its probe there)."""

    backend = "redis"

    def __init__(
        self,
        *,
        ttl_s: float,
        key_prefix: str,
        on_unavailable: str,
        key_fn: KeyFn | None,
        where: str,
    ) -> None:
        validate(ttl_s=ttl_s, on_unavailable=on_unavailable)
        super().__init__(key_fn=key_fn)
        self.ttl_s = ttl_s
        self.key_prefix = key_prefix
        self.on_unavailable = on_unavailable
        self.where = where
        self.available = True
        self._prefix = key_prefix.encode("utf-8")
        self._ttl = ttl_args(ttl_s)
        unit, ttl = self._ttl
        self._ttl_tail = b"$2\r\n%s\r\n$%d\r\n%s\r\n" % (unit, len(ttl), ttl)
        self._token_head = os.urandom(6).hex().encode()
        self._tokens = itertools.count()
        self._state_lock = threading.Lock()
        self._down_since = 0.0
        self._unavailable_at_down = 0

    def on_down(self) -> None:
        """Called once each time Redis goes from answering to not answering."""

    # -- operations (generators) ----------------------------------------------------------

    def claim_flow(self, keys: Sequence[bytes], route: Callable[[], Route]) -> Flow[list[bool]]:
        """Claim every key; ``True`` = first seen. Unavailable: ``fail_open`` → the unverified
        keys count as fresh; ``fail_closed`` → this call's claims undone, then
        DeduplicationUnavailableError."""
        n = len(keys)
        if n == 0:
            return []
        if not self.available:
            self.on_down()
            return self._unverified(n, [None] * n, "no answer since the last failure")
        token = b"%s:%d:%d" % (self._token_head, os.getpid(), next(self._tokens))
        full = [self._prefix + k for k in keys]
        tally = _Tally([None] * n)
        pending: list[int] = list(range(n))
        for attempt in (0, 1):
            cmds = self._claim_commands(full, pending, token, route())
            pending = tally.take(cmds, (yield cmds), retry=attempt == 0)
            if not pending:
                break
        cause = tally.cause
        if cause is None:
            out = [bool(v) for v in tally.verdicts]
            self._record(checks=n, duplicates=n - sum(out))
            return out
        self.went_down(cause)
        if self.on_unavailable == "fail_closed":
            mine = [full[j] for j in range(n) if tally.verdicts[j] or j in tally.maybe_mine]
            if mine:
                undo = multi_key(
                    mine,
                    route(),
                    lambda ks: pack(b"EVAL", UNDO_SCRIPT, b"%d" % len(ks), *ks, token),
                )
                self._log_undo((yield undo), n)
        return self._unverified(n, tally.verdicts, _describe(cause))

    def release_flow(self, keys: Sequence[bytes], route: Callable[[], Route]) -> Flow[None]:
        """Forget claims (their records went to the DLQ, or were refused). Never raises: a
        claim that cannot be released blocks the same content until its TTL ends."""
        if not keys:
            return None
        if self.available:
            replies = yield multi_key(
                [self._prefix + k for k in keys], route(), lambda ks: pack(b"DEL", *ks)
            )
            error = failure(replies)
            if error is None:
                return None
            self.went_down(error)
        log.warning(
            "could not release %d dedup claims on %s; the same content counts as a duplicate "
            "until they expire (ttl %ss)",
            len(keys),
            self.where,
            self.ttl_s,
        )
        return None

    def contains_flow(self, keys: Sequence[bytes], route: Callable[[], Route]) -> Flow[list[bool]]:
        """Whether each key is claimed; claims nothing. Unavailable + fail_open: all False."""
        if not keys:
            return []
        full = [self._prefix + k for k in keys]
        cause = self._down_cause()
        if cause is None:
            cmds = per_key(full, route(), lambda k: pack(b"EXISTS", k))
            replies = yield cmds
            cause = failure(replies)
            if cause is None:
                out = [False] * len(keys)
                for cmd, rep in zip(cmds, replies, strict=True):
                    for j, a in zip(cmd.index, rep.answers, strict=True):
                        out[j] = bool(a)
                self._record(checks=len(keys))
                return out
            self.went_down(cause)
        self._unverified(len(keys), [None] * len(keys), _describe(cause))
        return [False] * len(keys)

    def add_flow(self, keys: Sequence[bytes], route: Callable[[], Route]) -> Flow[None]:
        """Claim keys unconditionally, each with a fresh TTL. Unavailable + fail_open: skipped."""
        if not keys:
            return None
        cause = self._down_cause()
        if cause is None:
            full = [self._prefix + k for k in keys]
            cause = failure(
                (yield per_key(full, route(), lambda k: pack(b"SET", k, b"1", *self._ttl)))
            )
            if cause is None:
                return None
            self.went_down(cause)
        if self.on_unavailable == "fail_closed":
            raise self._closed_error(len(keys), _describe(cause))
        return None

    # -- state ------------------------------------------------------------------------------

    def went_down(self, error: BaseException) -> None:
        """Redis did not answer: the hot path stops asking it until a probe succeeds."""
        with self._state_lock:
            if not self.available:
                return
            self.available = False
            self._down_since = time.monotonic()
            self._unavailable_at_down = self.stats()["unavailable"]
        log.warning(
            "dedup backend redis at %s is unavailable (%s); %s until it answers again",
            self.where,
            _describe(error),
            "records are sent without dedup"
            if self.on_unavailable == "fail_open"
            else "sends are refused",
        )
        self.on_down()

    def came_back(self) -> None:
        """A probe got through: claims go to Redis again."""
        with self._state_lock:
            if self.available:
                return
            self.available = True
            down_s = time.monotonic() - self._down_since
            missed = self.stats()["unavailable"] - self._unavailable_at_down
        log.info(
            "dedup backend redis at %s answers again after %.1fs; %d checks went unverified",
            self.where,
            down_s,
            missed,
        )

    # -- internals ------------------------------------------------------------------------

    def _claim_commands(
        self, full: list[bytes], positions: list[int], token: bytes, route: Route
    ) -> list[Command]:
        tail = b"\r\n$%d\r\n%s\r\n$2\r\nNX\r\n%s" % (len(token), token, self._ttl_tail)
        return [
            Command(
                node,
                b"".join(
                    [b"*6\r\n$3\r\nSET\r\n$%d\r\n%s%s" % (len(full[j]), full[j], tail) for j in idx]
                ),
                len(idx),
                idx,
            )
            for node, idx in group(full, positions, route).items()
        ]

    def _down_cause(self) -> BaseException | None:
        if self.available:
            return None
        self.on_down()
        return ConnectionError("no answer since the last failure")

    def _unverified(self, n: int, verdicts: list[bool | None], cause: str) -> list[bool]:
        if self.on_unavailable == "fail_closed":
            self._record(checks=n, unavailable=n)
            raise self._closed_error(n, cause)
        dups = sum(1 for v in verdicts if v is False)
        unknown = sum(1 for v in verdicts if v is None)
        self._record(checks=n, duplicates=dups, unavailable=unknown)
        return [v is not False for v in verdicts]

    def _closed_error(self, n: int, cause: str) -> DeduplicationUnavailableError:
        return DeduplicationUnavailableError(
            f"dedup backend redis at {self.where} is unavailable ({cause}); "
            f"on_unavailable='fail_closed', so none of the {n} records was sent"
        )

    def _log_undo(self, replies: list[Reply], n: int) -> None:
        error = failure(replies)
        if error is not None:
            log.warning(
                "could not undo dedup claims of a refused batch on %s (%s); up to %d records "
                "count as duplicates until the claims expire (ttl %ss)",
                self.where,
                type(error).__name__,
                n,
                self.ttl_s,
            )


def _describe(error: BaseException | str) -> str:
    return error if isinstance(error, str) else f"{type(error).__name__}: {error}"
