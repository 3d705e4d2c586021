"""Header contract, backoff and the routing decision (pure)."""

from __future__ import annotations

import pytest

from kafka_reliable import headers as H
from kafka_reliable.backoff import backoff_ms
from kafka_reliable.config import RetryConfig, TopicNaming
from kafka_reliable.errors import classify
from kafka_reliable.routing import route_failure


def test_backoff_is_exponential_and_capped() -> None:
    rc = RetryConfig(initial_delay_ms=100, max_delay_ms=1000, backoff_multiplier=2.0, jitter=False)
    assert [backoff_ms(a, rc) for a in range(1, 7)] == [100, 200, 400, 800, 1000, 1000]
    assert backoff_ms(10_000, rc) == 1000
    with pytest.raises(ValueError):
        backoff_ms(0, rc)


def test_jitter_stays_within_half_and_full_delay() -> None:
    rc = RetryConfig(initial_delay_ms=1000, max_delay_ms=1000, jitter=True)
    assert backoff_ms(1, rc, rand=lambda: 0.0) == 500
    assert backoff_ms(1, rc, rand=lambda: 0.999999) == 999


def _route(attempt: int, code: str, **kw):  # type: ignore[no-untyped-def]
    return route_failure(
        topic="orders", classification=classify(code), error_message="boom", attempt=attempt,
        retry_config=RetryConfig(max_retries=2, initial_delay_ms=100, jitter=False),
        naming=TopicNaming(), now_ms=1_000_000, headers=[("user", b"\x00\xff")], message_id="m-1", **kw,
    )


def test_retriable_with_attempts_left_goes_to_retry() -> None:
    r = _route(1, "_MSG_TIMED_OUT")
    h = dict(r.headers)
    assert r.to_retry and r.target_topic == "orders.retry"
    assert h[H.NEXT_ATTEMPT_AT] == b"1000100" and h[H.ATTEMPT] == b"1"
    assert h["user"] == b"\x00\xff" and h[H.MESSAGE_ID] == b"m-1"
    assert H.DLQ_REASON not in h


def test_exhausted_and_non_retriable_go_to_dlq() -> None:
    r = _route(3, "_MSG_TIMED_OUT", first_failure_at_ms=5)
    h = dict(r.headers)
    assert r.target_topic == "orders.dlq" and h[H.DLQ_REASON] == b"retries_exhausted"
    assert h[H.FIRST_FAILURE_AT] == b"5" and h[H.LAST_FAILURE_AT] == b"1000000"
    r2 = _route(1, "MSG_SIZE_TOO_LARGE")
    assert dict(r2.headers)[H.DLQ_REASON] == b"non_retriable"
    assert dict(r2.headers)[H.ERROR_RETRIABLE] == b"false"
    r3 = _route(1, "_MSG_TIMED_OUT", poison=True)
    assert r3.target_topic == "orders.dlq" and dict(r3.headers)[H.DLQ_REASON] == b"poison"


def test_error_headers_are_replaced_not_appended() -> None:
    first = _route(1, "_MSG_TIMED_OUT").headers
    again = route_failure(
        topic="orders", classification=classify("REQUEST_TIMED_OUT"), error_message="again", attempt=2,
        retry_config=RetryConfig(), naming=TopicNaming(), now_ms=2_000_000, headers=first,
    ).headers
    names = [k for k, _ in again]
    assert len(names) == len(set(names)), names
    assert dict(again)[H.ERROR_CODE] == b"REQUEST_TIMED_OUT"
    assert dict(again)[H.MESSAGE_ID] == b"m-1"  # sticky


def test_read_failure_round_trip_and_garbage() -> None:
    f = H.read_failure(_route(1, "_MSG_TIMED_OUT").headers)
    assert f.original_topic == "orders" and f.attempt == 1 and f.next_attempt_at_ms == 1_000_100
    with pytest.raises(ValueError, match="original.topic"):
        H.read_failure([(H.ATTEMPT, b"1")])
    with pytest.raises(ValueError):
        H.read_failure([(H.ORIGINAL_TOPIC, b"o"), (H.ATTEMPT, b"x1")])


def test_error_message_truncated_on_char_boundary() -> None:
    raw = H.truncate_utf8("é" * 2000, 1024)
    assert len(raw) <= 1024 and raw.endswith(b"...")
    raw.decode("utf-8")


def test_republish_headers_keep_user_and_id_only() -> None:
    hs = _route(1, "_MSG_TIMED_OUT").headers
    out = dict(H.republish_headers(hs, attempt=1))
    assert out == {"user": b"\x00\xff", H.MESSAGE_ID: b"m-1", H.ATTEMPT: b"1"}
