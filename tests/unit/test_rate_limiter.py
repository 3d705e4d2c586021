"""RateLimiter token buckets with a fake clock whose sleep advances time."""

from __future__ import annotations

import pytest

from kafka_reliable.errors import KafkaReliableError
from kafka_reliable.health import RateLimiter, RateLimitExceededError
from tests.helpers.clock import FakeClock


def limiter(ft: FakeClock, **kw: object) -> RateLimiter:
    return RateLimiter(clock=ft, sleep=ft.sleep, **kw)  # type: ignore[arg-type]


def test_without_limits_it_never_waits() -> None:
    ft = FakeClock(0.0)
    rl = limiter(ft)
    for _ in range(1000):
        rl.acquire(1, 10_000)
    assert ft.sleeps == [] and not rl.enabled


def test_burst_then_paced_at_the_record_rate() -> None:
    # Given 10 records/s with a one-second burst
    ft = FakeClock(0.0)
    rl = limiter(ft, records_per_s=10)
    # When
    for _ in range(10):
        rl.acquire()
    # Then the burst needs no wait
    assert ft.sleeps == []
    # When one more
    rl.acquire()
    # Then it waits one token's time
    assert ft.sleeps == [pytest.approx(0.1)]


def test_long_run_rate_is_exact() -> None:
    ft = FakeClock(0.0)
    rl = limiter(ft, records_per_s=100, burst_s=0.5)
    for _ in range(1050):
        rl.acquire()
    # 50 from the burst, 1000 at 100/s
    assert ft.now == pytest.approx(10.0)


def test_bytes_per_second_limits_large_records() -> None:
    ft = FakeClock(0.0)
    rl = limiter(ft, bytes_per_s=1000)
    rl.acquire(1, 1000)
    rl.acquire(1, 500)
    assert ft.sleeps == [pytest.approx(0.5)]


def test_the_stricter_bucket_decides() -> None:
    ft = FakeClock(0.0)
    rl = limiter(ft, records_per_s=1000, bytes_per_s=100)
    rl.acquire(1, 100)
    rl.acquire(1, 100)
    assert ft.sleeps == [pytest.approx(1.0)]


def test_idle_time_refills_only_up_to_the_burst() -> None:
    ft = FakeClock(0.0)
    rl = limiter(ft, records_per_s=10)
    ft.advance(100.0)
    for _ in range(10):
        rl.acquire()
    assert ft.sleeps == []
    rl.acquire()
    assert len(ft.sleeps) == 1


def test_raise_mode_raises_with_retry_after_and_takes_nothing() -> None:
    # Given
    ft = FakeClock(0.0)
    rl = limiter(ft, records_per_s=10, mode="raise")
    for _ in range(10):
        rl.acquire()
    # When / Then
    with pytest.raises(RateLimitExceededError) as info:
        rl.acquire()
    assert info.value.retry_after_s == pytest.approx(0.1)
    assert isinstance(info.value, KafkaReliableError)
    assert ft.sleeps == []
    # When the wait has passed, exactly one token is there
    ft.advance(0.1)
    rl.acquire()
    with pytest.raises(RateLimitExceededError):
        rl.acquire()


def test_request_larger_than_the_bucket_is_admitted_when_full() -> None:
    ft = FakeClock(0.0)
    rl = limiter(ft, bytes_per_s=100, mode="raise")
    rl.acquire(1, 250)  # bucket full: admitted, into debt
    with pytest.raises(RateLimitExceededError) as info:
        rl.acquire(1, 1)
    assert info.value.retry_after_s == pytest.approx(1.51)
    assert ft.sleeps == []


def test_block_mode_pays_a_large_request_back_in_time() -> None:
    ft = FakeClock(0.0)
    rl = limiter(ft, bytes_per_s=100)
    rl.acquire(1, 250)
    assert ft.sleeps == [pytest.approx(1.5)]


@pytest.mark.parametrize("kw", [{"records_per_s": 0}, {"bytes_per_s": -5}, {"burst_s": 0}, {"mode": "drop"}])
def test_invalid_configuration_is_refused(kw: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RateLimiter(**kw)  # type: ignore[arg-type]
