"""CircuitBreaker state machine with a controllable clock."""

from __future__ import annotations

import pytest

from kafka_reliable.errors import KafkaReliableError
from kafka_reliable.health import CircuitBreaker, CircuitOpenError
from tests.helpers.clock import FakeClock


def make(**kw: object) -> tuple[CircuitBreaker, FakeClock, list[tuple[str, str]]]:
    clock = FakeClock(100.0)
    changes: list[tuple[str, str]] = []
    cfg: dict[str, object] = {"failure_rate_threshold": 0.5, "min_calls": 10, "window_s": 30.0,
                              "open_duration_s": 10.0, "half_open_max_calls": 3}
    cfg.update(kw)
    b = CircuitBreaker(clock=clock, on_state_change=lambda o, n: changes.append((o, n)), **cfg)  # type: ignore[arg-type]
    return b, clock, changes


def trip(b: CircuitBreaker) -> None:
    for _ in range(5):
        b.record(True)
    for _ in range(5):
        b.record(False)


def test_closed_allows_and_stays_closed_below_min_calls() -> None:
    b, _, changes = make()
    for _ in range(9):
        b.record(False)
    assert b.state == "closed" and b.allow()
    assert changes == []


def test_failure_rate_at_threshold_over_min_calls_opens() -> None:
    # Given / When
    b, _, changes = make()
    trip(b)
    # Then
    assert b.state == "open"
    assert not b.allow()
    assert changes == [("closed", "open")]
    assert b.snapshot()["open_reason"] == "failure_rate"


def test_failure_rate_below_threshold_stays_closed() -> None:
    b, _, _ = make()
    for _ in range(60):
        b.record(True)
    for _ in range(40):
        b.record(False)
    assert b.state == "closed"


def test_old_failures_leave_the_window() -> None:
    b, clock, _ = make()
    for _ in range(9):
        b.record(False)
    clock.advance(31)
    for _ in range(9):
        b.record(True)
    b.record(False)  # 1 of 10 in the window
    assert b.state == "closed"


def test_open_becomes_half_open_after_duration_and_admits_limited_trials() -> None:
    # Given
    b, clock, changes = make()
    trip(b)
    clock.advance(9.9)
    assert not b.allow()
    # When
    clock.advance(0.1)
    # Then
    assert b.state == "half_open"
    assert [b.allow() for _ in range(5)] == [True, True, True, False, False]
    assert changes == [("closed", "open"), ("open", "half_open")]


def test_half_open_successes_close_it() -> None:
    b, clock, changes = make()
    trip(b)
    clock.advance(10)
    for _ in range(3):
        assert b.allow()
    b.record(True)
    b.record(True)
    assert b.state == "half_open"
    b.record(True)
    assert b.state == "closed"
    assert b.allow()
    assert changes[-1] == ("half_open", "closed")
    assert b.snapshot()["calls_in_window"] == 0  # the window restarts


def test_half_open_failure_reopens_and_restarts_the_timer() -> None:
    b, clock, changes = make()
    trip(b)
    clock.advance(10)
    assert b.allow()
    b.record(False)
    assert b.state == "open"
    assert b.snapshot()["open_reason"] == "probe_failed"
    clock.advance(9)
    assert not b.allow()
    clock.advance(1)
    assert b.allow()
    assert changes == [("closed", "open"), ("open", "half_open"), ("half_open", "open"), ("open", "half_open")]


def test_unreachable_opens_and_reachable_probes_at_once() -> None:
    b, _, changes = make()
    b.record_unreachable()
    assert b.state == "open" and not b.allow()
    b.record_reachable()
    assert b.state == "half_open"
    assert changes == [("closed", "open"), ("open", "half_open")]


def test_reachable_does_not_shorten_a_failure_rate_opening() -> None:
    b, _, _ = make()
    trip(b)
    b.record_reachable()
    assert b.state == "open"


def test_reachable_while_closed_and_records_while_open_are_ignored() -> None:
    b, _, changes = make()
    b.record_reachable()
    b.record_unreachable()
    b.record_unreachable()
    for _ in range(20):
        b.record(True)
    assert b.state == "open"
    assert changes == [("closed", "open")]


def test_unreachable_in_half_open_reopens() -> None:
    b, clock, _ = make()
    trip(b)
    clock.advance(10)
    assert b.state == "half_open"
    b.record_unreachable()
    assert b.state == "open"


def test_raising_listener_does_not_break_the_breaker() -> None:
    b, _, _ = make()

    def bad(old: str, new: str) -> None:
        raise RuntimeError("listener bug")

    b.add_listener(bad)
    b.record_unreachable()
    assert b.state == "open"


@pytest.mark.parametrize("kw", [{"failure_rate_threshold": 0}, {"min_calls": 0}, {"window_s": 0},
                                {"half_open_max_calls": 0}, {"mode": "drop"}, {"open_duration_s": -1}])
def test_invalid_configuration_is_refused(kw: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(**kw)  # type: ignore[arg-type]


def test_modes_and_error_type() -> None:
    assert CircuitBreaker().mode == "spool"
    assert CircuitBreaker(mode="fail_fast").mode == "fail_fast"
    assert issubclass(CircuitOpenError, KafkaReliableError)
