"""``docs/benchmarks.md``, generated from the result files only (single broker and cluster)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.suite import report_parts as parts
from bench.suite import targets
from bench.suite.common import COMPRESSION, LINGER_MS, PARTITIONS, ROOT
from bench.suite.throughput import SLOW_SHARE, records_for

Doc = tuple[dict[str, Any], Path] | None


def conditions(args: argparse.Namespace) -> dict[str, Any]:
    from bench.suite.common import replication_factor, topic_config
    from bench.suite.contenders import producer_parameters

    params = producer_parameters()
    return {
        "partitions": PARTITIONS, "replication_factor": replication_factor(),
        "topic_config": topic_config() or "broker defaults",
        "producer": f"acks=all, idempotence, {COMPRESSION}, linger.ms {LINGER_MS}",
        "records_per_trial": args.records,
        "records_per_trial_slow_patterns": {k: records_for(k, args.records) for k in SLOW_SHARE},
        "value_bytes": args.sizes, "rounds": args.rounds,
        "order": "interleaved: every contender once per round; raw first and again last",
        "topics": "a fresh topic per trial, deleted after its round",
        "warm_up": "every client sends one record and waits for its ack before the clock starts",
        "timing": "first send → every record acknowledged (end to end)",
        "ratios": "records/s of a contender / records/s of raw confluent-kafka of the same round "
                  "and size (geometric mean of raw's opening and closing trials); median and "
                  "min–max over rounds",
        "cpu_ratio": "raw's CPU seconds per record / the contender's, same round and size",
        "durability_default": params.get("durability"),
        "fsync_default": params.get("fsync", "no fsync= keyword in this version"),
        "latency": f"{args.latency_rate:,.0f} records/s offered for {args.latency_seconds:g} s",
        "consumer_records": args.consumer_records, "dedup_keys": args.dedup_keys,
        "memory_records": args.memory_records,
    }  # fmt: skip


def _plain(v: Any) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{k} {_plain(x)}" for k, x in v.items())
    if isinstance(v, list):
        return ", ".join(_plain(x) for x in v)
    return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v)


def _machine(doc: dict[str, Any]) -> list[str]:
    m, load = doc["machine"], doc.get("load", {})
    forced = " (**--force: started on a busy machine**)" if load.get("forced") else ""
    rows = [
        ("date (UTC)", m["date_utc"]), ("CPU", f"{m['cores']} cores, {m['cpu_model']}"),
        ("load average (1 min) at start / end",
         f"{load.get('start_1m', m.get('load_avg_1m'))} / {load.get('end_1m', '–')}{forced}"),
        ("platform", m["platform"]), ("Python", m["python"]),
        ("confluent-kafka / librdkafka", f"{m['confluent_kafka']} / {m['librdkafka']}"),
        ("kafka-reliable", m["kafka_reliable"]), ("kafka-python", m["kafka_python"]),
        ("aiokafka", m["aiokafka"]), ("kcat", m["kcat"] or "not installed"),
        ("broker", m["kafka_broker"]), ("Redis", m["redis"]),
    ]  # fmt: skip
    return ["| | |", "|---|---|", *[f"| {k} | {v} |" for k, v in rows]]


#: Section key → (title, renderer, chart stem).
SECTIONS: list[tuple[str, str, Callable[[dict[str, Any]], list[str]], str | None]] = [
    ("throughput", "Producer throughput", parts.throughput, "ratios"),
    ("consumer", "Consumer", parts.consumer, "consumer-ratios"),
    ("aio", "asyncio: event-loop lag", parts.aio, None),
    ("latency", "Latency at a fixed offered rate", parts.latency, "latency-cdf"),
    ("retry_worker", "Retry worker", parts.retry, None),
    ("dedup", "Memory dedup store", parts.dedup, "dedup-rss"),
    ("memory", "RSS and disk over many records", parts.memory, "rss"),
]


def _rendered(render: Callable[[dict[str, Any]], list[str]], doc: dict[str, Any]) -> list[str]:
    """A section's Markdown; a result this code cannot read is said, not raised (the page and
    the other sections are still written)."""
    try:
        return render(doc)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        return [f"This section's results could not be shown ({type(exc).__name__}: {exc})."]


def _target_block(title: str, doc: dict[str, Any], path: Path, images: dict[str, Path],
                  prefix: str) -> list[str]:  # fmt: skip
    lines = [f"## {title}", "", f"From `{path.relative_to(ROOT)}`, command "
             f"`{doc.get('command', 'python scripts/bench.py')}`" + (
             f", {doc['elapsed_s']:.0f} s." if "elapsed_s" in doc else ".")]  # fmt: skip
    if doc.get("quick"):
        lines += ["", "**Quick smoke run: small sizes, one round — not for quoting.**"]
    lines += ["", "### Machine", "", *_machine(doc), "", "### Conditions", ""]
    lines += [f"- {k.replace('_', ' ')}: {_plain(v)}" for k, v in doc["conditions"].items()]
    for n, (key, name, render, chart) in enumerate(SECTIONS, 1):
        if key not in doc:
            continue
        part = doc[key]
        sec = part.get("section", {})
        took = (
            f" ({sec['elapsed_s']:.0f} s, load {sec['load_1m_at_start']} at start)" if sec else ""
        )
        lines += ["", f"### {n}. {name}{took}", ""]
        if "error" in part:
            lines.append(f"Failed: {part['error']}")
            continue
        lines += _rendered(render, doc)
        stem = f"{prefix}{chart}" if chart else None
        if stem and stem in images:
            lines += ["", f"![{name}]({images[stem]})"]
    head = doc.get("headline", {})
    rows = [f"| `{k}` | {'–' if v is None else v} |" for k, v in head.items()]
    lines += ["", "### Headline figures (`headline` in the JSON)", "", "| key | value |",
              "|---|---|", *rows]  # fmt: skip
    return lines


def markdown(docs: dict[str, Doc], images: list[Path], md_dir: Path) -> str:
    """The page: targets for both targets side by side, then each result file in full."""
    single, cluster = docs.get("single"), docs.get("cluster")
    heads = [d[0].get("headline", {}) if d else None for d in (single, cluster)]
    img = {p.stem: p.relative_to(md_dir) if p.is_relative_to(md_dir) else p for p in images}
    lines = [
        "# Benchmarks", "",
        "Generated by `scripts/bench.py` from `bench/results/suite.json` (single broker) and "
        "`bench/results/suite-cluster.json` (3-broker cluster) — do not edit by hand.", "",
        "Re-run on a quiet machine (the suite refuses to start at a 1-minute load ≥ 0.5): "
        "`make bench` (single broker), `make bench-cluster` (the 3-broker dev cluster, RF 3, "
        "min.insync.replicas 2), `make bench-quick` (smoke run into `bench/results/quick/`, "
        "< 3 min). `python scripts/bench.py --help` for subsets; `--report-only` redraws this "
        "page and the charts from the JSON.", "",
        "## Targets (issues 25 and 19)", "", *targets.table(targets.TARGETS, *heads), "",
        "## Earlier targets (issue 13)", "", *targets.table(targets.EARLIER, *heads), "",
        "Ratios are medians over rounds; a smoke run or a loaded machine can say no where a "
        "quiet full run says yes (or the reverse).",
    ]  # fmt: skip
    for title, d, prefix in (("Single broker", single, "bench-"),
                             ("3-broker cluster", cluster, "bench-cluster-")):  # fmt: skip
        if d is None:
            lines += ["", f"## {title}", "", "Not run yet."]
            continue
        lines += ["", *_target_block(title, d[0], d[1], img, prefix)]
    return "\n".join(lines) + "\n"
