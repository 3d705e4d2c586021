"""The open targets (issues 25 and 19, and issue 13's still measured) against headline figures.

A target is (label, headline key, comparison, bound); the bound is a number, another headline
key, or (key, factor). "–" = not measured in this run.
"""

from __future__ import annotations

from typing import Any

Bound = float | str | tuple[str, float]
Target = tuple[str, str, str, Bound]

#: Issue 25 (speed, second round) and issue 19 (the durable log's rows).
TARGETS: list[Target] = [
    ("send_message, id header + status, 100 B ≥ 0.75× raw", "ratio_send_message_100B", ">=", 0.75),
    (
        "send_message, message_id_header=False ≥ 0.85× raw",
        "ratio_send_message_no_id_header_100B",
        ">=",
        0.85,
    ),
    ("send_batch (1,000, keys spread) ≥ 0.7× raw", "ratio_send_batch_100B", ">=", 0.7),
    (
        "send_batch at 1 KB ≥ the send_message loop at 1 KB",
        "ratio_send_batch_1KB",
        ">=",
        "ratio_send_message_1KB",
    ),
    ("memory dedup (send_message) ≥ 0.65× raw", "ratio_send_message_memory_dedup_100B", ">=", 0.65),
    ("Redis dedup (send_batch) ≥ 0.5× raw", "ratio_send_batch_redis_dedup_100B", ">=", 0.5),
    ("durable send_message ≥ 0.6× raw, 100 B", "ratio_send_message_durable_100B", ">=", 0.6),
    ("durable send_message ≥ 0.6× raw, 1 KB", "ratio_send_message_durable_1KB", ">=", 0.6),
    (
        "durable send_message within 20 % of memory",
        "durable_vs_memory_send_message_100B",
        ">=",
        0.8,
    ),
    (
        "durable send_message, no id header ≥ 0.6× raw",
        "ratio_send_message_no_id_header_durable_100B",
        ">=",
        0.6,
    ),
    ("durable send_batch ≥ 0.6× raw", "ratio_send_batch_durable_100B", ">=", 0.6),
    ("durable memory dedup ≥ 0.6× raw", "ratio_send_message_memory_dedup_durable_100B", ">=", 0.6),
    (
        "durable Redis dedup (send_batch) ≥ 0.6× raw",
        "ratio_send_batch_redis_dedup_durable_100B",
        ">=",
        0.6,
    ),
    (
        "ReliableConsumer no-op handler ≥ 0.7× raw consume() loop",
        "consumer_ratio_reliable",
        ">=",
        0.7,
    ),
    ("memory dedup store ≤ 48 bytes per key", "dedup_bytes_per_key", "<=", 48.0),
    (
        "dedup store RSS flat after it fills (±5 MB per million keys)",
        "dedup_slope_after_full_mb_per_million",
        "abs<=",
        5.0,
    ),
    (
        "RSS with memory dedup flat after warm-up (±5 MB per million)",
        "memory_slope_abs_mb_per_million",
        "<=",
        5.0,
    ),
    (
        "retry worker lateness p99 under the throughput run ≤ 20 ms",
        "retry_lateness_under_load_p99_ms",
        "<=",
        20.0,
    ),
    (
        "asyncio wait=False ≥ 0.85× the sync loop in every round",
        "async_nowait_vs_sync_min_100B",
        ">=",
        0.85,
    ),
    ("event-loop lag p99 < 5 ms, 0.5 s burst of 20,000 included", "aio_loop_lag_p99_ms", "<", 5.0),
    (
        "RSS flat over 2,000,000 durable records (±5 MB per million)",
        "durable_slope_abs_mb_per_million",
        "<=",
        5.0,
    ),
    (
        "durable log's disk use back to ~0 after the stream settles (≤ 1 MB over its start)",
        "durable_disk_settled_over_baseline_mb",
        "<=",
        1.0,
    ),
]
#: Issue 13's targets that the suite still measures.
EARLIER: list[Target] = [
    (
        "p99 latency, app sleeping, ≤ 1.1× raw",
        "latency_reliable_sleep_p99_ms",
        "<=",
        ("latency_raw_sleep_p99_ms", 1.1),
    ),
    (
        "p99 latency, app busy, ≤ 1.1× raw",
        "latency_reliable_busy_p99_ms",
        "<=",
        ("latency_raw_busy_p99_ms", 1.1),
    ),
    (
        "async, 1,000 concurrent awaited sends ≥ 2× aiokafka send_and_wait",
        "ratio_async_reliable_gather_100B",
        ">=",
        ("ratio_aiokafka_send_and_wait_100B", 2.0),
    ),
    ("retry worker at-least-once ≥ 0.6× raw pipe", "retry_ratio_to_pipe_at_least_once", ">=", 0.6),
    ("retry worker transactional ≥ 0.6× raw pipe", "retry_ratio_to_pipe_transactional", ">=", 0.6),
    ("retry worker: 0 early", "retry_early", "<=", 0.0),
]


def bound_of(head: dict[str, Any], ref: Bound) -> float | None:
    if isinstance(ref, tuple):
        base = head.get(ref[0])
        return base * ref[1] if base is not None else None
    if isinstance(ref, str):
        value = head.get(ref)
        return float(value) if value is not None else None
    return ref


def met(value: float | None, op: str, bound: float | None) -> str:
    """ "yes", "**no**" or "–" (not measured)."""
    if value is None or bound is None:
        return "–"
    ok = {">=": value >= bound, "<=": value <= bound, "<": value < bound,
          "abs<=": abs(value) <= bound}[op]  # fmt: skip
    return "yes" if ok else "**no**"


def _num(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}"


def _cell(head: dict[str, Any] | None, key: str, op: str, ref: Bound) -> str:
    if head is None:
        return "not run"
    value = head.get(key)
    verdict = met(value, op, bound_of(head, ref))
    return "–" if value is None else f"{_num(value)} ({verdict})"


def table(targets: list[Target], single: dict | None, cluster: dict | None) -> list[str]:
    """Markdown rows: target, bound, single broker, 3-broker cluster."""
    lines = ["| target | bound | single broker | 3-broker cluster (RF 3) |", "|---|---|---|---|"]
    for label, key, op, ref in targets:
        shown = op.replace("abs", "|x| ")
        bound = ref if isinstance(ref, (int, float)) else (
            f"{ref[1]}× {ref[0]}" if isinstance(ref, tuple) else ref)  # fmt: skip
        lines.append(f"| {label} | {shown} {bound} | {_cell(single, key, op, ref)} | "
                     f"{_cell(cluster, key, op, ref)} |")  # fmt: skip
    return lines
