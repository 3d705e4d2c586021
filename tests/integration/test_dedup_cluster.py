"""Dedup on a real three-master Redis Cluster (``dev-redis start --cluster 3``, a private one
per module): claims spread over every master, two producer processes send 10,000 records
once, and a master killed mid-run under ``fail_open`` and ``fail_closed``.

xdist: one group (``redis_cluster``) so the module's cluster is started once, on one worker.
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from kafka_reliable.aio import AsyncReliableProducer
from kafka_reliable.aio.dedup import AsyncClaims, async_client_from_url
from kafka_reliable.dedup import ProcessedMessages, RedisDeduplicator, content_key
from kafka_reliable.dedup.commands import slot_of
from kafka_reliable.dev.redis_cluster import DevRedisCluster
from kafka_reliable.errors import DeduplicationUnavailableError
from kafka_reliable.producer import ReliableKafkaProducer
from tests.conftest import _unavailable
from tests.helpers.cli import cli
from tests.helpers.kafka import read_to_end
from tests.helpers.ports import free_port
from tests.helpers.waits import wait_until
from tests.integration.dedup_helpers import two_producers_send_once

pytestmark = pytest.mark.xdist_group("redis_cluster")

#: The master the fault tests kill.
VICTIM = 2


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevRedisCluster]:
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        _unavailable(
            "the Redis Cluster tests need redis-server and redis-cli (scripts/install-redis.sh)"
        )
    c = DevRedisCluster(data_dir=tmp_path_factory.mktemp("redis-cluster"))
    c.start()
    yield c
    c.stop()


@pytest.fixture
def healthy(cluster: DevRedisCluster) -> Iterator[DevRedisCluster]:
    """The cluster, and after the test every master running again with the cluster ok."""
    yield cluster
    for i in range(cluster.masters):
        if cluster.pid(i) is None:
            cluster.restart(i)


def _node(cluster: DevRedisCluster, i: int) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=cluster.ports()[i], socket_timeout=2)


def _count(cluster: DevRedisCluster, i: int, prefix: bytes) -> int:
    return sum(1 for _ in _node(cluster, i).scan_iter(match=prefix + b"*", count=1000))


def _on_victim(cluster: DevRedisCluster, key: bytes) -> bool:
    """Whether the slot of ``key`` is served by the master the fault tests kill."""
    slot, port = slot_of(key), cluster.ports()[VICTIM]
    ranges = _node(cluster, 0).execute_command("CLUSTER SLOTS")
    return any(lo <= slot <= hi and int(owner[1]) == port for lo, hi, owner, *_ in ranges)


def _keys(n: int, tag: str) -> list[bytes]:
    return [content_key("orders", None, f"{tag}{i}".encode()) for i in range(n)]


def test_claims_spread_over_every_master_with_the_single_redis_verdicts(
    cluster: DevRedisCluster,
) -> None:
    # Given a deduplicator on the cluster URL and another on a RedisCluster client
    prefix = f"kr-cl:{random.randrange(1 << 30)}:"
    a = RedisDeduplicator(url=cluster.url, ttl_s=120, key_prefix=prefix)
    b = RedisDeduplicator(
        client=redis.cluster.RedisCluster(host="127.0.0.1", port=cluster.ports()[0]),
        ttl_s=120,
        key_prefix=prefix,
    )
    keys = _keys(3000, "spread")
    # When
    first = a.check(keys[:2000])
    second = b.check(keys)
    # Then: the verdicts a single Redis gives, every master holds claims, each with the TTL
    assert first == [True] * 2000
    assert second == [False] * 2000 + [True] * 1000
    per_node = [_count(cluster, i, prefix.encode()) for i in range(3)]
    assert sum(per_node) == 3000 and min(per_node) > 800, per_node
    rc = redis.cluster.RedisCluster(host="127.0.0.1", port=cluster.ports()[0])
    assert 0 < rc.ttl(prefix.encode() + keys[0]) <= 120
    assert b.stats()["duplicates"] == 2000 and b.stats()["unavailable"] == 0
    # And released claims (spread over many slots) can be claimed again
    a.release(keys[:500])
    assert a.check(keys[:600]) == [True] * 500 + [False] * 100
    assert a.contains(keys[:2]) == [True, True]
    assert a.ping() is True
    a.close()


def test_async_claims_on_the_cluster(cluster: DevRedisCluster) -> None:
    # Given the asyncio claims on a redis+cluster:// URL, sharing a sync backend
    prefix = f"kr-acl:{random.randrange(1 << 30)}:"
    backend = RedisDeduplicator(url=cluster.url, ttl_s=60, key_prefix=prefix)
    keys = _keys(1000, "async")

    async def run() -> tuple[list[bool], list[bool], list[bool]]:
        claims = AsyncClaims(backend, async_client_from_url(cluster.url))
        try:
            first, again = await claims.claim(keys), await claims.claim(keys)
            await claims.release(keys[:10])
            return first, again, await claims.claim(keys[:20])
        finally:
            await claims.aclose()

    # When
    first, again, after_release = asyncio.run(run())
    # Then
    assert first == [True] * 1000 and again == [False] * 1000
    assert after_release == [True] * 10 + [False] * 10
    assert backend.check(keys[:1]) == [False]  # the sync backend sees the async claims
    assert min(_count(cluster, i, prefix.encode()) for i in range(3)) > 250


def test_two_processes_send_the_same_10000_records_once(
    cluster: DevRedisCluster, kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    # Given two producer processes on the cluster (by URL), each holding the same 10,000 records
    topic = new_topic(partitions=3, prefix="dedup-cluster")
    # When both send at the same time, in batches of 500 / Then exactly 10,000 are on the topic
    two_producers_send_once(
        kafka_bootstrap, cluster.url, topic, 10_000, tmp_path, batch=500, as_client=False
    )


def _producer(bootstrap: str, url: str, policy: str, spool: Path) -> ReliableKafkaProducer:
    return ReliableKafkaProducer(
        bootstrap_servers=bootstrap,
        enable_deduplication=True,
        redis_url=url,
        dedup_on_unavailable=policy,
        spool_path=spool,
    )


def _recovers(cluster: DevRedisCluster, p: ReliableKafkaProducer, topic: str, tag: str) -> None:
    """Restart the killed master; once dedup sees it, batch ``tag`` is sent once, then refused."""
    cluster.restart(VICTIM)
    dedup = p.deduplicator
    assert dedup is not None
    wait_until(lambda: dedup.available, 20, "dedup did not see the cluster back")
    assert p.send_batch(topic, _batch(tag))["sent"] == 1000
    assert p.send_batch(topic, _batch(tag))["duplicates"] == 1000


def _batch(tag: str, n: int = 1000) -> list[dict[str, Any]]:
    return [{"batch": tag, "i": i} for i in range(n)]


def test_master_killed_fail_open_sends_everything_and_counts_unverified(
    healthy: DevRedisCluster, kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    # Given a fail_open producer that has sent batch A through the cluster
    topic = new_topic(partitions=2, prefix="dedup-kill-open")
    p = _producer(kafka_bootstrap, healthy.url, "fail_open", tmp_path / "spool.db")
    try:
        assert p.send_batch(topic, _batch("A"))["sent"] == 1000
        # When a master dies mid-run, and batch B then batch A again are sent
        healthy.kill(VICTIM)
        b = p.send_batch(topic, _batch("B"))
        a_again = p.send_batch(topic, _batch("A"))
        down = p.get_stats()["deduplication_stats"]
        # Then nothing is refused; A's repeat goes out unverified, and is counted
        assert (b["sent"], a_again["sent"], a_again["duplicates"]) == (1000, 1000, 0)
        assert p.deduplicator is not None and p.deduplicator.available is False
        assert down["unavailable"] >= 1000 + 1
        # And after the master is back, claims work again
        _recovers(healthy, p, topic, "C")
    finally:
        p.close()
    records = read_to_end(kafka_bootstrap, topic)
    tags = [json.loads(m.value() or b"null")["batch"] for m in records]
    assert (tags.count("A"), tags.count("B"), tags.count("C")) == (2000, 1000, 1000)
    assert tags.count("A") - 1000 <= down["unavailable"]  # every duplicate sent was counted


def test_master_killed_fail_closed_refuses_and_keeps_no_claim(
    healthy: DevRedisCluster, kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    # Given a fail_closed producer on the cluster
    topic = new_topic(partitions=2, prefix="dedup-kill-closed")
    p = _producer(kafka_bootstrap, healthy.url, "fail_closed", tmp_path / "spool.db")
    live = [i for i in range(3) if i != VICTIM]
    try:
        assert p.send_batch(topic, _batch("A"))["sent"] == 1000
        # When a master dies and batch B is sent (its claims on the live masters succeed first)
        healthy.kill(VICTIM)
        before = [_node(healthy, i).dbsize() for i in live]
        with pytest.raises(DeduplicationUnavailableError, match="fail_closed"):
            p.send_batch(topic, _batch("B"))
        # Then the refused batch keeps no claim on any live master
        assert [_node(healthy, i).dbsize() for i in live] == before
        with pytest.raises(DeduplicationUnavailableError):
            p.send_batch(topic, _batch("B2", 10))
        # And after recovery the same batch B is accepted as new, once
        _recovers(healthy, p, topic, "B")
    finally:
        p.close()
    tags = [json.loads(m.value() or b"null")["batch"] for m in read_to_end(kafka_bootstrap, topic)]
    assert (tags.count("A"), tags.count("B"), tags.count("B2")) == (1000, 1000, 0)


def test_async_claims_fail_closed_with_a_dead_master_undo_their_claims_then_recover(
    healthy: DevRedisCluster,
) -> None:
    # Given asyncio claims (fail_closed) that learned the slot map while every master was up
    prefix = f"kr-acl-dead:{random.randrange(1 << 30)}:"
    backend = RedisDeduplicator(
        url=healthy.url, ttl_s=60, key_prefix=prefix, on_unavailable="fail_closed",
        probe_interval_s=0.2,
    )  # fmt: skip
    keys = _keys(600, "dead")
    live = [i for i in range(3) if i != VICTIM]

    async def scenario() -> list[bool]:
        claims = AsyncClaims(backend, async_client_from_url(healthy.url))
        try:
            await claims.claim(keys[:3])
            # When a master dies: the call is refused and the live masters keep none of its claims
            healthy.kill(VICTIM)
            with pytest.raises(DeduplicationUnavailableError):
                await claims.claim(keys[3:])
            live_claims = sum(_count(healthy, i, prefix.encode()) for i in live)
            assert live_claims == sum(
                not _on_victim(healthy, prefix.encode() + k) for k in keys[:3]
            )
            # And once it is back, the same client claims again (the refused keys are new)
            await asyncio.to_thread(healthy.restart, VICTIM)
            await asyncio.to_thread(wait_until, lambda: backend.available, 20, "no recovery")
            return await claims.claim(keys[3:])
        finally:
            await claims.aclose()

    assert asyncio.run(scenario()) == [True] * 597
    backend.close()


def test_cluster_down_at_start_follows_the_policy() -> None:
    # Given a cluster URL where nothing listens
    url = f"redis+cluster://127.0.0.1:{free_port()}/0"
    keys = _keys(5, "nobody")
    # When / Then: fail_open sends (counted), fail_closed refuses, neither crashes at construction
    opened = RedisDeduplicator(url=url, on_unavailable="fail_open")
    assert opened.check(keys) == [True] * 5
    assert opened.stats()["unavailable"] == 5
    closed = RedisDeduplicator(url=url, on_unavailable="fail_closed")
    with pytest.raises(DeduplicationUnavailableError, match="redis\\+cluster://127.0.0.1"):
        closed.check(keys)
    opened.close()
    closed.close()


def test_check_chunks_on_the_cluster(cluster: DevRedisCluster) -> None:
    prefix = f"kr-chunks:{random.randrange(1 << 30)}:"
    d = RedisDeduplicator(url=cluster.url, ttl_s=60, key_prefix=prefix)
    keys = _keys(3000, "chunks")
    d.check(keys[:1000])
    out = [
        v
        for chunk in d.check_chunks([keys[i : i + 500] for i in range(0, 3000, 500)])
        for v in chunk
    ]
    assert out == [False] * 1000 + [True] * 2000
    d.close()


def test_dev_redis_cluster_verbs(
    cluster: DevRedisCluster, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # status of the running cluster (its data dir holds the ports)
    code, out, _ = cli(
        capsys, "dev-redis", "status", "--cluster", "--data-dir", str(cluster.home), "--json"
    )
    status = json.loads(out)
    assert code == 0 and status["running"] and status["url"] == cluster.url
    assert [n["cluster_state"] for n in status["nodes"]] == ["ok"] * 3
    # a data dir without a cluster: not running, exit 3; fewer than 3 masters: refused in one line
    code, out, _ = cli(capsys, "dev-redis", "status", "--cluster", "--data-dir", str(tmp_path))
    assert code == 3 and "no cluster" in out
    code, _, err = cli(capsys, "dev-redis", "start", "--cluster", "2", "--data-dir", str(tmp_path))
    assert code == 2 and err.count("\n") == 1 and "at least 3 masters" in err
    # start on the running cluster's dir: already running, nothing started
    code, out, _ = cli(capsys, "dev-redis", "start", "--cluster", "--data-dir", str(cluster.home))
    assert code == 0 and out.startswith("already running") and cluster.url in out


def test_processed_messages_on_the_cluster(cluster: DevRedisCluster) -> None:
    # Given two consumers of one group on the cluster URL
    a = ProcessedMessages(namespace=f"g-{random.randrange(1 << 30)}", redis_url=cluster.url)
    b = ProcessedMessages(namespace=a.namespace, redis_url=cluster.url)
    ids = [f"m-{i}" for i in range(200)]
    # When / Then: marks, checks and forgets behave as on one Redis
    for mid in ids[:100]:
        a.mark(mid)
    assert [b.seen(m) for m in ids[:100:10]] == [True] * 10
    assert [b.seen(m) for m in ids[100::10]] == [False] * 10
    assert [b.check_and_mark(m) for m in ids[95:105]] == [False] * 5 + [True] * 5
    b.forget("m-0")
    assert a.seen("m-0") is False and a.check_and_mark("m-0") is True
    assert b.stats()["unavailable"] == 0


def test_async_producer_dedups_on_the_cluster(
    cluster: DevRedisCluster, kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    # Given an AsyncReliableProducer with a redis+cluster:// URL
    topic = new_topic(partitions=2, prefix="dedup-cluster-aio")
    orders = [{"order": i} for i in range(300)]

    async def main() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        async with AsyncReliableProducer(
            bootstrap_servers=kafka_bootstrap,
            enable_deduplication=True,
            redis_url=cluster.url,
            spool_path=tmp_path / "a.db",
        ) as a:
            # When it sends 300 records, then the same 300 again
            first = await a.send_batch(topic, orders, key_extractor=lambda o: str(o["order"]))
            again = await a.send_batch(topic, orders, key_extractor=lambda o: str(o["order"]))
            return first, again, (await a.get_stats())["deduplication_stats"]

    first, again, stats = asyncio.run(main())
    # Then the repeat is all duplicates, and the topic holds each record once
    assert (first["sent"], again["sent"], again["duplicates"]) == (300, 0, 300)
    assert stats["unavailable"] == 0
    got = read_to_end(kafka_bootstrap, topic, at_least=300)
    assert sorted(int(m.key() or b"-1") for m in got) == list(range(300))
