"""Rich tables for ``kafka-reliable dlq`` (people); the verbs print JSON lines for scripts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from rich.console import Console
from rich.table import Table

from kafka_reliable import headers as h
from kafka_reliable.dlq import DlqMessage, ReplayResult
from kafka_reliable.dlq.dialects import simple_name
from kafka_reliable.dlq.model import TIME_ORIGINAL, bytes_to_text, ms_to_iso


def _clip(text: str | None, n: int) -> str:
    if not text:
        return ""
    text = text.replace("\n", " ")
    return text if len(text) <= n else text[: n - 1] + "…"


def _short_time(ms: int | None) -> str:
    text = ms_to_iso(ms)
    return "" if text is None else text[:19].replace("T", " ")


def _failed_at(m: DlqMessage) -> str:
    if m.failed_at_ms is not None:
        return _short_time(m.failed_at_ms)
    if m.time_basis == TIME_ORIGINAL and m.timestamp_ms is not None:
        return f"unknown; original timestamp {_short_time(m.timestamp_ms)}"
    return "unknown"


def _origin(m: DlqMessage) -> str:
    if not m.original_topic:
        return ""
    where = m.original_topic
    if m.original_partition is not None:
        where += f"[{m.original_partition}]"
    if m.original_offset is not None:
        where += f"@{m.original_offset}"
    return where


def stats_tables(console: Console, stats: Mapping[str, Any]) -> None:
    t = Table(title=f"DLQ topics: {stats['total_messages']} records", title_justify="left")
    for col in ("DLQ topic", "records", "source topics", "oldest", "newest", "dialects"):
        t.add_column(
            col, justify="right" if col == "records" else "left", no_wrap=col == "DLQ topic"
        )
    for name, s in stats["dlq_topics"].items():
        t.add_row(
            name,
            str(s["total_messages"]),
            ", ".join(f"{k} ({v})" for k, v in s["topic_breakdown"].items()),
            ms_to_iso(s["oldest_timestamp_ms"]) or "",
            ms_to_iso(s["newest_timestamp_ms"]) or "",
            ", ".join(s["dialect_breakdown"]),
        )
    console.print(t)
    scanned = stats["scanned_messages"]
    note = "" if stats["complete"] else f" (first {scanned} records per topic)"
    _counts(
        console, f"By error class{note}", "error class", stats["error_class_breakdown"], scanned
    )
    _counts(console, f"By reason{note}", "reason", stats["reason_breakdown"], scanned)


def _counts(
    console: Console, title: str, label: str, counts: Mapping[str, int], total: int
) -> None:
    if not counts:
        return
    t = Table(title=title, title_justify="left")
    t.add_column(label)
    t.add_column("records", justify="right")
    t.add_column("share", justify="right")
    for k, v in counts.items():
        t.add_row(k, str(v), f"{v / total:.0%}" if total else "")
    console.print(t)


def list_table(console: Console, dlq_topic: str, messages: Iterable[DlqMessage]) -> None:
    t = Table(title=f"{dlq_topic}", title_justify="left")
    for col in (
        "P:O",
        "id",
        "failed at (UTC)",
        "key",
        "error class",
        "reason",
        "tries",
        "original",
        "error",
    ):
        t.add_column(
            col, overflow="fold" if col == "error" else "ellipsis", no_wrap=col in ("P:O", "id")
        )
    for m in messages:
        t.add_row(
            m.coordinates,
            _clip(m.message_id or "", 24),
            _failed_at(m),
            _clip(m.key_text(), 20),
            _clip(simple_name(m.error_class), 40),
            m.reason or "",
            "" if m.retry_count is None else str(m.retry_count),
            _origin(m),
            _clip(m.last_error, 60),
        )
    console.print(t)


def list_notes(console: Console, messages: list[DlqMessage], *, time_filtered: bool) -> None:
    """What the times mean (Kafka Connect keeps the original timestamp) and unreadable headers."""
    bases = Counter(m.time_basis for m in messages)
    if bases[TIME_ORIGINAL]:
        console.print(
            f"note: {bases[TIME_ORIGINAL]} records carry no failure time (Kafka Connect keeps the "
            "original record's timestamp): their failed-at is unknown",
            markup=False,
            highlight=False,
        )
    if time_filtered:
        on = (
            ", ".join(f"{basis} ({n} records)" for basis, n in bases.most_common())
            or "no record matched"
        )
        console.print(
            f"--since/--until filtered on: {on}. They compare the failure time when the writer "
            "recorded one, else the record's timestamp, which for Kafka Connect records is the "
            "original timestamp",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    for m in messages:
        notes = "; ".join(m.notes)
        if m.unreadable_headers:
            names = ", ".join(m.unreadable_headers)
            console.print(
                f"warning: {m.coordinates}: unreadable header(s) {names}: {notes}",
                markup=False,
                highlight=False,
            )
        elif notes:
            console.print(f"warning: {m.coordinates}: {notes}", markup=False, highlight=False)
        if m.headers_only:
            console.print(
                f"note: {m.coordinates}: headers only (no key/value copied); "
                "the original is "
                f"{_origin(m)}: replay with --from-source",
                markup=False,
                highlight=False,
            )


def show_message(console: Console, m: DlqMessage) -> None:
    t = Table(title=f"{m.topic} {m.coordinates}", title_justify="left", show_header=False)
    t.add_column("field", style="bold")
    t.add_column("value", overflow="fold")
    replays: Any = m.replay_count
    if not m.replay_count_readable:
        replays = (
            f"unreadable ({bytes_to_text(h.get(m.headers, h.REPLAY_COUNT))!r}): --force to replay"
        )
    failed = ms_to_iso(m.failed_at_ms) or "unknown"
    if m.time_basis == TIME_ORIGINAL:
        failed = "unknown (Kafka Connect keeps the original timestamp and writes no failure time)"
    rows: list[tuple[str, Any]] = [
        ("id", m.id),
        ("dialect", m.dialect),
        ("timestamp", None if m.time_basis == TIME_ORIGINAL else ms_to_iso(m.timestamp_ms)),
        ("original", _origin(m)),
        ("original timestamp", ms_to_iso(m.original_timestamp_ms)),
        ("failed at", failed),
        ("consumer group", m.consumer_group),
        ("error class", m.error_class),
        ("error code", m.error_code),
        ("error", m.last_error),
        ("reason", m.reason),
        ("retry count", m.retry_count),
        ("replay count", replays),
        ("first failed at", ms_to_iso(m.first_failed_at_ms)),
        ("last failed at", ms_to_iso(m.last_failed_at_ms)),
        ("unreadable headers", ", ".join(m.unreadable_headers)),
        ("notes", "\n".join(m.notes)),
        (
            "headers only",
            "yes: no key/value copied; replay with --from-source" if m.headers_only else None,
        ),
        *sorted(m.extra.items()),
        ("key", m.key_text()),
        ("value", _clip(m.value_text(), 2000)),
    ]
    for k, v in rows:
        if v not in (None, ""):
            t.add_row(k, str(v))
    console.print(t)
    if m.headers:
        _show_headers(console, m)
    if m.stacktrace:
        console.print("[bold]stack trace[/bold] (truncated by the reader)")
        console.print(m.stacktrace, markup=False, highlight=False)


def _show_headers(console: Console, m: DlqMessage) -> None:
    ht = Table(title="headers", title_justify="left")
    ht.add_column("name")
    ht.add_column("value", overflow="fold")
    for k, v in m.headers:
        ht.add_row(k, _clip(bytes_to_text(v), 300))
    console.print(ht)


def replay_summary(console: Console, r: ReplayResult, *, dry_run: bool) -> None:
    verb = "would replay" if dry_run else "replayed"
    console.print(
        f"{r.dlq_topic}: {verb} [bold]{r.replayed}[/bold] of {r.pending_at_start} pending records "
        f"(scanned {r.scanned}, group {r.group_id}, stopped: {r.stopped})"
    )
    _counts(
        console,
        "Failure reasons (by error class)",
        "error class",
        dict(r.by_error_class.most_common()),
        r.replayed,
    )
    _counts(console, "By DLQ reason", "reason", dict(r.by_reason.most_common()), r.replayed)
    _counts(console, "Targets", "topic", dict(r.by_target.most_common()), r.replayed)
    skipped = [
        ("filtered out", r.skipped_filtered),
        ("refused by the loop guard (use --force)", r.skipped_loop_guard),
        ("without a known original topic (use --to-topic)", r.skipped_no_target),
        ("target illegal, missing or refused the record (listed below)", r.skipped_bad_target),
        ("cannot be resent as they are (listed below with the reason)", r.skipped_unsendable),
    ]
    for label, n in skipped:
        if n:
            console.print(f"  {'would skip' if dry_run else 'skipped'} {n}: {label}")
    skipped_table(console, r)


def skipped_table(console: Console, r: ReplayResult) -> None:
    """The records that could not be replayed, and one line per target that does not exist."""
    if not r.skipped:
        return
    t = Table(
        title=f"not replayed from {r.dlq_topic} (progress moved past them; they stay in the DLQ)",
        title_justify="left",
    )
    for col in ("P:O", "message id", "target", "reason"):
        t.add_column(col, overflow="fold" if col == "reason" else "ellipsis", no_wrap=col == "P:O")
    for s in r.skipped:
        t.add_row(s.coordinates, s.message_id or "", s.target or "", s.reason)
    console.print(t)
    if len(r.skipped) < r.skipped_bad_target + r.skipped_unsendable:
        console.print(f"  (first {len(r.skipped)} listed)")
    for reason, n in Counter(
        s.reason for s in r.skipped if s.reason.endswith("does not exist")
    ).items():
        console.print(
            f"  {n} record{'' if n == 1 else 's'} skipped: {reason}", markup=False, highlight=False
        )


def cuts_table(
    console: Console, dlq_topic: str, cuts: Mapping[int, tuple[int, int]], high: Mapping[int, int]
) -> int:
    t = Table(title=f"records to delete from {dlq_topic}", title_justify="left")
    for col in ("partition", "from offset", "to offset (excl.)", "delete", "keep"):
        t.add_column(col, justify="right")
    total = 0
    for p, (lo, cut) in sorted(cuts.items()):
        total += cut - lo
        t.add_row(str(p), str(lo), str(cut), str(cut - lo), str(high[p] - cut))
    console.print(t)
    return total
