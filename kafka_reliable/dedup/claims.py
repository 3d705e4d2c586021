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
from binascii import crc_hqx
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kafka_reliable.dedup.base import DedupBase, validate
from kafka_reliable.dedup.keys import KeyFn
from kafka_reliable.errors import DeduplicationUnavailableError

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Hash slots of a Redis Cluster.
SLOTS = 16384

#: Deletes the claims of one failed batch, and only those this batch made (value == token).
UNDO_SCRIPT = (
    b"local n = 0 for _, k in ipairs(KEYS) do "
    b"if redis.call('GET', k) == ARGV[1] then redis.call('DEL', k) n = n + 1 end end return n"
)

#: Owner of each hash slot (a node name per slot), or None for a single Redis.
Route = Sequence[str] | None


@dataclass(slots=True)
class Command:
    """Bytes to write to one node (``None``: the single Redis) and the replies they produce.

    ``index``: the positions, in the caller's key list, of the keys with one reply each
    (claims, existence checks); empty for commands whose replies are not per key."""

    node: str | None
    packed: bytes
    replies: int
    index: list[int] = field(default_factory=list)


@dataclass(slots=True)
class Reply:
    """What one command got back: the replies read (an error reply is kept as its
    ``ResponseError`` instance) and, when the connection failed, that error. ``sent``: the
    bytes may have reached Redis (False when no connection could be had)."""

    answers: list[Any]
    error: BaseException | None = None
    sent: bool = True


#: An operation: yields the commands of one round, receives their replies, returns ``T``.
Flow = Generator[list[Command], list[Reply], T]


def pack(*args: bytes) -> bytes:
    """One command in RESP."""
    return b"*%d\r\n%s" % (len(args), b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))


def ttl_args(ttl_s: float) -> tuple[bytes, bytes]:
    """``EX seconds`` for a whole number of seconds, else ``PX milliseconds``."""
    if float(ttl_s).is_integer():
        return b"EX", b"%d" % int(ttl_s)
    return b"PX", b"%d" % max(1, round(ttl_s * 1000))


def slot_of(key: bytes) -> int:
    """The Redis Cluster hash slot of a key (CRC16 of the key, or of its ``{hash tag}``)."""
    start = key.find(b"{")
    if start > -1:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            key = key[start + 1 : end]
    return crc_hqx(key, 0) & (SLOTS - 1)


def is_redirect(answer: Any) -> bool:
    """A ``MOVED`` error reply: the slot lives on another node now; nothing was applied."""
    return isinstance(answer, Exception) and str(answer).startswith("MOVED")


def group(keys: Sequence[bytes], positions: Sequence[int], route: Route) -> dict[Any, list[int]]:
    """Positions of ``keys`` grouped by owning node (one group, ``None``, for a single Redis)."""
    if route is None:
        return {None: list(positions)}
    out: dict[Any, list[int]] = {}
    for j in positions:
        out.setdefault(route[slot_of(keys[j])], []).append(j)
    return out


def by_slot(keys: Sequence[bytes], route: Route) -> dict[Any, dict[int, list[bytes]]]:
    """Keys grouped by node, then by hash slot (multi-key commands must stay in one slot)."""
    out: dict[Any, dict[int, list[bytes]]] = {}
    for k in keys:
        slot = slot_of(k) if route is not None else 0
        node = route[slot] if route is not None else None
        out.setdefault(node, {}).setdefault(slot, []).append(k)
    return out


def multi_key(
    keys: Sequence[bytes], route: Route, packer: Callable[[list[bytes]], bytes]
) -> list[Command]:
    """``packer(keys of one slot)`` once per hash slot (a multi-key command may not cross
    slots on a cluster), pipelined per node; one reply per slot."""
    cmds = []
    for node, slots in by_slot(keys, route).items():
        parts = [packer(ks) for ks in slots.values()]
        cmds.append(Command(node, b"".join(parts), len(parts)))
    return cmds


def per_key(keys: Sequence[bytes], route: Route, packer: Callable[[bytes], bytes]) -> list[Command]:
    """One command per key (``packer(key)``), pipelined per node; ``index`` says whose reply."""
    return [
        Command(node, b"".join(packer(keys[j]) for j in idx), len(idx), idx)
        for node, idx in group(keys, range(len(keys)), route).items()
    ]


def failure(replies: Sequence[Reply]) -> BaseException | None:
    """The first connection failure or error reply among ``replies``."""
    for r in replies:
        if r.error is not None:
            return r.error
        for a in r.answers:
            if isinstance(a, Exception):
                return a
    return None


def drive(flow: Flow[T], exchange: Callable[[list[Command]], list[Reply]]) -> T:
    """Run an operation with a blocking ``exchange`` (the async driver awaits instead)."""
    try:
        commands = next(flow)
        while True:
            commands = flow.send(exchange(commands))
    except StopIteration as stop:
        return stop.value


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
