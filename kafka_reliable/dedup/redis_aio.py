"""``redis.asyncio`` I/O for the claims of :mod:`kafka_reliable.dedup.claims`: one Redis or a
Redis Cluster, the same pre-packed pipelines as :mod:`kafka_reliable.dedup.redis_io`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kafka_reliable.dedup.commands import SLOTS, Command, Reply, Route, is_redirect
from kafka_reliable.dedup.redis_io import UNCOVERED, Lines, route_of


async def _read(conn: Any, n: int) -> Reply:
    import redis

    answers: list[Any] = []
    try:
        for _ in range(n):
            try:
                answers.append(await conn.read_response())
            except redis.ResponseError as exc:
                answers.append(exc)
        return Reply(answers)
    except (redis.RedisError, OSError) as exc:
        await conn.disconnect()
        return Reply(answers, exc)
    except BaseException:  # cancelled mid-reply: the connection's state is unknown
        await conn.disconnect()
        raise


async def _read_lines(conn: Any, n: int) -> Reply:
    """``n`` one-line replies read off the connection's stream in chunks (see
    :class:`~kafka_reliable.dedup.redis_io.Lines`), when its parser holds nothing."""
    import redis

    reader = getattr(conn, "_reader", None)
    parser_buffer: Any = getattr(getattr(conn, "_parser", None), "_buffer", None)
    if reader is None or parser_buffer != b"":  # another parser, or bytes held: its way
        return await _read(conn, n)
    lines = Lines(n)
    try:
        while not lines.feed(await reader.read(65536)):
            pass
        return lines.reply()
    except (redis.RedisError, OSError) as exc:
        await conn.disconnect()
        return lines.failed(exc)
    except BaseException:
        await conn.disconnect()
        raise


def _reader_for(cmd: Command) -> Any:
    return _read_lines if cmd.lines else _read


async def _send(conn: Any, cmd: Command) -> Reply | None:
    """Write one command; a Reply only when that failed."""
    import redis

    try:
        await conn.send_packed_command([cmd.packed])
        return None
    except (redis.RedisError, OSError) as exc:
        await conn.disconnect()
        return Reply([], exc)
    except BaseException:
        await conn.disconnect()
        raise


class AsyncSingleIO:
    """One Redis (``redis.asyncio.Redis``)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def prepare(self) -> None:
        """Nothing to learn before a call."""

    def route(self) -> Route:
        return None

    async def exchange(self, commands: list[Command]) -> list[Reply]:
        import redis

        pool = self.client.connection_pool
        out: list[Reply] = []
        for cmd in commands:
            try:
                conn = await pool.get_connection()
            except (redis.RedisError, OSError) as exc:
                out.append(Reply([], exc, sent=False))
                continue
            try:
                out.append(await _send(conn, cmd) or await _reader_for(cmd)(conn, cmd.replies))
            finally:
                await pool.release(conn)
        return out

    async def aclose(self) -> None:
        await self.client.aclose()


class AsyncClusterIO:
    """A Redis Cluster (``redis.asyncio.cluster.RedisCluster``): one pipeline per node,
    written to every node before any reply is read; ``MOVED`` refreshes the slot map."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._owners: Sequence[str] = [UNCOVERED] * SLOTS
        self._known = False

    async def prepare(self) -> None:
        """Learn the slot map on first use (or after it changed)."""
        if not self._known:
            await self._refresh()

    async def _refresh(self) -> None:
        import redis

        try:
            if self.client.nodes_manager.slots_cache:
                await self.client.nodes_manager.initialize()
            else:
                await self.client.initialize()
        except (redis.RedisError, redis.RedisClusterException, OSError):
            self._known = False
            return
        self._owners = route_of(self.client.nodes_manager.slots_cache)
        self._known = True

    def route(self) -> Route:
        return self._owners

    async def exchange(self, commands: list[Command]) -> list[Reply]:
        import redis

        out: list[Reply | None] = [None] * len(commands)
        held: list[tuple[int, Any, Any]] = []
        try:
            for i, cmd in enumerate(commands):
                node = self.client.nodes_manager.nodes_cache.get(cmd.node)
                if node is None:
                    error = redis.ConnectionError(
                        f"no cluster node serves these keys (owner {cmd.node})"
                    )
                    out[i] = Reply([], error, sent=False)
                    continue
                try:
                    conn = node.acquire_connection()
                except (redis.RedisError, OSError) as exc:
                    out[i] = Reply([], exc, sent=False)
                    continue
                held.append((i, node, conn))
                out[i] = await _send(conn, cmd)
            for i, _, conn in held:
                if out[i] is None:
                    out[i] = await _reader_for(commands[i])(conn, commands[i].replies)
        finally:
            for _, node, conn in held:
                node.release(conn)
        if any(is_redirect(a) for r in out if r is not None for a in r.answers):
            await self._refresh()
        return out  # type: ignore[return-value]

    async def aclose(self) -> None:
        await self.client.aclose()


def async_io_for(client: Any) -> AsyncSingleIO | AsyncClusterIO:
    """The I/O layer for a ``redis.asyncio`` client (single or cluster)."""
    return AsyncClusterIO(client) if hasattr(client, "nodes_manager") else AsyncSingleIO(client)
