"""Blocking I/O for the Redis claims of :mod:`kafka_reliable.dedup.claims`: one Redis or a
Redis Cluster, and the URLs and clients that name them.

Commands are written as pre-packed RESP on pooled connections and their replies read back in
order (no MULTI: each SET is atomic on its own). We pack ourselves because redis-py's generic
pipeline costs ~8 µs per command in Python, and because its pipeline retries a whole
half-applied batch, which would read our own fresh claims back as duplicates and drop records.
On a cluster every node's pipeline is written before any reply is read, so a batch spread over
three masters costs about one round trip, not three.
"""

from __future__ import annotations

import abc
import functools
import inspect
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from kafka_reliable.config import redact_url
from kafka_reliable.dedup.commands import SLOTS, Command, Reply, Route, is_redirect, pack
from kafka_reliable.errors import ConfigurationError

#: URL schemes of a Redis Cluster (the node list: ``redis+cluster://h1:p1,h2:p2/0``).
CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}

#: Owner of a slot no node serves.
UNCOVERED = "?"


def is_cluster_url(url: str) -> bool:
    """Whether ``url`` names a Redis Cluster (``redis+cluster://`` or ``rediss+cluster://``)."""
    return url.split("://", 1)[0].lower() in CLUSTER_SCHEMES


def split_cluster_url(url: str) -> tuple[str, list[tuple[str, int]]]:
    """A cluster URL as a plain ``redis://`` URL of its first node plus the other nodes."""
    parts = urlsplit(url)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    nodes: list[tuple[str, int]] = []
    for hostport in hosts.split(","):
        host, _, port = hostport.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigurationError(
                f"invalid Redis Cluster URL {redact_url(url)}: each node must be host:port"
            )
        nodes.append((host, int(port)))
    first = f"{userinfo}@{hosts.split(',')[0]}" if userinfo else hosts.split(",")[0]
    scheme = CLUSTER_SCHEMES[parts.scheme.lower()]
    return urlunsplit((scheme, first, parts.path, parts.query, "")), nodes[1:]


def is_cluster_client(client: Any) -> bool:
    """A ``redis.cluster.RedisCluster`` or ``redis.asyncio.cluster.RedisCluster``."""
    return hasattr(client, "nodes_manager")


def client_from_url(url: str, socket_timeout_s: float) -> Any:
    """A ``redis.Redis`` with no retries for a plain URL (a half-applied batch must not be
    re-sent); for a cluster URL, ``None``: :class:`ClusterIO` connects on first use, so a
    cluster that is down at start is an outage (policy applies), not a crash."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    try:
        if is_cluster_url(url):
            plain, _ = split_cluster_url(url)
            redis.connection.parse_url(plain)
            return None
        return redis.Redis.from_url(
            url,
            socket_timeout=socket_timeout_s,
            socket_connect_timeout=socket_timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
    except ValueError as exc:
        raise ConfigurationError(
            f"invalid Redis URL {redact_url(url)}: {redact_url(str(exc))}"
        ) from None


def describe_client(client: Any) -> str:
    """``redis://host:port/db`` of a client (``redis+cluster://…`` for a cluster), no password."""
    if is_cluster_client(client):
        nodes = getattr(client, "startup_nodes", None) or getattr(
            client.nodes_manager, "startup_nodes", {}
        )
        names = (
            list(nodes)[:3]
            if isinstance(nodes, dict)
            else [getattr(n, "name", "?") for n in nodes][:3]
        )
        return f"redis+cluster://{','.join(names) or '?'}"
    kw = getattr(getattr(client, "connection_pool", None), "connection_kwargs", {}) or {}
    if kw.get("path"):
        return f"unix://{kw['path']}"
    return f"redis://{kw.get('host', '?')}:{kw.get('port', '?')}/{kw.get('db', 0)}"


def route_of(slots_cache: dict[int, list[Any]]) -> list[str]:
    """The owner (primary) name of every slot, from a redis-py ``nodes_manager.slots_cache``."""
    owners = [UNCOVERED] * SLOTS
    for slot, nodes in slots_cache.items():
        if nodes:
            owners[slot] = nodes[0].name
    return owners


def cluster_state_error(node: str, answer: Any) -> BaseException | None:
    """``CLUSTER INFO`` answered: None when the node serves (``cluster_state:ok``)."""
    text = answer.decode("utf-8", "replace") if isinstance(answer, bytes) else str(answer)
    if "cluster_state:ok" in text:
        return None
    return ConnectionError(f"cluster node {node} reports cluster_state:fail")


@functools.cache
def _needs_command_name(pool_cls: Any) -> bool:
    param = inspect.signature(pool_cls.get_connection).parameters.get("command_name")
    return param is not None and param.default is inspect.Parameter.empty


def _read(conn: Any, n: int) -> Reply:
    """Read ``n`` replies; an error reply is kept as an answer (the connection stays in step)."""
    import redis

    answers: list[Any] = []
    try:
        for _ in range(n):
            try:
                answers.append(conn.read_response())
            except redis.ResponseError as exc:
                answers.append(exc)
        return Reply(answers)
    except (redis.RedisError, OSError) as exc:
        conn.disconnect()
        return Reply(answers, exc)


_COMMON = {b"+OK": b"OK", b"$-1": None, b"_": None, b":1": 1, b":0": 0}


def _line_answer(line: bytes) -> Any:
    """One single-line RESP2/RESP3 reply as redis-py would return it."""
    import redis

    if line in _COMMON:
        return _COMMON[line]
    kind = line[:1]
    if kind == b"+":
        return line[1:]
    if kind == b":":
        return int(line[1:])
    if line in (b"$-1", b"_", b"*-1"):
        return None
    if kind == b"-":
        return redis.ResponseError(line[1:].decode("utf-8", "replace"))
    raise redis.InvalidResponse(f"unexpected reply {line[:40]!r} where one line was due")


class Lines:
    """``n`` one-line replies (status, integer, nil or error) gathered from raw chunks: about
    0.1 µs a reply instead of ~1.5 µs through redis-py's per-reply parser."""

    def __init__(self, n: int) -> None:
        self.n, self.buf, self.seen = n, b"", 0

    def feed(self, chunk: bytes) -> bool:
        """Add bytes off the socket; True once all ``n`` replies are in."""
        import redis

        if not chunk:
            raise redis.ConnectionError("Redis closed the connection")
        straddles = self.buf[-1:] == b"\r" and chunk[:1] == b"\n"
        self.seen += chunk.count(b"\r\n") + straddles
        self.buf += chunk
        return self.seen >= self.n

    def reply(self) -> Reply:
        import redis

        lines = self.buf.split(b"\r\n")
        if len(lines) != self.n + 1 or lines[-1]:
            raise redis.InvalidResponse(f"{len(lines) - 1} reply lines where {self.n} were due")
        return Reply([_line_answer(line) for line in lines[: self.n]])

    def failed(self, exc: BaseException) -> Reply:
        """What was read before ``exc``: the complete lines, and the error."""
        import redis

        done = [] if isinstance(exc, redis.InvalidResponse) else self.buf.split(b"\r\n")[:-1]
        error = redis.ConnectionError(str(exc)) if isinstance(exc, OSError) else exc
        return Reply([_line_answer(x) for x in done], error)


def _read_lines(conn: Any, n: int) -> Reply:
    """Read ``n`` one-line replies straight off the socket. A connection fresh from its pool has
    nothing buffered (the pool checks), so every byte that arrives is ours."""
    import redis

    sock = getattr(conn, "_sock", None)
    if sock is None:
        return _read(conn, n)
    lines = Lines(n)
    try:
        while not lines.feed(sock.recv(65536)):
            pass
        return lines.reply()
    except (redis.RedisError, OSError) as exc:
        conn.disconnect()
        return lines.failed(exc)


@dataclass(slots=True)
class Sent:
    """Commands written by :meth:`_PooledIO.send` whose replies are still to be read."""

    commands: list[Command]
    replies: list[Reply | None]
    held: list[tuple[int, Any, Any]]


class _PooledIO(abc.ABC):
    """Write every command's bytes first, then read every reply: nodes answer in parallel.
    Subclasses say which connection pool serves a node (``SingleIO``, ``ClusterIO``)."""

    @abc.abstractmethod
    def _pool(self, node: str | None) -> Any:
        """The connection pool of ``node`` (None: the only one)."""

    def exchange(self, commands: list[Command]) -> list[Reply]:
        return self.receive(self.send(commands))

    def send(self, commands: list[Command]) -> Sent:
        """Write every command (a connection per node, held until :meth:`receive`)."""
        import redis

        replies: list[Reply | None] = [None] * len(commands)
        held: list[tuple[int, Any, Any]] = []
        for i, cmd in enumerate(commands):
            try:
                pool = self._pool(cmd.node)
                conn = (
                    pool.get_connection("PIPELINE")
                    if _needs_command_name(type(pool))  # type: ignore[arg-type]
                    else pool.get_connection()
                )
            except (redis.RedisError, OSError) as exc:
                replies[i] = Reply([], exc, sent=False)
                continue
            try:
                conn.send_packed_command([cmd.packed])
            except (redis.RedisError, OSError) as exc:
                conn.disconnect()
                pool.release(conn)
                replies[i] = Reply([], exc)
                continue
            held.append((i, pool, conn))
        return Sent(commands, replies, held)

    def receive(self, sent: Sent) -> list[Reply]:
        """Read the replies of :meth:`send`'s commands and give the connections back."""
        replies = sent.replies
        for i, pool, conn in sent.held:
            try:
                cmd = sent.commands[i]
                # a client-side cache may push invalidations onto any connection: parse those
                lines = cmd.lines and getattr(pool, "cache", None) is None
                replies[i] = (_read_lines if lines else _read)(conn, cmd.replies)
            finally:
                pool.release(conn)
        sent.held = []
        return replies  # type: ignore[return-value]


class SingleIO(_PooledIO):
    """One Redis (``redis.Redis``): every command goes to its pool."""

    def __init__(self, client: Any, *, owns_client: bool) -> None:
        self.client = client
        self._owns_client = owns_client

    def route(self) -> Route:
        return None

    def _pool(self, node: str | None) -> Any:
        return self.client.connection_pool

    def probe(self) -> BaseException | None:
        """None when a PING is answered."""
        reply = self.exchange([Command(None, pack(b"PING"), 1)])[0]
        return reply.error or next((a for a in reply.answers if isinstance(a, Exception)), None)

    def close(self) -> None:
        if self._owns_client:
            self.client.close()


class ClusterIO(_PooledIO):
    """A Redis Cluster (``redis.cluster.RedisCluster``, given or built from a cluster URL on
    first use): a pipeline per node that owns a slot of the call; ``MOVED`` refreshes the map."""

    def __init__(
        self, *, client: Any = None, url: str | None = None, socket_timeout_s: float = 1.0
    ) -> None:
        self.client = client
        self._url = url
        self._timeout_s = socket_timeout_s
        self._owns_client = client is None
        self._lock = threading.Lock()
        self._owners: Sequence[str] = [UNCOVERED] * SLOTS
        if client is not None:
            self._owners = route_of(client.nodes_manager.slots_cache)

    def route(self) -> Route:
        if self.client is None:
            self._connect()
        return self._owners

    def _connect(self) -> BaseException | None:
        import redis
        from redis.cluster import ClusterNode, RedisCluster

        with self._lock:
            try:
                if self.client is None:
                    plain, others = split_cluster_url(str(self._url))
                    self.client = RedisCluster.from_url(
                        plain,
                        startup_nodes=[ClusterNode(h, p) for h, p in others],
                        socket_timeout=self._timeout_s,
                        socket_connect_timeout=self._timeout_s,
                    )
                else:
                    self.client.nodes_manager.initialize()
            except (redis.RedisError, redis.RedisClusterException, OSError) as exc:
                return exc
            self._owners = route_of(self.client.nodes_manager.slots_cache)
        return None

    def _pool(self, node: str | None) -> Any:
        import redis

        found = None if self.client is None else self.client.nodes_manager.nodes_cache.get(node)
        if found is None:
            raise redis.ConnectionError(f"no cluster node serves these keys (owner {node})")
        return self.client.get_redis_connection(found).connection_pool

    def receive(self, sent: Sent) -> list[Reply]:
        replies = super().receive(sent)
        if any(is_redirect(a) for r in replies for a in r.answers):
            self._connect()
        return replies

    def probe(self) -> BaseException | None:
        """None when every primary answers ``CLUSTER INFO`` with ``cluster_state:ok``."""
        error = self._connect()
        if error is not None:
            return error
        names = sorted({n for n in self._owners if n != UNCOVERED})
        if len(names) == 0 or UNCOVERED in self._owners:
            return ConnectionError("the cluster does not cover every hash slot")
        replies = self.exchange(
            [Command(n, pack(b"CLUSTER", b"INFO"), 1, lines=False) for n in names]
        )
        for name, reply in zip(names, replies, strict=True):
            if reply.error is not None:
                return reply.error
            error = cluster_state_error(name, reply.answers[0])
            if error is not None:
                return error
        return None

    def close(self) -> None:
        if self._owns_client and self.client is not None:
            self.client.close()
