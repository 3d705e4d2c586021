"""Dedup on a real three-master Redis Cluster (``dev-redis start --cluster 3``, a private one
per module): claims spread over every master, two producer processes send 10,000 records
once, and a master killed mid-run under ``fail_open`` and ``fail_closed``.

xdist: one group (``redis_cluster``) so the module's cluster is started once, on one worker.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import random
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from kafka_reliable.aio.dedup import AsyncClaims, async_client_from_url
from kafka_reliable.dedup import RedisDeduplicator, content_key
from kafka_reliable.dedup.commands import slot_of
from kafka_reliable.dev.redis_cluster import DevRedisCluster
from kafka_reliable.errors import DeduplicationUnavailableError
from kafka_reliable.producer import ReliableKafkaProducer
from tests.conftest import _unavailable
from tests.helpers.cli import cli
from tests.helpers.kafka import read_to_end
from tests.helpers.ports import free_port
from tests.helpers.waits import wait_until

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


def _send_in_process(
    bootstrap: str, url: str, topic: str, n: int, seed: int, barrier: Any, out: Any, spool: str
) -> None:
    """One producer process: the same ``n`` records, in its own order, in batches of 500."""
    values = [{"order": i} for i in range(n)]
    random.Random(seed).shuffle(values)
    producer = ReliableKafkaProducer(
        bootstrap_servers=bootstrap, enable_deduplication=True, redis_url=url, spool_path=spool
    )
    sent = duplicates = 0
    try:
        barrier.wait(timeout=60)
        for i in range(0, n, 500):
            result = producer.send_batch(
                topic, values[i : i + 500], key_extractor=lambda v: str(v["order"])
            )
            sent += result["sent"]
            duplicates += result["duplicates"]
    finally:
        producer.close()
    out.put((sent, duplicates))


def test_two_processes_send_the_same_10000_records_once(
    cluster: DevRedisCluster, kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    # Given two producer processes on the cluster, each holding the same 10,000 records
    topic = new_topic(partitions=3, prefix="dedup-cluster")
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(
            target=_send_in_process,
            args=(
                kafka_bootstrap,
                cluster.url,
                topic,
                10_000,
                seed,
                barrier,
                out,
                str(tmp_path / f"spool-{seed}.db"),
            ),
        )
        for seed in (1, 2)
    ]
    # When both send at the same time
    for p in procs:
        p.start()
    results = [out.get(timeout=180) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    # Then exactly 10,000 records are on the topic (read to the watermarks), each once
    assert [p.exitcode for p in procs] == [0, 0]
    assert sum(s for s, _ in results) == 10_000
    assert sum(d for _, d in results) == 10_000
    orders = sorted(
        json.loads(m.value() or b"null")["order"] for m in read_to_end(kafka_bootstrap, topic)
    )
    assert orders == list(range(10_000))


def _producer(bootstrap: str, url: str, policy: str, spool: Path) -> ReliableKafkaProducer:
    return ReliableKafkaProducer(
        bootstrap_servers=bootstrap,
        enable_deduplication=True,
        redis_url=url,
        dedup_on_unavailable=policy,
        spool_path=spool,
    )


def _wait_available(p: ReliableKafkaProducer) -> None:
    dedup = p.deduplicator
    assert dedup is not None
    wait_until(lambda: dedup.available, 20, "dedup did not see the cluster back")


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
        healthy.restart(VICTIM)
        _wait_available(p)
        assert p.send_batch(topic, _batch("C"))["sent"] == 1000
        assert p.send_batch(topic, _batch("C"))["duplicates"] == 1000
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
        healthy.restart(VICTIM)
        _wait_available(p)
        assert p.send_batch(topic, _batch("B"))["sent"] == 1000
        assert p.send_batch(topic, _batch("B"))["duplicates"] == 1000
    finally:
        p.close()
    tags = [json.loads(m.value() or b"null")["batch"] for m in read_to_end(kafka_bootstrap, topic)]
    assert (tags.count("A"), tags.count("B"), tags.count("B2")) == (1000, 1000, 0)


def test_async_claims_fail_closed_with_a_dead_master_undo_their_claims(
    healthy: DevRedisCluster,
) -> None:
    # Given asyncio claims (fail_closed) and a dead master
    prefix = f"kr-acl-dead:{random.randrange(1 << 30)}:"
    backend = RedisDeduplicator(
        url=healthy.url, ttl_s=60, key_prefix=prefix, on_unavailable="fail_closed"
    )
    keys = _keys(600, "dead")

    async def claim_with_dead_master() -> None:
        claims = AsyncClaims(backend, async_client_from_url(healthy.url))
        try:
            await claims.claim(keys[:3])  # learns the slot map while every master is up
            healthy.kill(VICTIM)
            await claims.claim(keys[3:])
        finally:
            await claims.aclose()

    # When / Then: refused, and the live masters keep none of the refused call's claims
    with pytest.raises(DeduplicationUnavailableError):
        asyncio.run(claim_with_dead_master())
    live_claims = sum(_count(healthy, i, prefix.encode()) for i in range(3) if i != VICTIM)
    first_three_live = sum(1 for k in keys[:3] if not _on_victim(healthy, prefix.encode() + k))
    assert live_claims == first_three_live
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
