"""Headline figures (``headline`` of the JSON) and the issues' targets, from the JSON only."""

from __future__ import annotations

import statistics
from typing import Any

#: Producer rows: headline key → contender (``_durable`` keys: the same row, durable log).
PRODUCER_KEYS = {
    "send_message": "reliable-send",
    "send_message_no_id_header": "reliable-send-noid",
    "send_batch": "reliable-batch",
    "send_message_memory_dedup": "reliable-send-memdedup",
    "send_batch_redis_dedup": "reliable-batch-redisdedup",
    "send_batch_redis_cluster_dedup": "reliable-batch-rcdedup",
}
HEADLINE_RATIOS = {
    **PRODUCER_KEYS,
    **{f"{k}_durable": f"{v}@durable" for k, v in PRODUCER_KEYS.items()},
    "send_message_durable_spool": "reliable-send@durable",  # the name docs/reliability.md quotes
    "send_message_durable_fsync_interval": "reliable-send@fsync-interval",
    "async_reliable_nowait": "async-reliable-nowait",
    "async_reliable_gather": "async-reliable-gather",
    "kafka_python": "kafka-python",
    "aiokafka": "aiokafka",
    "aiokafka_send_and_wait": "aiokafka-send-and-wait",
    "kcat": "kcat",
}
CONSUMER_KEYS = {"reliable": "reliable", "reliable_async": "reliable-async",
                 "aiokafka": "aiokafka", "kafka_python": "kafka-python"}  # fmt: skip
SIZES = (("100", "100B"), ("1024", "1KB"))


def _ratio(summary: dict[str, Any], name: str, key: str = "ratio_to_raw") -> float | None:
    r = summary.get(name, {}).get(key)
    return round(r["median"], 3) if r else None


def _round_ratios(trials: list[dict[str, Any]], size: int, a: str, b: str) -> list[float]:
    """records/s of ``a`` / records/s of ``b`` in each round where both ran (same size)."""

    def by_round(name: str) -> dict[int, float]:
        return {t["round"]: t["records_per_s"] for t in trials if t.get("contender") == name
                and t.get("size_bytes") == size and "error" not in t}  # fmt: skip

    ra, rb = by_round(a), by_round(b)
    return [ra[r] / rb[r] for r in sorted(ra) if r in rb]


def _producer(doc: dict[str, Any], out: dict[str, Any]) -> None:
    t = doc.get("throughput", {})
    for size, tag in SIZES:
        s = t.get("summary", {}).get(size, {})
        if "records_per_s" in s.get("raw", {}):
            out[f"raw_records_per_s_{tag}"] = round(s["raw"]["records_per_s"]["median"])
        for key, name in HEADLINE_RATIOS.items():
            out[f"ratio_{key}_{tag}"] = _ratio(s, name)
            out[f"cpu_ratio_{key}_{tag}"] = _ratio(s, name, "cpu_ratio_to_raw")
        for key in PRODUCER_KEYS:
            mem, dur = out[f"ratio_{key}_{tag}"], out[f"ratio_{key}_durable_{tag}"]
            out[f"durable_vs_memory_{key}_{tag}"] = round(dur / mem, 3) if mem and dur else None
        per_round = _round_ratios(t.get("trials", []), int(size), "async-reliable-nowait",
                                  "reliable-send")  # fmt: skip
        out[f"async_nowait_vs_sync_min_{tag}"] = round(min(per_round), 3) if per_round else None
        out[f"async_nowait_vs_sync_median_{tag}"] = (
            round(statistics.median(per_round), 3) if per_round else None)  # fmt: skip


def _consumer(doc: dict[str, Any], out: dict[str, Any]) -> None:
    s = doc.get("consumer", {}).get("summary", {})
    if "records_per_s" in s.get("raw", {}):
        out["consumer_raw_records_per_s"] = round(s["raw"]["records_per_s"]["median"])
    for key, name in CONSUMER_KEYS.items():
        out[f"consumer_ratio_{key}"] = _ratio(s, name)
        out[f"consumer_cpu_ratio_{key}"] = _ratio(s, name, "cpu_ratio_to_raw")
    fl = doc.get("consumer", {}).get("failures", {}).get("flaky", {})
    if "lateness_p99_ms" in fl:
        out["consumer_retry_lateness_p99_ms"] = fl["lateness_p99_ms"]


def _aio(doc: dict[str, Any], out: dict[str, Any]) -> None:
    runs = [r for r in doc.get("aio", {}).get("runs", []) if "error" not in r]
    if runs:
        out["aio_loop_lag_p99_steady_ms"] = max(r["steady"]["lag"]["p99_ms"] for r in runs)
        out["aio_loop_lag_p99_burst_ms"] = max(r["burst"]["lag"]["p99_ms"] for r in runs)
        out["aio_loop_lag_p99_ms"] = max(r["p99_ms_worst"] for r in runs)


def _latency_retry(doc: dict[str, Any], out: dict[str, Any]) -> None:
    for run in doc.get("latency", {}).get("runs", []):
        if "error" not in run:
            for q in ("p50_ms", "p99_ms"):
                out[f"latency_{run['client']}_{run['mode']}_{q}"] = round(run["caller_view"][q], 2)
    rw = doc.get("retry_worker", {})
    if "raw_pipe" in rw:
        out["retry_pipe_records_per_s"] = rw["raw_pipe"].get("records_per_s")
    for d in rw.get("drain", []):
        mode = "transactional" if d.get("transactional") else "at_least_once"
        out[f"retry_drain_records_per_s_{mode}"] = d.get("records_per_s")
        out[f"retry_ratio_to_pipe_{mode}"] = d.get("ratio_to_pipe")
    if "lateness" in rw:
        out["retry_lateness_p99_ms"] = rw["lateness"].get("p99_ms")
        out["retry_early"] = rw["lateness"].get("early")
    loaded = rw.get("lateness_under_load", {})
    if "p99_ms" in loaded:
        out["retry_lateness_under_load_p99_ms"] = loaded["p99_ms"]
        out["retry_early_under_load"] = loaded.get("early")


def _slopes(prefix: str, m: dict[str, Any], out: dict[str, Any]) -> None:
    if "slope_after_warmup_mb_per_million" not in m:
        return
    slope = round(m["slope_after_warmup_mb_per_million"], 2)
    last = round(m.get("slope_last_quarter_mb_per_million", 0.0), 2)
    out[f"{prefix}_slope_mb_per_million"] = slope
    out[f"{prefix}_slope_last_quarter_mb_per_million"] = last
    # judged only when warm-up covers the bounded maps (otherwise they were still filling)
    plateau = m.get("warmup_records", 0) >= max((m.get("bounds") or {"": 0}).values())
    out[f"{prefix}_slope_abs_mb_per_million"] = abs(slope) if plateau else None
    out[f"{prefix}_slope_last_quarter_abs_mb_per_million"] = abs(last) if plateau else None
    out[f"{prefix}_rss_end_mb"] = round(m["rss_end_mb"], 1)
    for mark, mb in m.get("rss_at_mb", {}).items():
        out[f"{prefix}_rss_at_{int(mark) // 1000}k_mb"] = round(mb, 1)


def _memory(doc: dict[str, Any], out: dict[str, Any]) -> None:
    every, bound = (doc.get("dedup", {}).get(k, {}) for k in ("every_key", "default_bound"))
    if every.get("bytes_per_key") is not None:
        out["dedup_bytes_per_key"] = round(every["bytes_per_key"], 1)
        out["dedup_check_ns_per_key"] = round(every["check_ns_per_key"])
    ref = doc.get("dedup", {}).get("ordered_dict_reference", {})
    if ref.get("bytes_per_key") is not None:
        out["dedup_bytes_per_key_ordered_dict_reference"] = round(ref["bytes_per_key"], 1)
    if bound.get("bytes_per_key") is not None:
        out["dedup_bytes_per_key_at_default_bound"] = round(bound["bytes_per_key"], 1)
        slope = bound["slope_after_full_mb_per_million"]
        out["dedup_slope_after_full_mb_per_million"] = round(slope, 2)
        out["dedup_rss_end_mb"] = round(bound["rss_end_mb"], 1)
    mem = doc.get("memory", {})
    _slopes("memory", mem.get("memory_dedup", {}), out)
    durable = mem.get("durable", {})
    _slopes("durable", durable, out)
    disk = durable.get("disk")
    if disk:
        out["durable_disk_peak_mb"] = round(disk["peak_mb"], 2)
        out["durable_disk_settled_mb"] = round(disk["settled_mb"], 2)
        out["durable_disk_settled_over_baseline_mb"] = round(
            disk["settled_mb"] - disk["baseline_mb"], 2)  # fmt: skip


def headline(doc: dict[str, Any]) -> dict[str, Any]:
    """Flat figures the README and the issues quote (``headline.<key>`` of the JSON)."""
    out: dict[str, Any] = {}
    for part in (_producer, _consumer, _aio, _latency_retry, _memory):
        part(doc, out)
    return out
