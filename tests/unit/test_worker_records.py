"""Pure units of the worker's record decisions: a target that can never be written is poison."""

from __future__ import annotations

import pytest

from kafka_reliable import headers as h
from kafka_reliable.config import RetryConfig, TopicNaming
from kafka_reliable.headers import Failure, failure_headers
from kafka_reliable.worker import records

NAMING = TopicNaming()


def _headers(target: str) -> h.Headers:
    f = Failure(original_topic=target, attempt=1, error_code="_MSG_TIMED_OUT", error_class="KafkaTimeoutError",
                error_message="timed out", retriable=True, first_failure_at_ms=1, last_failure_at_ms=1,
                next_attempt_at_ms=5_000)
    return failure_headers(None, f, message_id="m-1")


@pytest.mark.parametrize("target", ["bad topic!", ".", "..", "x" * 250, "x" * 244, "é"])
def test_a_target_that_can_never_be_written_is_poison_for_the_retry_topics_source(target: str) -> None:
    # Given: a .retry record of "shop" whose original.topic is illegal, or whose companions would be
    # When
    rec = records.decode(tp=("shop.retry", 0), offset=7, gen=1, key=None, value=b"v", timestamp_ms=0,
                         headers=_headers(target), naming=NAMING, now_ms=42)
    route = records.poison_route(rec, retry_config=RetryConfig(), naming=NAMING, now_ms=42)
    # Then: due now, straight to shop.dlq, non-retriable, the bad name in the message
    assert rec.poison_reason is not None and repr(target)[:60] in rec.poison_reason
    assert rec.due_ms == 42 and rec.source_topic == "shop"
    assert route.target_topic == "shop.dlq" and not route.to_retry
    assert h.get(route.headers, h.DLQ_REASON) == b"poison"
    assert h.get(route.headers, h.ERROR_RETRIABLE) == b"false"
    assert h.get(route.headers, h.MESSAGE_ID) == b"m-1"
    assert b"shop.retry[0]@7" in (h.get(route.headers, h.ERROR_MESSAGE) or b"")


@pytest.mark.parametrize("target", ["orders", "a.b-c_D9", "x" * 243])
def test_a_legal_target_is_not_poison(target: str) -> None:
    rec = records.decode(tp=("shop.retry", 0), offset=0, gen=1, key=None, value=b"v", timestamp_ms=0,
                         headers=_headers(target), naming=NAMING, now_ms=42)
    assert rec.poison_reason is None and rec.due_ms == 5_000 and rec.source_topic == target


@pytest.mark.parametrize("extra", [
    [], [("trace", b"\x00\x01"), ("nullval", None)], [(h.REPLAY_COUNT, b"2")], [(h.MESSAGE_ID, b"later-id")],
])
def test_republish_headers_are_those_of_the_header_contract(extra: list[tuple[str, bytes | None]]) -> None:
    # Given: user headers, ours, and variations (a replay count, a second message id)
    hdrs = [("app", b"x"), *_headers("orders"), *extra]
    # When
    rec = records.decode(tp=("orders.retry", 0), offset=0, gen=1, key=None, value=b"v", timestamp_ms=0,
                         headers=hdrs, naming=NAMING, now_ms=0)
    # Then: byte for byte what headers.republish_headers writes
    assert records.republish_headers(rec) == h.republish_headers(hdrs, attempt=1)


def test_garbled_failure_details_do_not_stop_a_republish_but_make_a_failure_poison() -> None:
    # Given: the target, attempt and due time read fine, the first-failure time does not
    hdrs = [(k, b"soon" if k == h.FIRST_FAILURE_AT else v) for k, v in _headers("orders")]
    rec = records.decode(tp=("orders.retry", 0), offset=0, gen=1, key=None, value=b"v", timestamp_ms=0,
                         headers=hdrs, naming=NAMING, now_ms=0)
    assert rec.poison_reason is None and rec.source_topic == "orders"
    # When its republish fails
    route = records.failure_route(rec, error_name="_MSG_TIMED_OUT", error_message="t", fatal=False,
                                  retry_config=RetryConfig(), naming=NAMING, now_ms=9)
    # Then it is poison for orders.dlq, not retried
    assert route.target_topic == "orders.dlq" and h.get(route.headers, h.DLQ_REASON) == b"poison"
    assert rec.poison_reason and h.FIRST_FAILURE_AT in rec.poison_reason
