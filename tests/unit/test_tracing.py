"""W3C trace context: parsing, carrying across hops, optional OpenTelemetry spans."""

from __future__ import annotations

import pytest

from kafka_reliable import headers as h
from kafka_reliable import tracing
from kafka_reliable.tracing import (
    TraceParent,
    carry_trace_context,
    new_traceparent,
    parse_traceparent,
    trace_headers,
)

TP = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TS = b"rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"


def test_parse_valid_traceparent() -> None:
    tp = parse_traceparent(TP)
    assert tp == TraceParent(trace_id="4bf92f3577b34da6a3ce929d0e0e4736", span_id="00f067aa0ba902b7", flags=1)
    assert tp is not None and tp.sampled and tp.header() == TP


@pytest.mark.parametrize("bad", [
    None, b"", b"garbage", b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    b"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
    b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
    b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
    b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
])
def test_invalid_traceparent_is_none(bad: bytes | None) -> None:
    assert parse_traceparent(bad) is None


def test_future_version_may_carry_more_fields() -> None:
    assert parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-more") is not None


def test_new_traceparent_keeps_the_trace_and_makes_a_new_span() -> None:
    parent = parse_traceparent(TP)
    child = new_traceparent(parent)
    assert parent is not None
    assert child.trace_id == parent.trace_id and child.span_id != parent.span_id
    fresh = new_traceparent(sampled=False)
    assert parse_traceparent(fresh.header()) == fresh and not fresh.sampled


def test_trace_headers_and_carry() -> None:
    src = [("a", b"1"), ("traceparent", TP), ("tracestate", TS)]
    assert trace_headers(src) == [("traceparent", TP), ("tracestate", TS)]
    dst = [("x", b"y"), ("traceparent", b"00-stale")]
    assert carry_trace_context(dst, src) == [("x", b"y"), ("traceparent", TP), ("tracestate", TS)]
    assert carry_trace_context(dst, [("a", b"1")]) == dst


def test_trace_headers_pass_unchanged_through_retry_dlq_and_replay() -> None:
    # Given a record's headers with trace context
    original = [("traceparent", TP), ("tracestate", TS), ("app", b"x")]
    failure = h.Failure(original_topic="orders", attempt=1, error_code="_MSG_TIMED_OUT",
                        error_class="KafkaTimeoutError", error_message="timed out", retriable=True,
                        first_failure_at_ms=1, last_failure_at_ms=2, next_attempt_at_ms=3)
    # When it goes to .retry, then .dlq, then is replayed
    on_retry = h.failure_headers(original, failure, message_id="m-1")
    on_dlq = h.failure_headers(on_retry, failure)
    replayed = h.republish_headers(on_dlq, replay_count=1)
    # Then the trace headers are byte-for-byte the same at each hop
    for hop in (on_retry, on_dlq, replayed):
        assert trace_headers(hop) == [("traceparent", TP), ("tracestate", TS)]


def test_span_is_a_noop_without_opentelemetry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tracing, "_otel_trace", None)
    monkeypatch.setattr(tracing, "_otel_propagate", None)
    with tracing.span(tracing.SPAN_SEND, headers=[("traceparent", TP)]) as s:
        assert s is None
    assert tracing.inject_current([("a", b"1")]) == [("a", b"1")]


def test_span_continues_the_records_trace_with_opentelemetry(otel_exporter) -> None:  # type: ignore[no-untyped-def]
    # Given an SDK with an in-memory exporter
    exporter = otel_exporter
    exporter.clear()
    # When a retry span is opened for a record carrying a traceparent
    with tracing.span(tracing.SPAN_RETRY, headers=[("traceparent", TP)], attributes={"topic": "t"}):
        injected = tracing.inject_current([])
    # Then the span is in the record's trace, and inject writes the span's own context
    (finished,) = exporter.get_finished_spans()
    assert finished.name == "kafka_reliable.retry"
    assert format(finished.context.trace_id, "032x") == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert finished.parent is not None and format(finished.parent.span_id, "016x") == "00f067aa0ba902b7"
    tp = parse_traceparent(dict(injected)["traceparent"])
    assert tp is not None and tp.span_id == format(finished.context.span_id, "016x")
