"""AsyncReliableProducer dedup on real Redis (redis.asyncio claims, the sync backend's keys)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kafka_reliable import ReliableKafkaProducer
from kafka_reliable.aio import AsyncReliableProducer
from kafka_reliable.errors import DeduplicationUnavailableError
from tests.helpers.kafka import read_to_end
from tests.helpers.ports import free_port


def test_two_async_producers_send_each_content_once(kafka_bootstrap: str, redis_url: str, new_topic,
                                                    tmp_path: Path) -> None:
    # Given two async producers sharing one Redis
    topic = new_topic(partitions=2)
    orders = [{"order": i} for i in range(150)]

    async def main() -> tuple[list[str | None], list[str | None], dict]:
        kw = {"bootstrap_servers": kafka_bootstrap, "enable_deduplication": True, "redis_url": redis_url}
        async with AsyncReliableProducer(**kw, spool_path=tmp_path / "a.db") as a, \
                AsyncReliableProducer(**kw, spool_path=tmp_path / "b.db") as b:
            # When both send the same 150 records at the same time (plus a batch of them again)
            ra, rb = await asyncio.gather(
                asyncio.gather(*(a.send_message(topic, o, key=str(o["order"])) for o in orders)),
                asyncio.gather(*(b.send_message(topic, o, key=str(o["order"])) for o in orders)),
            )
            again = await a.send_batch(topic, orders[:50], key_extractor=lambda o: str(o["order"]))
            assert again["duplicates"] == 50 and again["sent"] == 0
            stats = (await a.get_stats())["deduplication_stats"]
            return [a.get_message_status(m) for m in ra], [b.get_message_status(m) for m in rb], stats

    sa, sb, stats = asyncio.run(main())
    # Then: each content was sent by exactly one of them; the other saw a duplicate
    assert all({x, y} == {"sent", "duplicate"} for x, y in zip(sa, sb, strict=True))
    assert stats["backend"] == "redis" and stats["checks"] == 200 and stats["unavailable"] == 0
    got = read_to_end(kafka_bootstrap, topic, at_least=150)
    assert sorted(int(m.key()) for m in got) == list(range(150))


def test_async_and_sync_producers_share_claims(kafka_bootstrap: str, redis_url: str, new_topic,
                                               tmp_path: Path) -> None:
    # Given a sync producer that already sent a record
    topic = new_topic()
    kw = {"bootstrap_servers": kafka_bootstrap, "enable_deduplication": True, "redis_url": redis_url}
    with ReliableKafkaProducer(**kw, spool_path=tmp_path / "s.db") as s:
        first = s.send_message(topic, {"n": 1}, key="k")
        s.flush(10)
        assert s.get_message_status(first) == "sent"

    async def main() -> list[str | None]:
        async with AsyncReliableProducer(**kw, spool_path=tmp_path / "a.db") as a:
            # When the async producer sends it again, and a task sending a new one is cancelled
            dup = await a.send_message(topic, {"n": 1}, key="k")
            task = asyncio.ensure_future(a.send_message(topic, {"n": 2}, key="k"))
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await a.flush(10) == 0
            return [a.get_message_status(dup), (await a.get_stats())["messages_sent"]]

    # Then: the same key was a duplicate; the cancelled one was claimed and sent anyway
    assert asyncio.run(main()) == ["duplicate", 1]
    got = read_to_end(kafka_bootstrap, topic, at_least=2)
    assert sorted(m.value() for m in got) == [b'{"n":1}', b'{"n":2}']


def test_redis_unreachable_fail_closed_refuses_fail_open_sends(kafka_bootstrap: str, new_topic,
                                                                tmp_path: Path) -> None:
    # Given Redis that does not answer (a port nobody listens on)
    topic = new_topic()
    dead = f"redis://127.0.0.1:{free_port()}/0"

    async def main() -> tuple[int, dict]:
        kw = {"bootstrap_servers": kafka_bootstrap, "enable_deduplication": True, "redis_url": dead}
        async with AsyncReliableProducer(**kw, dedup_on_unavailable="fail_closed",
                                         spool_path=tmp_path / "c.db") as closed:
            # When a fail-closed producer sends: refused, nothing sent; the next send is not held up
            with pytest.raises(DeduplicationUnavailableError):
                await closed.send_message(topic, {"n": "closed"})
            with pytest.raises(DeduplicationUnavailableError):
                await closed.send_batch(topic, [{"n": i} for i in range(5)])
            refused = (await closed.get_stats())["messages_sent"]
        async with AsyncReliableProducer(**kw, spool_path=tmp_path / "o.db") as opened:
            # and a fail-open producer sends without dedup, counting the unverified checks
            await asyncio.gather(*(opened.send_message(topic, {"n": i}) for i in range(3)))
            return refused, (await opened.get_stats())["deduplication_stats"]

    refused, stats = asyncio.run(main())
    # Then
    assert refused == 0
    assert stats["unavailable"] == 3 and stats["checks"] == 3
    got = read_to_end(kafka_bootstrap, topic, at_least=3)
    assert sorted(m.value() for m in got) == [b'{"n":0}', b'{"n":1}', b'{"n":2}']
