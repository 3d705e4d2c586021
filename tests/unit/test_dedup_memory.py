"""Memory dedup backend, content keys, the factory and the consumer helper (memory side)."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from kafka_reliable.dedup import (
    MemoryDeduplicator,
    ProcessedMessages,
    RedisDeduplicator,
    content_key,
    derive_key,
    make_deduplicator,
    message_id_of,
)
from kafka_reliable.errors import ConfigurationError
from tests.helpers.clock import FakeClock


def test_content_key_is_16_bytes_and_stable() -> None:
    # Given / When
    a = content_key("orders", b"k", b"v")
    # Then
    assert len(a) == 16
    assert a == content_key("orders", b"k", b"v")


@pytest.mark.parametrize(
    ("left", "right"),
    [
        (("ab", b"c", b"d"), ("a", b"bc", b"d")),
        (("a", b"bc", b"d"), ("a", b"b", b"cd")),
        (("a", None, b"v"), ("a", b"", b"v")),
        (("a", b"", b"v"), ("a", None, b"v")),
        (("t", b"k", b"v"), ("u", b"k", b"v")),
        (("t", b"k1", b"v"), ("t", b"k2", b"v")),
    ],
)
def test_content_key_separates_parts(left: tuple, right: tuple) -> None:
    # Given two triples whose concatenations could be confused
    # When / Then
    assert content_key(*left) != content_key(*right)


def test_derive_key_uses_caller_function_verbatim() -> None:
    # Given
    def by_order_id(topic: str, key: bytes | None, value: bytes) -> str:
        return f"{topic}:{value[:3].decode()}"

    # When / Then
    assert derive_key("o", None, b"123-rest", by_order_id) == b"o:123"
    assert derive_key("o", None, b"x", lambda t, k, v: b"raw") == b"raw"
    assert derive_key("o", b"k", b"v") == content_key("o", b"k", b"v")
    with pytest.raises(TypeError, match="bytes or str"):
        derive_key("o", None, b"x", lambda t, k, v: 42)  # type: ignore[arg-type,return-value]


def test_check_claims_then_reports_duplicates_within_one_batch() -> None:
    # Given
    d = MemoryDeduplicator(ttl_s=60)
    # When
    first = d.check([b"a", b"b", b"a"])
    second = d.check([b"b", b"c"])
    # Then
    assert first == [True, True, False]
    assert second == [False, True]
    assert d.stats() == {
        "checks": 5, "duplicates": 2, "duplicate_rate": 0.4, "backend": "memory", "unavailable": 0
    }


def test_ttl_expiry_lets_the_key_through_again() -> None:
    # Given
    clock = FakeClock()
    d = MemoryDeduplicator(ttl_s=10, clock=clock)
    assert d.check([b"k"]) == [True]
    # When
    clock.advance(9.9)
    before = d.check([b"k"])
    clock.advance(0.1)
    after = d.check([b"k"])
    # Then: a duplicate hit does not extend the TTL; at exactly ttl_s the claim is gone
    assert before == [False]
    assert after == [True]
    assert d.check([b"k"]) == [False]


def test_expired_entries_are_purged() -> None:
    # Given
    clock = FakeClock()
    d = MemoryDeduplicator(ttl_s=1, clock=clock)
    d.check([b"%d" % i for i in range(100)])
    # When
    clock.advance(2)
    d.check([b"fresh"])
    # Then
    assert len(d) == 1


def test_size_bound_evicts_least_recently_used() -> None:
    # Given a full table of 3 where "a" was hit again recently
    d = MemoryDeduplicator(ttl_s=60, max_entries=3)
    d.check([b"a", b"b", b"c"])
    assert d.check([b"a"]) == [False]
    # When a fourth key arrives
    d.check([b"d"])
    # Then the least recently used ("b") was evicted, the others stay
    assert len(d) == 3
    assert d.contains([b"a", b"b", b"c", b"d"]) == [True, False, True, True]
    assert d.check([b"b"]) == [True]


def test_size_bound_holds_under_volume() -> None:
    # Given
    d = MemoryDeduplicator(ttl_s=60, max_entries=1000)
    # When
    for start in range(0, 50_000, 5_000):
        d.check([b"%d" % i for i in range(start, start + 5_000)])
    # Then
    assert len(d) == 1000
    assert d.contains([b"49999", b"0"]) == [True, False]


def test_release_forgets_keys() -> None:
    # Given
    d = MemoryDeduplicator()
    d.check([b"x", b"y"])
    # When
    d.release([b"x", b"missing"])
    # Then
    assert d.check([b"x", b"y"]) == [True, False]


def test_threads_hammering_the_same_keys_get_exactly_one_true_per_key() -> None:
    # Given 8 threads, each checking the same 2,000 keys in a different order and batch size
    d = MemoryDeduplicator(ttl_s=60)
    keys = [content_key("t", None, b"%d" % i) for i in range(2000)]
    wins: list[list[bytes]] = [[] for _ in range(8)]
    start = threading.Barrier(8)

    def hammer(n: int) -> None:
        order = keys[n::1] + keys[:n] if n % 2 else list(reversed(keys))
        start.wait()
        step = 1 + n * 7
        for i in range(0, len(order), step):
            batch = order[i : i + step]
            wins[n].extend(k for k, ok in zip(batch, d.check(batch), strict=True) if ok)

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(8)]
    # When
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Then
    all_wins = [k for w in wins for k in w]
    assert len(all_wins) == len(keys)
    assert set(all_wins) == set(keys)
    stats = d.stats()
    assert stats["checks"] == 8 * len(keys)
    assert stats["duplicates"] == 7 * len(keys)


def test_factory_picks_the_backend_and_validates() -> None:
    # Given / When
    mem = make_deduplicator(ttl_s=5, max_entries=10, key_fn=lambda t, k, v: "fixed")
    red = make_deduplicator(redis_url="redis://127.0.0.1:1/0")
    # Then
    assert isinstance(mem, MemoryDeduplicator)
    assert mem.key_for("t", None, b"a") == b"fixed"
    assert isinstance(red, RedisDeduplicator)
    assert red.backend == "redis"
    red.close()
    with pytest.raises(ConfigurationError):
        make_deduplicator(ttl_s=0)
    with pytest.raises(ConfigurationError):
        make_deduplicator(redis_url="redis://x", on_unavailable="maybe")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        make_deduplicator(redis_url="redis://x", redis_client=object())


def test_redis_url_password_never_shows() -> None:
    # Given / When
    d = RedisDeduplicator(url="redis://user:s3cret@127.0.0.1:1/0")
    with pytest.raises(ConfigurationError) as bad:
        RedisDeduplicator(url="http://user:s3cret@host/0")
    # Then
    assert "s3cret" not in d.where
    assert "s3cret" not in str(bad.value)
    d.close()


def test_processed_messages_memory() -> None:
    # Given
    clock = FakeClock()
    pm = ProcessedMessages(namespace="g1", ttl_s=30, clock=clock)
    # When / Then
    assert pm.backend == "memory"
    assert pm.seen("m-1") is False
    pm.mark("m-1")
    assert pm.seen("m-1") is True
    assert pm.check_and_mark("m-2") is True
    assert pm.check_and_mark("m-2") is False
    pm.forget("m-2")
    assert pm.check_and_mark(b"m-2") is True
    clock.advance(31)
    assert pm.seen("m-1") is False
    with pytest.raises(TypeError, match="message id"):
        pm.seen(None)  # type: ignore[arg-type]


def test_message_id_of_reads_the_header() -> None:
    # Given
    with_id = SimpleNamespace(headers=lambda: [("a", b"1"), ("kafka_reliable.message.id", b"p-7")])
    without = SimpleNamespace(headers=lambda: None)
    # When / Then
    assert message_id_of(with_id) == "p-7"
    assert message_id_of(without) is None
