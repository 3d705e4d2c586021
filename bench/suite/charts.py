"""PNG charts from the suite's JSON: ratios to raw, latency CDF, RSS over records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.suite.throughput import LABELS


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def ratios(doc: dict[str, Any], path: Path) -> Path | None:
    summary = doc.get("throughput", {}).get("summary", {})
    if not summary:
        return None
    plt = _plt()
    sizes = list(summary)
    names = [n for n in summary[sizes[0]] if "ratio_to_raw" in summary[sizes[0]][n]]
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(names) * len(sizes) + 1.5))
    height = 0.8 / len(sizes)
    for k, size in enumerate(sizes):
        ys, meds, lo, hi = [], [], [], []
        for i, name in enumerate(names):
            r = summary[size].get(name, {}).get("ratio_to_raw")
            if not r:
                continue
            ys.append(i + k * height)
            meds.append(r["median"])
            lo.append(r["median"] - r["min"])
            hi.append(r["max"] - r["median"])
        ax.barh(ys, meds, height=height, xerr=[lo, hi], capsize=2, label=f"{size} B")
    ax.set_yticks([i + height * (len(sizes) - 1) / 2 for i in range(len(names))])
    ax.set_yticklabels([LABELS.get(n, n)[:60] for n in names], fontsize=7)
    ax.invert_yaxis()
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xlabel("records/s ÷ raw confluent-kafka of the same round (median, min–max)")
    ax.legend(loc="lower right")
    ax.set_title("Throughput ratio to raw confluent-kafka")
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
    folder.mkdir(parents=True, exist_ok=True)
    made = [ratios(doc, folder / "bench-ratios.png"), latency_cdf(doc, folder / "bench-latency-cdf.png"),
            rss(doc, folder / "bench-rss.png")]
    return [p for p in made if p is not None]
