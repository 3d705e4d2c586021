"""DLQ statistics: exact sizes from watermarks, breakdowns from a (bounded) scan of the records."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from kafka_reliable.config import TopicNaming
from kafka_reliable.dlq.model import DlqMessage
from kafka_reliable.dlq.reader import Offsets, RangeReader

#: Records read per DLQ topic for the error/dialect breakdowns; 0 reads none.
DEFAULT_SCAN_LIMIT = 100_000


def _edge_timestamps(o: Offsets, topic: str, wm: Mapping[int, tuple[int, int]]) -> list[int]:
    """Timestamps of the first and the last record of every partition."""
    ranges: dict[int, tuple[int, int]] = {}
    out: list[int] = []
    for p, (lo, hi) in wm.items():
        if hi > lo:
            ranges[p] = (lo, lo + 1)
    for edge in (ranges, {p: (hi - 1, hi) for p, (lo, hi) in wm.items() if hi > lo}):
        for msg in RangeReader(o.consumer, topic, edge):
            ts_type, ts = msg.timestamp()
            if ts_type and ts >= 0:
                out.append(ts)
    return out


class _Tally:
    """Counters over scanned records."""

    def __init__(self, fallback_source: str) -> None:
        self.fallback_source = fallback_source
        self.by_class: Counter[str] = Counter()
        self.by_reason: Counter[str] = Counter()
        self.by_dialect: Counter[str] = Counter()
        self.by_source: Counter[str] = Counter()
        self.stamps: list[int] = []
        self.scanned = 0

    def add(self, m: DlqMessage) -> None:
        self.scanned += 1
        self.by_class[m.error_class or "(unknown)"] += 1
        self.by_reason[m.reason or "(none)"] += 1
        self.by_dialect[m.dialect] += 1
        self.by_source[m.original_topic or self.fallback_source] += 1
        if m.timestamp_ms is not None:
            self.stamps.append(m.timestamp_ms)


def topic_stats(
    conf: Mapping[str, Any],
    dlq_topic: str,
    *,
    naming: TopicNaming,
    scan_limit: int = DEFAULT_SCAN_LIMIT,
) -> dict[str, Any]:
    """Stats of one DLQ topic.

    ``total_messages`` is exact (high - low per partition). ``topic_breakdown`` maps source
    topics to counts: from the records' headers when every record was scanned (a record
    without one counts for the name's source), else from the name for ``<source>.dlq``.
    Breakdowns by error class, reason and dialect cover ``scanned_messages`` records (all of
    them when ``complete``).
    """
    source = naming.source_of(dlq_topic) if dlq_topic.endswith(naming.dlq_suffix) else None
    tally = _Tally(source or dlq_topic)
    with Offsets(conf) as o:
        wm = o.watermarks(dlq_topic)
        total = sum(hi - lo for lo, hi in wm.values())
        ranges = {p: (lo, min(hi, lo + scan_limit)) for p, (lo, hi) in wm.items()}
        complete = all(end == wm[p][1] for p, (_lo, end) in ranges.items()) and scan_limit > 0
        if scan_limit > 0:
            for msg in RangeReader(o.consumer, dlq_topic, ranges):
                tally.add(DlqMessage.from_record(msg))
        if not complete:
            tally.stamps.extend(_edge_timestamps(o, dlq_topic, wm))
    if complete:  # from the records: a group DLQ orders.billing.dlq holds records of orders
        breakdown = dict(tally.by_source)
    elif source is not None:
        breakdown = {source: total}
    else:
        breakdown = {dlq_topic: total}
    return {
        "dlq_topic": dlq_topic,
        "total_messages": total,
        "partitions": {
            p: {"low": lo, "high": hi, "count": hi - lo} for p, (lo, hi) in sorted(wm.items())
        },
        "topic_breakdown": {k: v for k, v in breakdown.items() if v},
        "error_class_breakdown": dict(tally.by_class.most_common()),
        "reason_breakdown": dict(tally.by_reason.most_common()),
        "dialect_breakdown": dict(tally.by_dialect.most_common()),
        "oldest_timestamp_ms": min(tally.stamps) if tally.stamps else None,
        "newest_timestamp_ms": max(tally.stamps) if tally.stamps else None,
        "scanned_messages": tally.scanned,
        "complete": complete,
        "exists": bool(wm),
    }


def merge(per_topic: list[dict[str, Any]]) -> dict[str, Any]:
    """Stats of several DLQ topics in one dict (the shape of ``get_stats()['dlq_stats']``)."""
    out: dict[str, Any] = {
        "total_messages": 0,
        "topic_breakdown": Counter(),
        "error_class_breakdown": Counter(),
        "reason_breakdown": Counter(),
        "dialect_breakdown": Counter(),
        "oldest_timestamp_ms": None,
        "newest_timestamp_ms": None,
        "scanned_messages": 0,
        "complete": True,
        "dlq_topics": {},
    }
    for s in per_topic:
        out["total_messages"] += s["total_messages"]
        out["scanned_messages"] += s["scanned_messages"]
        out["complete"] = out["complete"] and s["complete"]
        for k in (
            "topic_breakdown",
            "error_class_breakdown",
            "reason_breakdown",
            "dialect_breakdown",
        ):
            out[k].update(s[k])
        for k, pick in (("oldest_timestamp_ms", min), ("newest_timestamp_ms", max)):
            vals = [v for v in (out[k], s[k]) if v is not None]
            out[k] = pick(vals) if vals else None
        out["dlq_topics"][s["dlq_topic"]] = s
    for k in ("topic_breakdown", "error_class_breakdown", "reason_breakdown", "dialect_breakdown"):
        out[k] = dict(out[k].most_common())
    return out
