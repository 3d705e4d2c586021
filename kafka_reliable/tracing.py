"""W3C trace context on Kafka records, and optional OpenTelemetry spans.

``traceparent`` / ``tracestate`` are ordinary user headers to this library: the header
contract (``headers.user_headers``) carries them byte-for-byte through ``.retry``, ``.dlq``
and replay, so a trace started by the application continues across every hop. These
helpers read and write them; ``span()`` opens an OpenTelemetry span (send, retry, replay)
whose parent is the record's ``traceparent`` when the ``opentelemetry-api`` package is
installed (extra ``kafka-reliable[otel]``), and does nothing otherwise.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_otel_trace: Any
_otel_propagate: Any
try:  # optional extra
    import opentelemetry.propagate as _otel_propagate
    import opentelemetry.trace as _otel_trace
except ImportError:  # pragma: no cover - depends on the environment
    _otel_trace = None
    _otel_propagate = None


def configured() -> bool:
    """OpenTelemetry is installed and the application set a real tracer provider.

    The API alone gives a no-op provider: spans would cost time on the send path and record
    nothing, so the producer opens send spans only when this is true (checked at start).
    """
    if _otel_trace is None:
        return False
    provider = _otel_trace.get_tracer_provider()
    return type(provider).__name__ not in {"ProxyTracerProvider", "NoOpTracerProvider"}


#: Whether OpenTelemetry spans are produced.
OTEL_AVAILABLE = _otel_trace is not None

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
TRACE_HEADERS = (TRACEPARENT, TRACESTATE)

#: Span names of the three hops.
SPAN_SEND, SPAN_RETRY, SPAN_REPLAY = (
    "kafka_reliable.send",
    "kafka_reliable.retry",
    "kafka_reliable.replay",
)

_TRACEPARENT_RE = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")

Headers = list[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class TraceParent:
    """A parsed ``traceparent`` (W3C Trace Context, version 00)."""

    trace_id: str
    span_id: str
    flags: int = 1
    version: str = "00"

    @property
    def sampled(self) -> bool:
        return bool(self.flags & 1)

    def header(self) -> bytes:
        return f"{self.version}-{self.trace_id}-{self.span_id}-{self.flags:02x}".encode("ascii")


def parse_traceparent(value: str | bytes | None) -> TraceParent | None:
    """The parsed header, or None when absent or invalid (all-zero ids, version ff, bad hex)."""
    if value is None:
        return None
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    m = _TRACEPARENT_RE.match(text.strip())
    if m is None:
        return None
    version, trace_id, span_id, flags, rest = m.groups()
    if version == "ff" or trace_id == "0" * 32 or span_id == "0" * 16:
        return None
    if version == "00" and rest:
        return None
    return TraceParent(trace_id=trace_id, span_id=span_id, flags=int(flags, 16), version=version)


def new_traceparent(parent: TraceParent | None = None, *, sampled: bool = True) -> TraceParent:
    """A new span id, in ``parent``'s trace when given, else in a new trace."""
    trace_id = parent.trace_id if parent is not None else secrets.token_hex(16)
    flags = parent.flags if parent is not None else (1 if sampled else 0)
    return TraceParent(trace_id=trace_id, span_id=secrets.token_hex(8), flags=flags)


def trace_headers(headers: Iterable[tuple[str, bytes | None]] | None) -> Headers:
    """The record's ``traceparent`` / ``tracestate`` headers (last value of each), bytes
    unchanged."""
    found: dict[str, bytes] = {}
    for key, value in headers or ():
        if key in TRACE_HEADERS and value is not None:
            found[key] = value
    return [(k, found[k]) for k in TRACE_HEADERS if k in found]


def carry_trace_context(
    dst: Iterable[tuple[str, bytes | None]] | None, src: Iterable[tuple[str, bytes | None]] | None
) -> Headers:
    """``dst`` with its trace headers replaced by ``src``'s (kept when ``src`` has none)."""
    carried = trace_headers(src)
    out = [(k, v if v is not None else b"") for k, v in (dst or ())]
    if not carried:
        return out
    return [(k, v) for k, v in out if k not in TRACE_HEADERS] + carried


def inject_current(headers: Sequence[tuple[str, bytes]] | None) -> Headers:
    """``headers`` plus the current OpenTelemetry span's context, unless it has one already."""
    out = list(headers or ())
    if _otel_propagate is None or trace_headers(out):
        return out
    carrier: dict[str, str] = {}
    _otel_propagate.inject(carrier)
    out.extend((k, carrier[k].encode("ascii")) for k in TRACE_HEADERS if k in carrier)
    return out


def _carrier(headers: Iterable[tuple[str, bytes | None]] | None) -> dict[str, str]:
    return {k: v.decode("ascii", "replace") for k, v in trace_headers(headers)}


@contextlib.contextmanager
def span(
    name: str,
    *,
    headers: Iterable[tuple[str, bytes | None]] | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[Any]:
    """An OpenTelemetry PRODUCER span, child of the record's ``traceparent``; yields the span.

    Without OpenTelemetry it yields None and costs one function call.
    """
    if _otel_trace is None or _otel_propagate is None:
        yield None
        return
    carrier = _carrier(headers)
    ctx = _otel_propagate.extract(carrier) if carrier else None
    tracer = _otel_trace.get_tracer("kafka_reliable")
    with tracer.start_as_current_span(
        name, context=ctx, kind=_otel_trace.SpanKind.PRODUCER, attributes=dict(attributes or {})
    ) as current:
        yield current
