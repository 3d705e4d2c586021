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


def ratios(summary: dict[str, Any], path: Path, title: str) -> Path | None:
    if not summary:
        return None
    plt = _plt()
    first = summary[next(iter(summary))]
    names = [n for n in first if first[n].get("ratio_to_raw")]
    if not names:
        return None
    fig, (a1, a2) = plt.subplots(1, 2, sharey=True, figsize=(12, 0.5 * len(names) + 1.8))
    _ratio_panel(a1, summary, names, "ratio_to_raw", "records/s ÷ raw of the same round")
    _ratio_panel(a2, summary, names, "cpu_ratio_to_raw", "raw CPU per record ÷ contender's")
    a1.set_yticklabels(names, fontsize=8)
    a1.invert_yaxis()
    fig.suptitle(title)
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


def rss(series: dict[str, list[list[float]]], path: Path, title: str, xlabel: str) -> Path | None:
    """One line per named series of (count, RSS MB) samples."""
    series = {k: v for k, v in series.items() if v}
    if not series:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4))
    for label, samples in series.items():
        ax.plot([s[0] / 1e6 for s in samples], [s[1] for s in samples], label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("RSS (MB)")
    ax.set_ylim(bottom=0)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def draw(doc: dict[str, Any], folder: Path, prefix: str = "bench-") -> list[Path]:
    """Every chart the JSON has data for, as ``folder/<prefix>*.png``."""
    if importlib.util.find_spec("matplotlib") is None:
        print("charts skipped: matplotlib is not installed (pip install -e '.[bench]')", flush=True)
        return []
    folder.mkdir(parents=True, exist_ok=True)
    mem = doc.get("memory", {})
    made = [
        ratios(doc.get("throughput", {}).get("summary", {}), folder / f"{prefix}ratios.png",
               "Producers: throughput and CPU relative to raw confluent-kafka (log scale)"),
        ratios({"100": doc.get("consumer", {}).get("summary", {})},
               folder / f"{prefix}consumer-ratios.png",
               "Consumers: throughput and CPU relative to a raw consume() loop (log scale)"),
        latency_cdf(doc, folder / f"{prefix}latency-cdf.png"),
        rss({k: v.get("samples", []) for k, v in doc.get("dedup", {}).items()
             if isinstance(v, dict)},
            folder / f"{prefix}dedup-rss.png", "Memory dedup store: RSS over distinct keys",
            "keys claimed (millions)"),
        rss({k: v.get("samples", []) for k, v in mem.items() if isinstance(v, dict)},
            folder / f"{prefix}rss.png", "Producer RSS over records sent",
            "records sent (millions)"),
    ]  # fmt: skip
    return [p for p in made if p is not None]
