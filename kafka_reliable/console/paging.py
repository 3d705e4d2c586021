"""One page of a DLQ's records, read from the watermarks inward: never more than the page needs.

Newest first, a page reads the last records of every partition (``[high - n, high)``); oldest
first, the first ones. With a filter it reads in growing chunks until the page is full, the
topic is exhausted or :attr:`ConsoleSettings.scan_budget` records were read, and offers to
continue. The position of the next page is a cursor of one offset per partition
(``0:981234,1:979002``), so any page can be linked to and reloaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from confluent_kafka import Message

from kafka_reliable.console.cluster import Cluster, Watermarks
from kafka_reliable.dlq.model import DlqMessage
from kafka_reliable.dlq.reader import DlqFilter, RangeReader
from kafka_reliable.errors import InputError

#: Largest chunk read per partition in one round of a filtered scan.
MAX_CHUNK = 5_000
#: The most records one page may show.
MAX_PAGE_SIZE = 500


class ConsoleInputError(InputError):
    """A request the console cannot serve as asked (shown on the page, one line)."""


def parse_cursor(text: str | None) -> dict[int, int] | None:
    """``"0:120,1:98"`` -> ``{0: 120, 1: 98}``; None for an empty cursor."""
    if not text:
        return None
    out: dict[int, int] = {}
    for part in text.split(","):
        p, sep, o = part.partition(":")
        if not sep or not p.strip().isdigit() or not o.strip().isdigit():
            raise ConsoleInputError(f"bad page position {text!r} (expected partition:offset,...)")
        out[int(p)] = int(o)
    return out


def format_cursor(positions: Mapping[int, int]) -> str:
    return ",".join(f"{p}:{o}" for p, o in sorted(positions.items()))


@dataclass(kw_only=True)
class Page:
    """Records of one page and where the next page starts (None: this was the last)."""

    records: list[DlqMessage] = field(default_factory=list)
    next_cursor: str | None = None
    scanned: int = 0
    total: int = 0
    budget_hit: bool = False
    newest_first: bool = True


def _start(wm: Watermarks, cursor: dict[int, int] | None, newest_first: bool) -> dict[int, int]:
    if cursor is None:
        return {p: (hi if newest_first else lo) for p, (lo, hi) in wm.items()}
    unknown = sorted(set(cursor) - set(wm))
    if unknown:
        raise ConsoleInputError(
            f"page position names partition {unknown[0]}, which the topic lacks"
        )
    out = {}
    for p, (lo, hi) in wm.items():
        pos = cursor.get(p, lo if newest_first else hi)
        if not lo <= pos <= hi:
            raise ConsoleInputError(
                f"page position {p}:{pos} is outside partition {p}'s offsets [{lo}, {hi}]"
                " (records may have been purged or expired: start from the first page)"
            )
        out[p] = pos
    return out


def read_page(
    cluster: Cluster,
    topic: str,
    *,
    flt: DlqFilter | None,
    newest_first: bool = True,
    cursor: str | None = None,
    size: int = 50,
    scan_budget: int = 20_000,
) -> Page:
    """One page of ``topic`` (see the module docstring)."""
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise ConsoleInputError(f"page size must be 1..{MAX_PAGE_SIZE}, got {size}")
    wm = cluster.watermarks([topic]).get(topic)
    if wm is None:
        raise ConsoleInputError(f"topic {topic} does not exist")
    pos = _start(wm, parse_cursor(cursor), newest_first)
    page = Page(total=sum(hi - lo for lo, hi in wm.values()), newest_first=newest_first)
    found: dict[int, list[DlqMessage]] = {p: [] for p in wm}
    chunk = size
    while sum(len(v) for v in found.values()) < size:
        ranges = _ranges(wm, pos, chunk, newest_first)
        if not ranges:
            break
        _read(cluster, topic, ranges, flt, found, page)
        for p, (start, end) in ranges.items():
            pos[p] = start if newest_first else end
        if page.scanned >= scan_budget:
            page.budget_hit = True
            break
        chunk = min(chunk * 4, MAX_CHUNK)
    return _finish(page, found, pos, wm, size)


def _ranges(
    wm: Watermarks, pos: Mapping[int, int], n: int, newest_first: bool
) -> dict[int, tuple[int, int]]:
    out = {}
    for p, (lo, hi) in wm.items():
        r = (max(lo, pos[p] - n), pos[p]) if newest_first else (pos[p], min(hi, pos[p] + n))
        if r[0] < r[1]:
            out[p] = r
    return out


def _read(
    cluster: Cluster,
    topic: str,
    ranges: dict[int, tuple[int, int]],
    flt: DlqFilter | None,
    found: dict[int, list[DlqMessage]],
    page: Page,
) -> None:
    with cluster.reading() as consumer:
        for msg in RangeReader(consumer, topic, ranges):
            page.scanned += 1
            if flt is not None and _cannot_match(flt, msg):
                continue
            m = DlqMessage.from_record(msg)
            if flt is None or flt.matches(m):
                found[m.partition].append(m)


def _cannot_match(flt: DlqFilter, msg: Message) -> bool:
    """A key or value test on the raw bytes, before the headers are decoded (the costly part)."""
    if flt.key is not None and not flt.key.startswith("base64:"):
        key = msg.key()
        raw = key.encode() if isinstance(key, str) else key
        if raw != flt.key.encode():
            return True
    if flt.text is not None:
        value = msg.value()
        text = value if isinstance(value, str) else (value or b"").decode("utf-8", "replace")
        return flt.text.lower() not in text.lower()
    return False


def _finish(
    page: Page, found: dict[int, list[DlqMessage]], pos: dict[int, int], wm: Watermarks, size: int
) -> Page:
    """The ``size`` newest (oldest) matches across partitions; the cursor continues right after
    the last one shown in each partition, so nothing between pages is skipped."""
    sign = -1 if page.newest_first else 1
    ranked = sorted(
        (m for ms in found.values() for m in ms),
        key=lambda m: (sign * (m.timestamp_ms or 0), sign * m.offset, m.partition),
    )
    page.records = ranked[:size]
    shown: dict[int, list[int]] = {}
    for m in page.records:
        shown.setdefault(m.partition, []).append(m.offset)
    for p, ms in found.items():
        left = [m.offset for m in ms if m.offset not in shown.get(p, [])]
        if left:  # matches read but not shown: the next page starts at them again
            pos[p] = (max(left) + 1) if page.newest_first else min(left)
    more = any(pos[p] > lo if page.newest_first else pos[p] < hi for p, (lo, hi) in wm.items())
    page.next_cursor = format_cursor(pos) if more else None
    return page
