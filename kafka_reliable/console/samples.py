"""Bounded reads for the overview's details: a DLQ's newest records, a retry topic's head."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from kafka_reliable import headers as h
from kafka_reliable.console.cluster import Cluster
from kafka_reliable.dlq.model import DlqMessage
from kafka_reliable.dlq.reader import RangeReader
from kafka_reliable.dlq.timespec import now_ms

#: Newest records read per DLQ for its error classes and dialects.
DLQ_SAMPLE = 200
#: Pending records read per retry topic to count the due and late ones.
RETRY_SAMPLE = 500
#: A pending retry this long past its due time counts as late.
LATE_AFTER_MS = 5_000


@dataclass(kw_only=True)
class DlqSample:
    """What the newest ``sampled`` records of a DLQ say; ``oldest_ms`` from partition starts."""

    sampled: int = 0
    total: int = 0
    error_classes: Counter[str] = field(default_factory=Counter)
    dialects: Counter[str] = field(default_factory=Counter)
    oldest_ms: int | None = None
    newest_ms: int | None = None


@dataclass(kw_only=True)
class RetryHead:
    """Of the first ``sampled`` pending records: how many are due now and how many are late."""

    sampled: int = 0
    pending: int = 0
    due: int = 0
    late: int = 0
    max_late_ms: int = 0


def _split(total: int, parts: int) -> int:
    return max(1, -(-total // max(1, parts)))


def sample_dlq(cluster: Cluster, topic: str, n: int = DLQ_SAMPLE) -> DlqSample:
    wm = cluster.watermarks([topic]).get(topic, {})
    out = DlqSample(total=sum(hi - lo for lo, hi in wm.values()))
    per = _split(n, len(wm))
    newest = {p: (max(lo, hi - per), hi) for p, (lo, hi) in wm.items()}
    firsts = {p: (lo, lo + 1) for p, (lo, hi) in wm.items() if hi > lo}
    stamps: list[int] = []
    with cluster.reading() as consumer:
        for msg in RangeReader(consumer, topic, newest):
            m = DlqMessage.from_record(msg)
            out.sampled += 1
            out.error_classes[m.error_class or "(unknown)"] += 1
            out.dialects[m.dialect] += 1
            if m.timestamp_ms is not None:
                stamps.append(m.timestamp_ms)
    with cluster.reading() as consumer:  # a consumer per read: see Cluster.reading
        for msg in RangeReader(consumer, topic, firsts):
            ts_type, ts = msg.timestamp()
            if ts_type and ts >= 0:
                stamps.append(ts)
    if stamps:
        out.oldest_ms, out.newest_ms = min(stamps), max(stamps)
    return out


def retry_head(cluster: Cluster, topic: str, group: str, n: int = RETRY_SAMPLE) -> RetryHead:
    """Due and late counts among the first pending records (from the group's committed offsets)."""
    wm = cluster.watermarks([topic]).get(topic, {})
    committed = cluster.committed(group)
    starts = {p: max(lo, min(committed.get((topic, p), lo), hi)) for p, (lo, hi) in wm.items()}
    out = RetryHead(pending=sum(wm[p][1] - s for p, s in starts.items()))
    per = _split(n, len(wm))
    ranges = {p: (s, min(wm[p][1], s + per)) for p, s in starts.items()}
    now = now_ms()
    with cluster.reading() as consumer:
        for msg in RangeReader(consumer, topic, ranges):
            out.sampled += 1
            raw = msg.headers() or []
            pairs = [
                (k, v.encode() if isinstance(v, str) else v)
                for k, v in (raw.items() if isinstance(raw, dict) else raw)
            ]
            due_at = h.get_int_or_none(pairs, h.NEXT_ATTEMPT_AT)[0]
            if due_at is None or due_at <= now:
                out.due += 1
                if due_at is not None and now - due_at > LATE_AFTER_MS:
                    out.late += 1
                    out.max_late_ms = max(out.max_late_ms, now - due_at)
    return out
