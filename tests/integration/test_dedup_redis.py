"""Redis dedup on a real Redis: claims across instances, TTL, one round trip per batch,
outage (fail-open / fail-closed) and recovery, the consumer helper."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from kafka_reliable.dedup import (
    ProcessedMessages,
    RedisDeduplicator,
    content_key,
    make_deduplicator,
)
from kafka_reliable.errors import DeduplicationUnavailableError
from tests.conftest import _unavailable
from tests.helpers.ports import free_port
from tests.helpers.waits import wait_until

CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


class PrivateRedis:
    """A redis-server of our own on a free port, so a test may stop it and read its stats."""

    def __init__(self, home: Path) -> None:
        self.port = free_port()
        self.home = home
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            reason = "the Redis outage tests need a redis-server of their own (apt-get install redis-server)"
            _unavailable(reason)  # fails under CI=true, skips on a laptop
        self.proc = subprocess.Popen(
            [
                exe,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.home),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_timeout=0.5)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"private redis-server did not answer on {self.port}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def prefix() -> str:
    return f"kr-test:{uuid.uuid4().hex[:8]}:"


class CountingConnection(redis.Connection):
    """A real connection that counts how many times it writes to the socket."""

    writes = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.writes += 1
        super().send_packed_command(command, check_health)


def _keys(n: int, tag: str = "") -> list[bytes]:
    return [content_key("orders", None, f"{tag}{i}".encode()) for i in range(n)]


def test_claims_are_shared_between_instances_with_set_nx_ex(redis_url: str, prefix: str) -> None:
    # Given two deduplicators on two separate clients
    a = RedisDeduplicator(url=redis_url, ttl_s=120, key_prefix=prefix)
    b = RedisDeduplicator(client=redis.Redis.from_url(redis_url), ttl_s=120, key_prefix=prefix)
    keys = _keys(5)
    # When
    first = a.check(keys[:3])
    second = b.check(keys)
    # Then
    assert first == [True, True, True]
    assert second == [False, False, False, True, True]
    raw = redis.Redis.from_url(redis_url)
    ttl = raw.ttl(prefix.encode() + keys[0])
    assert 0 < ttl <= 120
    assert b.stats() == {
        "checks": 5,
        "duplicates": 3,
        "duplicate_rate": 0.6,
        "backend": "redis",
        "unavailable": 0,
    }
    raw.delete(*(prefix.encode() + k for k in keys))


def test_ttl_expiry_lets_a_record_through_again(redis_url: str, prefix: str) -> None:
    # Given a claim with a 1 s TTL
    d = make_deduplicator(redis_url=redis_url, ttl_s=1, key_prefix=prefix)
    key = content_key("t", b"k", b"v")
    assert d.check([key]) == [True]
    assert d.check([key]) == [False]
    # When
    time.sleep(1.3)
    # Then
    assert d.check([key]) == [True]


def test_release_lets_the_same_content_be_sent_again(redis_url: str, prefix: str) -> None:
    # Given
    d = RedisDeduplicator(url=redis_url, key_prefix=prefix)
    keys = _keys(3, "rel")
    d.check(keys)
    # When
    d.release(keys[:2])
    # Then
    assert d.check(keys) == [True, True, False]
    d.release(keys)


def test_batch_of_10000_with_10_percent_duplicates_is_one_round_trip(
    private_redis: PrivateRedis, prefix: str
) -> None:
    # Given 9,000 distinct keys plus 1,000 repeats of some of them, shuffled
    client = redis.Redis(
        connection_pool=redis.ConnectionPool.from_url(
            private_redis.url, connection_class=CountingConnection
        )
    )
    d = RedisDeduplicator(client=client, key_prefix=prefix)
    unique = _keys(9000, "batch")
    rng = random.Random(7)
    batch = unique + rng.sample(unique, 1000)
    rng.shuffle(batch)
    client.ping()
    client.config_resetstat()
    writes_before = CountingConnection.writes
    # When
    result = d.check(batch)
    # Then
    writes = CountingConnection.writes - writes_before
    set_calls = client.info("commandstats")["cmdstat_set"]["calls"]
    assert sum(result) == 9000
    assert {k for k, ok in zip(batch, result, strict=True) if ok} == set(unique)
    assert set_calls == 10_000
    assert writes == 1
    assert d.stats()["duplicates"] == 1000
    assert client.dbsize() == 9000


def test_closed_port_fails_open_and_counts(prefix: str) -> None:
    # Given a Redis URL on which nothing listens
    d = RedisDeduplicator(url=f"redis://:pw@127.0.0.1:{free_port()}/0", key_prefix=prefix)
    keys = _keys(4, "closed")
    # When
    first = d.check(keys)
    again = d.check(keys)
    # Then every record may be sent, and none was verified
    assert first == [True] * 4
    assert again == [True] * 4
    assert d.available is False
    assert d.stats()["unavailable"] == 8
    d.close()


def test_outage_fail_open_then_recovery(
    private_redis: PrivateRedis, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a working dedup with one claim made
    d = RedisDeduplicator(url=private_redis.url, key_prefix=prefix, probe_interval_s=0.1)
    keys = _keys(10, "open")
    assert d.check(keys[:5]) == [True] * 5
    # When Redis stops
    private_redis.stop()
    during = d.check(keys)
    # Then sends go through (fail-open), counted, state flips once, password-free log
    assert during == [True] * 10
    assert d.available is False
    assert d.stats()["unavailable"] == 10
    assert sum("is unavailable" in r.getMessage() for r in caplog.records) == 1
    # When Redis is back (empty: the old claims are gone with the process)
    private_redis.start()
    wait_until(lambda: d.available, 10, "dedup did not reconnect by itself")
    # Then dedup works again without any call from us
    assert d.check(keys[:2] + keys[:1]) == [True, True, False]
    assert any("answers again" in r.getMessage() for r in caplog.records)


def test_outage_fail_closed_raises_then_recovers(private_redis: PrivateRedis, prefix: str) -> None:
    # Given
    d = RedisDeduplicator(
        url=private_redis.url, key_prefix=prefix, on_unavailable="fail_closed", probe_interval_s=0.1
    )
    keys = _keys(3, "closed")
    # When Redis stops
    private_redis.stop()
    # Then
    with pytest.raises(
        DeduplicationUnavailableError, match="fail_closed.*none of the 3 records was sent"
    ):
        d.check(keys)
    with pytest.raises(DeduplicationUnavailableError):
        d.check(keys)
    assert d.stats()["unavailable"] == 6
    # When Redis is back
    private_redis.start()
    wait_until(lambda: d.available, 10, "dedup did not reconnect by itself")
    # Then nothing had been claimed: the same records pass once
    assert d.check(keys) == [True, True, True]
    assert d.check(keys) == [False, False, False]


class BreaksAfterWrite(redis.Connection):
    """A real connection whose replies are lost once: Redis applied the batch, we saw an error."""

    armed = False

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        super().send_packed_command(command, check_health)
        if BreaksAfterWrite.armed:
            BreaksAfterWrite.armed = False
            time.sleep(0.05)  # Redis has applied the batch
            self._sock.close()  # type: ignore[union-attr]  # its replies are lost


def test_fail_closed_undoes_only_its_own_claims(redis_url: str, prefix: str) -> None:
    # Given one key already claimed by another producer
    other = RedisDeduplicator(url=redis_url, key_prefix=prefix)
    keys = _keys(4, "undo")
    assert other.check(keys[:1]) == [True]
    client = redis.Redis(
        connection_pool=redis.ConnectionPool.from_url(redis_url, connection_class=BreaksAfterWrite)
    )
    d = RedisDeduplicator(client=client, key_prefix=prefix, on_unavailable="fail_closed")
    client.ping()
    # When the batch reaches Redis but the replies are lost
    BreaksAfterWrite.armed = True
    with pytest.raises(DeduplicationUnavailableError):
        d.check(keys)
    # Then the three claims this batch made are undone, the other producer's claim stays
    assert other.check(keys) == [False, True, True, True]
    other.release(keys)


def test_processed_messages_on_redis(redis_url: str, prefix: str) -> None:
    # Given two consumers of one group and one of another group
    a = ProcessedMessages(namespace="group-a", redis_url=redis_url, key_prefix=prefix)
    a2 = ProcessedMessages(
        namespace="group-a", redis_client=redis.Redis.from_url(redis_url), key_prefix=prefix
    )
    b = ProcessedMessages(namespace="group-b", redis_url=redis_url, key_prefix=prefix)
    # When / Then
    assert a.check_and_mark("m-1") is True
    assert a2.check_and_mark("m-1") is False
    assert b.check_and_mark("m-1") is True
    assert a2.seen("m-2") is False
    a.mark("m-2")
    assert a2.seen("m-2") is True
    a.forget("m-2")
    assert a2.seen("m-2") is False
    assert a.backend == "redis"


def test_processed_messages_fail_open_answers_not_seen(prefix: str) -> None:
    # Given
    pm = ProcessedMessages(redis_url=f"redis://127.0.0.1:{free_port()}/0", key_prefix=prefix)
    # When / Then: handle it (at-least-once), never raise
    assert pm.seen("m") is False
    pm.mark("m")
    assert pm.check_and_mark("m") is True
    assert pm.available is False


def test_check_chunks_gives_check_verdicts_and_releases_a_chunk_left_untaken(
    redis_url: str, prefix: str
) -> None:
    # Given 3 chunks, some keys already claimed
    d = RedisDeduplicator(url=redis_url, ttl_s=60, key_prefix=prefix)
    keys = _keys(300, "chunks")
    d.check(keys[::7])
    chunks = [keys[0:100], keys[100:200], keys[200:300]]
    # When every chunk is taken
    verdicts = [v for chunk in d.check_chunks(chunks) for v in chunk]
    # Then the verdicts are check()'s
    assert verdicts == [i % 7 != 0 for i in range(300)]
    # And when the caller stops after the first chunk of new keys
    fresh = _keys(200, "untaken")
    it = d.check_chunks([fresh[:100], fresh[100:]])
    assert next(it) == [True] * 100
    it.close()
    # Then the second chunk's claims (written ahead) were given back
    assert d.contains(fresh[100:]) == [False] * 100
    assert d.contains(fresh[:100]) == [True] * 100
    d.close()
