"""librdkafka log routing: repeated lines counted, not shown; a rate limit; counts never lost."""

from __future__ import annotations

import logging

import pytest

from kafka_reliable.logs import RepeatFilter, client_logger, flush_repeats, line_kind
from tests.helpers.clock import FakeClock

FAIL = ("FAIL [rdkafka#producer-{n}] [thrd:127.0.0.1:1/bootstrap]: 127.0.0.1:1/bootstrap: "
        "Connect to ipv4#127.0.0.1:1 failed: Connection refused (after {ms}ms in state CONNECT)")


def _logger(name: str, flt: RepeatFilter) -> tuple[logging.Logger, list[str]]:
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    logger = logging.getLogger(name)
    logger.handlers[:] = [Keep()]
    logger.propagate = False
    logger.filters[:] = [flt]
    logger.setLevel(logging.DEBUG)
    return logger, seen


def test_the_same_event_from_two_clients_is_one_kind() -> None:
    assert line_kind(FAIL.format(n=1, ms=0)) == line_kind(FAIL.format(n=7, ms=12))
    assert line_kind("a 1/3 brokers are down") == line_kind("a 3/3 brokers are down")
    assert line_kind("Connect to 10.0.0.1:9092 failed") != line_kind("Connect to 10.0.0.2:9092 failed")


def test_repeats_are_counted_and_reported_after_the_window() -> None:
    # Given a filter with a 30 s window
    clock = FakeClock()
    logger, seen = _logger("t.repeats", RepeatFilter(window_s=30, clock=clock))
    # When the same line comes 200 times within the window, then once after it
    for i in range(200):
        logger.error("%s", FAIL.format(n=i % 3, ms=i % 2))
    clock.advance(31)
    logger.error("%s", FAIL.format(n=1, ms=0))
    # Then two lines: the first, and the next one with the count
    assert len(seen) == 2
    assert seen[0] == FAIL.format(n=0, ms=0)
    assert seen[1].endswith("[repeated 199 times in the last 31 s]")


def test_pending_counts_are_flushed_at_exit_once() -> None:
    # Given the shared client logger and a handler of ours
    logger = client_logger()
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "unique-xyz" in record.getMessage():  # other clients of this process log here too
                seen.append(record.getMessage())

    handler = Keep()
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        # When one line repeats 5 times
        for _ in range(5):
            logger.warning("%s", "GETPID something failed unique-xyz")
        first = flush_repeats()
        flush_repeats()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    # Then: one line, then the count of the 4 repeats, and a second flush has nothing to say
    assert seen == ["GETPID something failed unique-xyz",
                    "GETPID something failed unique-xyz [repeated 4 more times]"]
    assert first >= 4  # (other clients of this process may repeat lines of their own too)


def test_client_logger_is_one_logger_with_one_filter() -> None:
    a, b = client_logger(), client_logger()
    assert a is b
    assert sum(isinstance(f, RepeatFilter) for f in a.filters) == 1


def test_rate_limit_caps_distinct_lines_and_says_how_many_were_dropped() -> None:
    # Given at most 5 lines per 10 s
    clock = FakeClock()
    logger, seen = _logger("t.cap", RepeatFilter(window_s=10, max_lines=5, clock=clock))
    # When 50 distinct lines come at once, then one after the window
    for i in range(50):
        logger.warning("broker %d.example:9092 is down", i)
    clock.advance(10)
    logger.warning("later")
    # Then 5 lines, and the next one says 45 were dropped
    assert len(seen) == 6
    assert seen[-1] == "later [45 other librdkafka lines dropped over the rate limit]"


@pytest.mark.parametrize("level", [logging.DEBUG, logging.ERROR])
def test_levels_are_kept(level: int) -> None:
    clock = FakeClock()
    logger, seen = _logger(f"t.level{level}", RepeatFilter(clock=clock))
    logger.setLevel(logging.WARNING)
    logger.log(level, "x")
    assert seen == ([] if level < logging.WARNING else ["x"])
