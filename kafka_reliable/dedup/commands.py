"""Commands and replies of the Redis claims, and how keys are planned over nodes and slots.

Pure functions and plain data: :mod:`kafka_reliable.dedup.claims` builds :class:`Command`
lists with them, and the I/O layers (:mod:`~kafka_reliable.dedup.redis_io`,
:mod:`~kafka_reliable.dedup.redis_aio`) carry them.
"""

from __future__ import annotations

from binascii import crc_hqx
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

#: Hash slots of a Redis Cluster.
SLOTS = 16384

#: Owner of each hash slot (a node name per slot), or None for a single Redis.
Route = Sequence[str] | None


@dataclass(slots=True)
class Command:
    """Bytes to write to one node (``None``: the single Redis) and the replies they produce.

    ``index``: the positions, in the caller's key list, of the keys with one reply each
    (claims, existence checks); empty for commands whose replies are not per key. ``lines``:
    every reply is one line (status, integer, nil or error), which the blocking layer reads
    without redis-py's per-reply parser."""

    node: str | None
    packed: bytes
    replies: int
    index: list[int] = field(default_factory=list)
    lines: bool = True


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
    except StopIteration as stop:
        return stop.value
    return resume(flow, exchange(commands), exchange)


def resume(
    flow: Flow[T], replies: list[Reply], exchange: Callable[[list[Command]], list[Reply]]
) -> T:
    """Go on with an operation whose first round was written and read already."""
    try:
        commands = flow.send(replies)
        while True:
            commands = flow.send(exchange(commands))
    except StopIteration as stop:
        return stop.value
