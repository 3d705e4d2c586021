"""PNG charts from the suite's JSON: ratios to raw, latency CDF, RSS over records."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _ratio_panel(ax: Any, summary: dict[str, Any], names: list[str], key: str, title: str) -> None:
    sizes = list(summary)
    height = 0.8 / len(sizes)
    for k, size in enumerate(sizes):
        ys, meds, lo, hi = [], [], [], []
        for i, name in enumerate(names):
            r = summary[size].get(name, {}).get(key)
            if not r:
                continue
            ys.append(i + k * height)
            meds.append(r["median"])
            lo.append(r["median"] - r["min"])
            hi.append(r["max"] - r["median"])
        ax.barh(ys, meds, height=height, xerr=[lo, hi], capsize=2, label=f"{size} B")
    ax.set_yticks([i + height * (len(sizes) - 1) / 2 for i in range(len(names))])
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="lower right", fontsize=7)


def ratios(doc: dict[str, Any], path: Path) -> Path | None:
    summary = doc.get("throughput", {}).get("summary", {})
    if not summary:
        return None
    plt = _plt()
    first = summary[next(iter(summary))]
    names = [n for n in first if "ratio_to_raw" in first[n]]
    fig, (a1, a2) = plt.subplots(1, 2, sharey=True, figsize=(12, 0.5 * len(names) + 1.8))
    _ratio_panel(a1, summary, names, "ratio_to_raw", "records/s ÷ raw of the same round (median, min–max)")
    _ratio_panel(a2, summary, names, "cpu_ratio_to_raw", "raw CPU per record ÷ contender's (1 = as cheap as raw)")
    a1.set_yticklabels(names, fontsize=8)
    a1.invert_yaxis()
    fig.suptitle("Throughput and CPU cost relative to raw confluent-kafka (log scale)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def latency_cdf(doc: dict[str, Any], path: Path) -> Path | None:
    runs = [r for r in doc.get("latency", {}).get("runs", []) if "error" not in r]
    if not runs:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for r in runs:
        style = "-" if r["mode"] == "sleep" else "--"
        series = [("caller view", r["caller_view"])]
        if r["client"] == "raw":
            series.append(("msg.latency()", r["librdkafka_msg_latency"]))
        for label, s in series:
            pts = s.get("cdf_ms", [])
            if pts:
                ys = [i / (len(pts) - 1) for i in range(len(pts))]
                ax.plot(pts, ys, style, label=f"{r['client']} {label}, app {r['mode']}")
    ax.set_xscale("log")
    ax.set_xlabel("produce → ack (ms, log scale)")
    ax.set_ylabel("fraction of records")
    ax.set_title(f"Latency CDF at {doc['latency']['offered_per_s']:,.0f} records/s")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def rss(doc: dict[str, Any], path: Path) -> Path | None:
    m = doc.get("memory", {})
    if "samples" not in m:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot([s[0] / 1e6 for s in m["samples"]], [s[1] for s in m["samples"]])
    ax.axvline(m["warmup_records"] / 1e6, color="grey", linestyle=":", label="end of warm-up")
    ax.set_xlabel("records sent (millions)")
    ax.set_ylabel("RSS (MB)")
    ax.set_ylim(bottom=0)
    ax.set_title(f"RSS, send_message + status + memory dedup "
                 f"(slope after warm-up {m['slope_after_warmup_mb_per_million']:+.1f} MB/million)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def draw(doc: dict[str, Any], folder: Path) -> list[Path]:
    """Every chart the JSON has data for, as ``folder/bench-*.png``."""
    if importlib.util.find_spec("matplotlib") is None:
        print("charts skipped: matplotlib is not installed (pip install -e '.[bench]')", flush=True)
        return []
    folder.mkdir(parents=True, exist_ok=True)
    made = [ratios(doc, folder / "bench-ratios.png"), latency_cdf(doc, folder / "bench-latency-cdf.png"),
            rss(doc, folder / "bench-rss.png")]
    return [p for p in made if p is not None]
