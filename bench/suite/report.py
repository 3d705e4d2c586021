"""The Markdown report and the headline figures, generated from the suite's JSON only."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench.suite.common import COMPRESSION, LINGER_MS, PARTITIONS, ROOT
from bench.suite.throughput import LABELS, SLOW_SHARE, records_for

#: Headline ratios (100-byte records): key in ``headline`` → contender.
HEADLINE_RATIOS = {
    "send_message": "reliable-send",
    "send_message_no_id_header": "reliable-send-noid",
    "send_batch": "reliable-batch",
    "send_message_memory_dedup": "reliable-send-memdedup",
    "send_batch_memory_dedup": "reliable-batch-memdedup",
    "send_message_redis_dedup": "reliable-send-redisdedup",
    "send_batch_redis_dedup": "reliable-batch-redisdedup",
    "send_message_durable_spool": "reliable-send-spool",
    "async_reliable_nowait": "async-reliable-nowait",
    "kafka_python": "kafka-python",
    "aiokafka": "aiokafka",
    "aiokafka_send_and_wait": "aiokafka-send-and-wait",
    "async_reliable_gather": "async-reliable-gather",
    "kcat": "kcat",
}


def conditions(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "partitions": PARTITIONS, "acks": "all", "idempotence": True, "compression": COMPRESSION,
        "linger_ms": LINGER_MS, "records_per_trial": args.records,
        "records_per_trial_slow_patterns": {k: records_for(k, args.records) for k in SLOW_SHARE}, "value_bytes": args.sizes,
        "rounds": args.rounds, "order": "interleaved: every contender once per round; raw first and again last",
        "topics": "a fresh topic per trial (3 partitions, RF 1), deleted after its round",
        "warm_up": "every client sends one record and waits for its ack before the clock starts",
        "timing": "first send → every record acknowledged (end to end)",
        "ratios": "records/s of a contender / records/s of raw confluent-kafka of the same round and size "
                  "(geometric mean of raw's opening and closing trials); median and min–max over rounds. Raw's "
                  "own row shows how far its two trials of a round drifted apart",
        "cpu": "CPU seconds (user+system, all threads) of the contender's own process over the timed span",
        "cpu_ratio": "raw's CPU seconds per record / the contender's, same round and size (1.00 = as cheap as "
                     "raw); steadier than records/s on a shared machine, since waiting for a core costs no CPU time",
        "peak_rss": "peak RSS of the contender's process (VmHWM)",
        "kcat": "records from a file of key<TAB>JSON lines; the wall and CPU time of a 1-record kcat run "
                "(process start, connection, producer id) are subtracted, as the warm-up of the others",
        "latency": f"{args.latency_rate:,.0f} records/s offered for {args.latency_seconds:g} s per run",
        "memory_records": args.memory_records,
        "noise": "shared machine: other sessions' builds and tests ran at the same time; compare ratios "
                 "of the same round, not absolute figures",
    }


def _ratio(doc: dict[str, Any], size: str, name: str, key: str = "ratio_to_raw") -> float | None:
    s = doc.get("throughput", {}).get("summary", {}).get(size, {}).get(name, {})
    r = s.get(key)
    return round(r["median"], 3) if r else None


def headline(doc: dict[str, Any]) -> dict[str, Any]:
    """Flat figures the README quotes (``headline.<key>`` of suite.json)."""
    out: dict[str, Any] = {}
    for size, tag in (("100", "100B"), ("1024", "1KB")):
        raw = doc.get("throughput", {}).get("summary", {}).get(size, {}).get("raw", {})
        if "records_per_s" in raw:
            out[f"raw_records_per_s_{tag}"] = round(raw["records_per_s"]["median"])
        for key, name in HEADLINE_RATIOS.items():
            out[f"ratio_{key}_{tag}"] = _ratio(doc, size, name)
            out[f"cpu_ratio_{key}_{tag}"] = _ratio(doc, size, name, "cpu_ratio_to_raw")
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
    mem = doc.get("memory", {})
    if "slope_after_warmup_mb_per_million" in mem:
        out["memory_slope_mb_per_million"] = round(mem["slope_after_warmup_mb_per_million"], 2)
        out["memory_slope_last_quarter_mb_per_million"] = round(mem.get("slope_last_quarter_mb_per_million", 0.0), 2)
        plateau = mem.get("warmup_records", 0) >= max((mem.get("bounds") or {"": 0}).values())
        # Judged only when warm-up covers the bounded maps (otherwise they were still filling).
        out["memory_slope_abs_mb_per_million"] = abs(out["memory_slope_mb_per_million"]) if plateau else None
        out["memory_slope_last_quarter_abs_mb_per_million"] = (
            abs(out["memory_slope_last_quarter_mb_per_million"]) if plateau else None)
        out["memory_rss_end_mb"] = round(mem["rss_end_mb"], 1)
    return out


#: Issue 13's targets: (label, headline key, comparison, threshold or other headline key).
TARGETS = [
    ("send_message loop ≥ 0.75× raw", "ratio_send_message_100B", ">=", 0.75),
    ("send_message, no id header ≥ 0.85× raw", "ratio_send_message_no_id_header_100B", ">=", 0.85),
    ("send_batch ≥ send_message loop", "ratio_send_batch_100B", ">=", "ratio_send_message_100B"),
    ("memory dedup (send_message) ≥ 0.65× raw", "ratio_send_message_memory_dedup_100B", ">=", 0.65),
    ("Redis dedup via send_batch ≥ 0.5× raw", "ratio_send_batch_redis_dedup_100B", ">=", 0.5),
    ("p99 latency, app sleeping, ≤ 1.1× raw", "latency_reliable_sleep_p99_ms", "<=", ("latency_raw_sleep_p99_ms", 1.1)),
    ("p99 latency, app busy, ≤ 1.1× raw", "latency_reliable_busy_p99_ms", "<=", ("latency_raw_busy_p99_ms", 1.1)),
    ("async wait=False within 15% of the send_message loop", "ratio_async_reliable_nowait_100B", ">=",
     ("ratio_send_message_100B", 0.85)),
    ("async, 1,000 concurrent awaited sends ≥ 2× aiokafka send_and_wait", "ratio_async_reliable_gather_100B", ">=",
     ("ratio_aiokafka_send_and_wait_100B", 2.0)),
    ("retry worker at-least-once ≥ 0.6× raw pipe", "retry_ratio_to_pipe_at_least_once", ">=", 0.6),
    ("retry worker transactional ≥ 0.6× raw pipe", "retry_ratio_to_pipe_transactional", ">=", 0.6),
    ("retry lateness p99 ≤ 20 ms", "retry_lateness_p99_ms", "<=", 20.0),
    ("retry worker: 0 early", "retry_early", "<=", 0.0),
    ("RSS flat after warm-up (slope within ±5 MB per million)", "memory_slope_abs_mb_per_million", "<=", 5.0),
    ("RSS flat over the last quarter (slope within ±5 MB per million)",
     "memory_slope_last_quarter_abs_mb_per_million", "<=", 5.0),
]


def _num(v: float | None) -> str:
    return "not measured" if v is None else f"{v:.2f}"


def targets(head: dict[str, Any]) -> list[str]:
    """The issue's targets against this run's headline figures (1 KB shown beside for the ratios)."""
    lines = ["| target | measured (100 B) | bound | met | 1 KB |", "|---|---|---|---|---|"]
    for label, key, op, ref in TARGETS:
        value = head.get(key)
        if isinstance(ref, tuple):
            base = head.get(ref[0])
            bound = base * ref[1] if base is not None else None
        else:
            bound = head.get(ref) if isinstance(ref, str) else ref
        met = "–" if value is None or bound is None else (
            "yes" if (value >= bound if op == ">=" else value <= bound) else "**no**")
        kb = head.get(key.replace("_100B", "_1KB")) if key.endswith("_100B") else None
        lines.append(f"| {label} | {_num(value)} | {op} {_num(bound)} | {met} | {_num(kb) if kb is not None else ''} |")
    return lines


def _fmt_range(s: dict[str, float] | None, fmt: str = "{:,.0f}") -> str:
    if not s:
        return "–"
    if s.get("n", 1) == 1:
        return fmt.format(s["median"])
    return f"{fmt.format(s['median'])} ({fmt.format(s['min'])}–{fmt.format(s['max'])})"


def _machine(doc: dict[str, Any]) -> list[str]:
    m = doc["machine"]
    rows = [("date (UTC)", m["date_utc"]), ("CPU", f"{m['cores']} cores, {m['cpu_model']}"),
            ("load average (1 min) at start / end", f"{m['load_avg_1m']} / {m.get('load_avg_1m_at_end', '–')}"),
            ("platform", m["platform"]), ("Python", m["python"]),
            ("confluent-kafka / librdkafka", f"{m['confluent_kafka']} / {m['librdkafka']}"),
            ("kafka-reliable", m["kafka_reliable"]), ("kafka-python", m["kafka_python"]),
            ("aiokafka", m["aiokafka"]), ("kcat", m["kcat"] or "not installed"),
            ("broker", m["kafka_broker"]), ("Redis", m["redis"])]
    return ["| | |", "|---|---|", *[f"| {k} | {v} |" for k, v in rows]]


def _throughput(doc: dict[str, Any]) -> list[str]:
    t = doc["throughput"]
    lines: list[str] = []
    for size, per in t["summary"].items():
        lines += ["", f"**{size}-byte values**", "",
                  "| contender | records/s | MB/s | ratio to raw | CPU-s per 100k | CPU ratio to raw | peak RSS MB |",
                  "|---|---|---|---|---|---|---|"]
        for name, s in per.items():
            if "error" in s:
                lines.append(f"| {LABELS.get(name, name)} | failed: {s['error']} | | | | | |")
                continue
            lines.append(f"| {s['label']} | {_fmt_range(s['records_per_s'])} | {_fmt_range(s['mb_per_s'], '{:.1f}')}"
                         f" | {_fmt_range(s['ratio_to_raw'], '{:.2f}')} | {_fmt_range(s['cpu_s_per_100k'], '{:.2f}')}"
                         f" | {_fmt_range(s.get('cpu_ratio_to_raw'), '{:.2f}')} | {_fmt_range(s['peak_rss_mb'], '{:.0f}')} |")
    if t.get("unavailable"):
        lines += ["", "Not measured: " + "; ".join(f"{LABELS.get(k, k)} — {v}" for k, v in t["unavailable"].items())
                  + "."]
    return lines


def _latency(doc: dict[str, Any]) -> list[str]:
    lat = doc["latency"]
    lines = [f"Offered {lat['offered_per_s']:,.0f} records/s for {lat['seconds']:g} s per run (3 partitions).",
             "", "| app thread | client | measure | p50 ms | p99 ms | max ms |", "|---|---|---|---|---|---|"]
    for r in lat["runs"]:
        if "error" in r:
            lines.append(f"| {r['mode']} | {r['client']} | failed: {r['error']} | | | |")
            continue
        rows = [("caller's view", r["caller_view"])]
        if r["client"] == "raw":
            rows.append(("librdkafka msg.latency()", r["librdkafka_msg_latency"]))
        else:
            own = r.get("producer_latency_stats") or {}
            if own:
                rows.append((f"producer latency_stats (last {own.get('samples', '?')})", own))
        for label, s in rows:
            lines.append(f"| {r['mode']} | {r['client']} | {label} | {s['p50_ms']:.1f} | {s['p99_ms']:.1f} | "
                         f"{s['max_ms']:.1f} |")
    lines += ["", "Caller's view — raw: from the `produce()` call to its delivery callback, served by `poll(0)` "
              "after each send in the sending loop. Reliable: from the `send_message()` call to the first time "
              "`get_message_status()` says `sent`, as seen by an application thread that checks every "
              "outstanding id every 1 ms (so up to ~1 ms of the figure is the check interval). "
              "`sleep`: the app thread sleeps until the next due time; `busy`: it spins on pure-Python "
              "work (holding the GIL) until then."]
    return lines


def _retry(doc: dict[str, Any]) -> list[str]:
    r = doc["retry_worker"]
    if "error" in r:
        return [f"Failed: {r['error']}"]
    lines = [f"From `{r.get('command', 'scripts/bench_retry_worker.py')}` (its own JSON, folded in as-is)."]
    drains = r.get("drain", [])
    pipe = r.get("raw_pipe") or {}
    if drains:
        lines += ["", "| mode | records | partitions | records/s | ratio to the raw pipe (min–max) |",
                  "|---|---|---|---|---|"]
        if pipe:
            lines.append(f"| raw confluent-kafka consume→produce pipe | {pipe.get('records', 0):,} | "
                         f"{pipe.get('partitions', '–')} | {pipe.get('records_per_s', 0):,} | 1.00 |")
        for d in drains:
            mode = "retry worker, " + ("transactional" if d.get("transactional") else "at-least-once")
            mm = d.get("ratio_min_max") or []
            ratio = f"{d['ratio_to_pipe']:.2f}" if "ratio_to_pipe" in d else "–"
            ratio += f" ({mm[0]:.2f}–{mm[1]:.2f})" if len(mm) == 2 else ""
            lines.append(f"| {mode} | {d.get('records', 0):,} | {d.get('partitions', '–')} | "
                         f"{d.get('records_per_s', 0):,} | {ratio} |")
    if "pipe" in r.get("conditions", {}):
        lines += ["", f"Pipe: {r['conditions']['pipe']}."]
    late = r.get("lateness")
    if late:
        lines += ["", f"Lateness over {late.get('records', '?'):,} records due across {late.get('spread_s', '?')} s: "
                  f"p50 {late.get('p50_ms')} ms, p99 {late.get('p99_ms')} ms, max {late.get('max_ms')} ms, "
                  f"early {late.get('early')} (received {late.get('received')})."]
    for c in r.get("crash", []):
        mode = "transactional" if c.get("transactional") else "at-least-once"
        lines += ["", f"Crash ({mode}): SIGKILL with {c.get('killed_with_in_topic')} of {c.get('records')} "
                  f"republished, restart: lost {c.get('lost')}, duplicates {c.get('duplicates')}."]
    return lines


def _memory(doc: dict[str, Any]) -> list[str]:
    m = doc["memory"]
    if "error" in m:
        return [f"Failed: {m['error']}"]
    return [f"`send_message` loop, status tracking and memory dedup on, {m['records']:,} records of 100 bytes "
            f"({m['records_per_s']:,.0f} records/s); RSS sampled every {m['sample_every']:,} records.", "",
            f"RSS at start {m['rss_start_mb']:.0f} MB, peak {m['rss_peak_mb']:.0f} MB, end {m['rss_end_mb']:.0f} MB; "
            f"after warm-up (first {m['warmup_records']:,} records): {m['rss_after_warmup_min_mb']:.0f}–"
            f"{m['rss_after_warmup_max_mb']:.0f} MB, slope **{m['slope_after_warmup_mb_per_million']:+.1f} MB per "
            f"million records** (least squares; last quarter {m.get('slope_last_quarter_mb_per_million', float('nan')):+.1f}, "
            f"whole run {m.get('slope_whole_run_mb_per_million', float('nan')):+.1f}). A step in the chart is a "
            "hash table growing once (e.g. a dict rebuilt after churn), a steady slope is growth per record. "
            f"Bounds declared by the library: {m.get('bounds') or 'unknown'}."]


def _plain(v: Any) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{k} {_plain(x)}" for k, x in v.items())
    if isinstance(v, list):
        return ", ".join(_plain(x) for x in v)
    return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v)


def markdown(doc: dict[str, Any], json_path: Path, images: list[Path], md_dir: Path) -> str:
    c = doc["conditions"]
    rel = json_path.relative_to(ROOT)
    lines = ["# Benchmarks", "",
             f"Generated by `{doc.get('command', 'python scripts/bench.py')}` from `{rel}` — do not edit by hand; "
             "re-run `make bench` (full) or `make bench-quick`." + (" **Quick smoke run: small sizes, one round "
                                                                     "— not for quoting.**" if doc.get("quick") else ""),
             "", "Re-run: `make bench` (full: 3 rounds, 100,000 records per trial, 20 s latency runs, 2,000,000 "
             "records for RSS; <= 20 min on a quiet 2-core machine), `make bench-quick` (smoke run into "
             "`bench/results/quick/`, < 3 min), `python scripts/bench.py --help` for subsets "
             "(`--sections`, `--contenders`, `--sizes`, `--rounds`, `--records`), `--report-only` to redraw "
             "the charts and this page from the JSON.",
             "", "## Machine", "", *_machine(doc), "", "## Conditions", "",
             *[f"- {k.replace('_', ' ')}: {_plain(v)}" for k, v in c.items()]]
    if "elapsed_s" in doc:
        parts = ", ".join(f"{k} {v:.0f} s" for k, v in doc.get("section_elapsed_s", {}).items())
        lines.append(f"- suite wall time: {doc['elapsed_s']:.0f} s" + (f" ({parts})" if parts else ""))
    img = {p.stem: p.relative_to(md_dir) if p.is_relative_to(md_dir) else p for p in images}
    if "throughput" in doc:
        lines += ["", "## 1. Throughput", "", "Median over rounds (min–max in brackets).", *_throughput(doc)]
        if "bench-ratios" in img:
            lines += ["", f"![ratios to raw]({img['bench-ratios']})", "",
                      "Chart rows are contender ids: " + "; ".join(f"`{k}` = {v}" for k, v in LABELS.items()) + "."]
    if "latency" in doc:
        lines += ["", "## 2. Latency at a fixed offered rate", "", *_latency(doc)]
        if "bench-latency-cdf" in img:
            lines += ["", f"![latency CDF]({img['bench-latency-cdf']})"]
    if "retry_worker" in doc:
        lines += ["", "## 3. Retry worker", "", *_retry(doc)]
    if "memory" in doc:
        lines += ["", "## 4. Memory", "", *_memory(doc)]
        if "bench-rss" in img:
            lines += ["", f"![RSS over records]({img['bench-rss']})"]
    lines += ["", "## Issue 13 targets", "", *targets(doc.get("headline", {})), "",
              "Ratios are medians over rounds; a smoke run (--quick) or a loaded machine can say no where a "
              "quiet full run says yes (or the reverse)."]
    lines += ["", "## Headline figures (`headline` in the JSON)", "", "| key | value |", "|---|---|",
              *[f"| `{k}` | {v if v is not None else 'not measured'} |" for k, v in doc.get("headline", {}).items()]]
    return "\n".join(lines) + "\n"
