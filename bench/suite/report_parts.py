"""Markdown of each section of one result file (report.py assembles the page)."""

from __future__ import annotations

from typing import Any


def fmt_range(s: dict[str, float] | None, fmt: str = "{:,.0f}") -> str:
    if not s:
        return "–"
    if s.get("n", 1) == 1:
        return fmt.format(s["median"])
    return f"{fmt.format(s['median'])} ({fmt.format(s['min'])}–{fmt.format(s['max'])})"


def race_table(per: dict[str, Any], labels: dict[str, str]) -> list[str]:
    """One row per contender: records/s, MB/s, ratios, CPU, peak RSS (median, min–max)."""
    lines = [
        "| contender | records/s | MB/s | ratio to raw | CPU-s per 100k | CPU ratio to raw "
        "| peak RSS MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, s in per.items():
        if "error" in s:
            lines.append(f"| {labels.get(name, name)} | failed: {s['error']} | | | | | |")
            continue
        cells = [
            fmt_range(s["records_per_s"]),
            fmt_range(s["mb_per_s"], "{:.1f}"),
            fmt_range(s["ratio_to_raw"], "{:.2f}"),
            fmt_range(s["cpu_s_per_100k"], "{:.2f}"),
            fmt_range(s.get("cpu_ratio_to_raw"), "{:.2f}"),
            fmt_range(s["peak_rss_mb"], "{:.0f}"),
        ]
        lines.append(f"| {labels.get(name, s.get('label', name))} | " + " | ".join(cells) + " |")
    return lines


def throughput(doc: dict[str, Any]) -> list[str]:
    from bench.suite.throughput import LABELS

    t = doc["throughput"]
    lines: list[str] = ["Median over rounds (min–max in brackets)."]
    for size, per in t.get("summary", {}).items():
        lines += ["", f"**{size}-byte values**", "", *race_table(per, LABELS)]
    if t.get("unavailable"):
        gone = "; ".join(f"`{k}` — {v}" for k, v in t["unavailable"].items())
        lines += ["", f"Not measured: {gone}."]
    return lines


def consumer(doc: dict[str, Any]) -> list[str]:
    from bench.suite.consume import LABELS

    c = doc["consumer"]
    lines = [
        f"{c['records']:,} records of {c['value_bytes']} bytes already in a 3-partition topic, "
        "read by each contender with a fresh group; from the first record handled to the last.",
        "",
        *race_table(c["summary"], LABELS),
    ]
    f = c.get("failures", {})
    if "error" in f:
        lines += ["", f"Consumer under failures: failed: {f['error']}"]
    elif f:
        fl, cr = f.get("flaky", {}), f.get("crash", {})
        g = fl.get
        lines += ["", f"Under failures (`{f.get('command', 'scripts/bench_consumer.py')}`): "
                  f"{g('records', 0):,} records, 10 % failing twice and 1 % always: settled in "
                  f"{g('settled_s')} s, handled once {g('handled_once')}, more than once "
                  f"{g('handled_more_than_once')}, dead-lettered {g('dead_lettered')}; retry "
                  f"lateness p50 {g('lateness_p50_ms')} / p99 {g('lateness_p99_ms')} ms, early "
                  f"{g('early')}. SIGKILL halfway through {cr.get('records', 0):,}: lost "
                  f"{cr.get('lost')}, duplicates {cr.get('duplicates')} (same message id: "
                  f"{cr.get('duplicates_share_message_id')})."]  # fmt: skip
    return lines


def aio(doc: dict[str, Any]) -> list[str]:
    lines = [
        "A 1 ms ticker on the loop while `AsyncReliableProducer` sends with `wait=False` "
        "(library default durability): steady = 20,000 records/s offered for the run's seconds; "
        "burst = 20,000 records offered within 0.5 s. Lag = how late the ticker wakes.",
        "",
        "| run | idle p99 ms | steady p50 / p99 / max ms | steady achieved/s | burst p50 / p99 / "
        "max ms | burst achieved/s |",
        "|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(doc["aio"].get("runs", []), 1):
        if "error" in r:
            lines.append(f"| {i} | failed: {r['error']} | | | | |")
            continue
        s, b = r["steady"], r["burst"]

        def trio(lag: dict[str, float]) -> str:
            return f"{lag['p50_ms']:.1f} / {lag['p99_ms']:.1f} / {lag['max_ms']:.1f}"

        cells = [f"{r['idle_loop']['p99_ms']:.1f}", trio(s["lag"]), f"{s['achieved_per_s']:,}",
                 trio(b["lag"]), f"{b['achieved_per_s']:,}"]  # fmt: skip
        lines.append(f"| {i} | " + " | ".join(cells) + " |")
    lines += ["", "`wait=False` throughput against the sync loop: the producer race's "
              "`async-reliable-nowait` and `reliable-send` rows, round by round "
              "(headline `async_nowait_vs_sync_min_100B`)."]  # fmt: skip
    return lines


def latency(doc: dict[str, Any]) -> list[str]:
    lat = doc["latency"]
    lines = [
        f"Offered {lat['offered_per_s']:,.0f} records/s for {lat['seconds']:g} s per run.",
        "",
        "| app thread | client | measure | p50 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|",
    ]
    for r in lat["runs"]:
        if "error" in r:
            lines.append(f"| {r['mode']} | {r['client']} | failed: {r['error']} | | | |")
            continue
        rows = [("caller's view", r["caller_view"])]
        if r["client"] == "raw":
            rows.append(("librdkafka msg.latency()", r["librdkafka_msg_latency"]))
        for label, s in rows:
            lines.append(f"| {r['mode']} | {r['client']} | {label} | {s['p50_ms']:.1f} | "
                         f"{s['p99_ms']:.1f} | {s['max_ms']:.1f} |")  # fmt: skip
    lines += ["", "Caller's view — raw: `produce()` to its delivery callback; reliable: "
              "`send_message()` to the status flip to `sent`. `sleep`: the app thread sleeps "
              "between sends; `busy`: it spins on pure-Python work holding the GIL."]  # fmt: skip
    return lines


def retry(doc: dict[str, Any]) -> list[str]:
    r = doc["retry_worker"]
    if "error" in r:
        return [f"Failed: {r['error']}"]
    lines = [f"From `{r.get('command', 'scripts/bench_retry_worker.py')}`."]
    pipe = r.get("raw_pipe") or {}
    if r.get("drain"):
        lines += ["", "| mode | records | records/s | ratio to the raw pipe (min–max) |",
                  "|---|---|---|---|"]  # fmt: skip
        if pipe:
            lines.append(f"| raw confluent-kafka consume→produce pipe | {pipe['records']:,} | "
                         f"{pipe['records_per_s']:,} | 1.00 |")  # fmt: skip
        for d in r["drain"]:
            mode = "transactional" if d.get("transactional") else "at-least-once"
            mm = d.get("ratio_min_max") or [0, 0]
            lines.append(f"| retry worker, {mode} | {d['records']:,} | {d['records_per_s']:,} | "
                         f"{d['ratio_to_pipe']:.2f} ({mm[0]:.2f}–{mm[1]:.2f}) |")  # fmt: skip
    for label, late in (("alone", r.get("lateness")), ("under load", r.get("lateness_under_load"))):
        if not late:
            continue
        if "error" in late:
            lines += ["", f"Lateness {label}: failed: {late['error']}"]
            continue
        load = late.get("load", {})
        extra = (f" — meanwhile a `send_message` loop in another process sent "
                 f"{load.get('records_per_s', 0):,} records/s") if load else ""  # fmt: skip
        lines += ["", f"Lateness {label}: {late.get('records', 0):,} records due across "
                  f"{late.get('spread_s')} s: p50 {late.get('p50_ms')} ms, p99 "
                  f"**{late.get('p99_ms')} ms**, max {late.get('max_ms')} ms, early "
                  f"{late.get('early')}{extra}."]  # fmt: skip
    for c in r.get("crash", []):
        mode = "transactional" if c.get("transactional") else "at-least-once"
        lines += ["", f"Crash ({mode}): SIGKILL with {c.get('killed_with_in_topic')} of "
                  f"{c.get('records')} republished, restart: lost {c.get('lost')}, duplicates "
                  f"{c.get('duplicates')}."]  # fmt: skip
    return lines


def dedup(doc: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    titles = {"default_bound": "the default bound", "every_key": "bounded by the key count",
              "ordered_dict_reference": "reference: the OrderedDict store it replaced"}  # fmt: skip
    for key, title in titles.items():
        d = doc["dedup"].get(key)
        if not d:
            continue
        if "error" in d:
            lines += ["", f"`MemoryDeduplicator`, {title}: failed: {d['error']}"]
            continue
        lines += ["", f"`MemoryDeduplicator`, {title} (max_entries {d['max_entries']:,}, TTL "
                  f"{d['ttl_s']} s), {d['keys']:,} distinct content keys claimed through `check()` "
                  f"in chunks of 1,000: **{d['bytes_per_key']:.0f} bytes per key** (RSS "
                  f"{d['rss_start_mb']:.0f} → {d['rss_full_mb']:.0f} MB while it filled); at the "
                  f"end {d['rss_end_mb']:.0f} MB holding {d['held_at_end']:,} keys, slope after it "
                  f"filled {d['slope_after_full_mb_per_million']:+.1f} MB per million keys; "
                  f"{d['check_ns_per_key']:.0f} ns per key claimed."]  # fmt: skip
    return lines[1:]


def memory(doc: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    titles = {
        "memory_dedup": '`send_message`, status tracking and memory dedup, durability="memory"',
        "durable": '`send_message`, durable log (durability="spool")',
    }
    for key, title in titles.items():
        m = doc["memory"].get(key)
        if not m:
            continue
        if "error" in m:
            lines += ["", f"{title}: failed: {m['error']}"]
            continue
        at = ", ".join(f"{int(k):,}: {v:.0f} MB" for k, v in m.get("rss_at_mb", {}).items())
        lines += ["", f"{title}, {m['records']:,} records of 100 bytes "
                  f"({m['records_per_s']:,.0f} records/s). RSS at {at}; slope after warm-up "
                  f"**{m['slope_after_warmup_mb_per_million']:+.1f} MB per million records** "
                  f"(last quarter {m['slope_last_quarter_mb_per_million']:+.1f})."]  # fmt: skip
        disk = m.get("disk")
        if key == "durable" and disk:
            lines += ["", f"Disk (the spool folder): {disk['baseline_mb']:.2f} MB after the "
                      f"warm-up record, peak {disk['peak_mb']:.1f} MB while streaming, "
                      f"**{disk['settled_mb']:.2f} MB once settled** ({disk['settle_wait_s']} s "
                      f"after flush), {disk['after_close_mb']:.2f} MB after close()."]  # fmt: skip
    return lines[1:] if lines else lines
