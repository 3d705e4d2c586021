"""``python scripts/bench.py [--quick]``: the whole benchmark suite in one invocation.

Sections: throughput race (every contender, interleaved rounds), latency at a fixed offered
rate, the retry worker (scripts/bench_retry_worker.py), RSS over many records. Writes the
JSON, the PNG charts and the Markdown report generated from that JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from bench.suite import charts, report
from bench.suite.common import (
    RESULTS,
    ROOT,
    bootstrap,
    delete_topics,
    machine,
    new_topics,
    run_child,
)
from bench.suite.throughput import ORDER, race, summarize_trials, unavailable

SECTIONS = ("throughput", "latency", "retry", "memory")
#: Where each mode writes: (JSON, chart folder, Markdown).
FULL_OUT = (RESULTS / "suite.json", ROOT / "docs" / "img", ROOT / "docs" / "benchmarks.md")
QUICK_OUT = (RESULTS / "quick" / "suite.json", RESULTS / "quick", RESULTS / "quick" / "benchmarks.md")


def _log(msg: str) -> None:
    print(msg, flush=True)


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="scripts/bench.py", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run (< 3 min): 1 round, small sizes")
    ap.add_argument("--rounds", type=int, help="interleaved rounds (default 3; 1 with --quick)")
    ap.add_argument("--records", type=int, help="records per throughput trial (default 100000; 10000 quick)")
    ap.add_argument("--sizes", default="100,1024", help="value sizes in bytes, comma separated")
    ap.add_argument("--contenders", help=f"comma separated subset of: {','.join(ORDER)}")
    ap.add_argument("--sections", default=",".join(SECTIONS), help=f"subset of {','.join(SECTIONS)}")
    ap.add_argument("--latency-rate", type=float, default=5000.0)
    ap.add_argument("--latency-seconds", type=float, help="per run (default 20; 3 with --quick)")
    ap.add_argument("--memory-records", type=int, help="default 2000000; 200000 with --quick")
    ap.add_argument("--report-only", action="store_true", help="regenerate charts and Markdown from the JSON")
    ap.add_argument("--json", type=Path, help="with --report-only: read this JSON (e.g. an interrupted run's "
                    "bench/results/suite.partial.json) instead of the mode's suite.json")
    args = ap.parse_args(argv)
    q = args.quick
    args.rounds = args.rounds or (1 if q else 3)
    args.records = args.records or (10_000 if q else 100_000)
    args.latency_seconds = args.latency_seconds or (3.0 if q else 20.0)
    args.memory_records = args.memory_records or (200_000 if q else 2_000_000)
    try:
        args.sizes = [int(s) for s in args.sizes.split(",")]
    except ValueError:
        ap.error(f"--sizes: expected integers like 100,1024, got {args.sizes!r}")
    args.contenders = args.contenders.split(",") if args.contenders else list(ORDER)
    bad = [c for c in args.contenders if c not in ORDER]
    if bad:
        ap.error(f"unknown contender(s) {','.join(bad)}; choose from {','.join(ORDER)}")
    args.sections = args.sections.split(",")
    if not set(args.sections) <= set(SECTIONS):
        ap.error(f"--sections: choose from {','.join(SECTIONS)}")
    if "raw" not in args.contenders:
        args.contenders.insert(0, "raw")
    return args


def run_latency(admin: Any, rate: float, seconds: float) -> dict[str, Any]:
    runs = []
    for mode in ("sleep", "busy"):
        for client in ("raw", "reliable"):
            (topic,) = new_topics(admin, 1, prefix="bench-lat")
            r = run_child("bench.suite.latency", ["--client", client, "--mode", mode, "--topic", topic,
                                                  "--rate", str(rate), "--seconds", str(seconds)],
                          timeout_s=seconds * 3 + 120)
            r.update(client=client, mode=mode)
            runs.append(r)
            view = r.get("caller_view", {})
            _log(f"  {mode:5} {client:8} " + (r["error"] if "error" in r else
                 f"caller view p50 {view['p50_ms']:.1f} p99 {view['p99_ms']:.1f} max {view['max_ms']:.1f} ms"))
            delete_topics(admin, [topic])
    return {"offered_per_s": rate, "seconds": seconds, "runs": runs}


def run_memory(admin: Any, records: int) -> dict[str, Any]:
    (topic,) = new_topics(admin, 1, prefix="bench-mem")
    r = run_child("bench.suite.memory", ["--topic", topic, "--records", str(records)],
                  timeout_s=records / 2000 + 120)
    delete_topics(admin, [topic])
    if "error" not in r:
        _log(f"  {records:,} records: RSS {r['rss_start_mb']:.0f} → {r['rss_end_mb']:.0f} MB, slope after "
             f"warm-up {r['slope_after_warmup_mb_per_million']:+.1f} MB per million records")
    return r


def _save(doc: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n")


def run_all(args: argparse.Namespace, out_json: Path) -> dict[str, Any]:
    """Every selected section; after each one (and each throughput round) the document so far is
    saved to ``<out>.partial.json``, so an interrupted run keeps what it measured."""
    from confluent_kafka.admin import AdminClient

    from bench.suite import retry

    admin = AdminClient({"bootstrap.servers": bootstrap()})
    t0 = time.monotonic()
    partial = out_json.with_suffix(".partial.json")
    doc: dict[str, Any] = {"quick": args.quick, "command": "python scripts/bench.py " + " ".join(sys.argv[1:]),
                           "machine": machine(), "conditions": report.conditions(args), "section_elapsed_s": {}}
    _log(f"machine: {doc['machine']['cores']} cores, {doc['machine']['cpu_model']}, "
         f"load {doc['machine']['load_avg_1m']}")

    def throughput() -> dict[str, Any]:
        skip = unavailable()
        names = [c for c in args.contenders if c not in skip]
        _log(f"throughput: {len(names)} contenders x {len(args.sizes)} sizes x {args.rounds} rounds, "
             f"{args.records:,} records each")
        head = {"unavailable": {k: v for k, v in skip.items() if k in args.contenders}}

        def checkpoint(part: dict[str, Any]) -> None:
            doc["throughput"] = {**head, **part}
            _save(doc, partial)

        return {**head, **race(admin, names, args.sizes, args.records, args.rounds, _log, checkpoint)}

    def retry_worker() -> dict[str, Any]:
        _log("retry worker: scripts/bench_retry_worker.py")
        r = retry.run(args.quick, out_json.parent / "retry_worker.json", timeout_s=240 if args.quick else 900,
                      log=_log)
        if "error" in r:
            _log("  " + r["error"])
        return r

    def latency() -> dict[str, Any]:
        _log(f"latency: {args.latency_rate:,.0f} records/s for {args.latency_seconds:g} s per run")
        return run_latency(admin, args.latency_rate, args.latency_seconds)

    def memory() -> dict[str, Any]:
        _log(f"memory: {args.memory_records:,} records, status tracking + memory dedup")
        return run_memory(admin, args.memory_records)

    steps = {"throughput": ("throughput", throughput), "latency": ("latency", latency),
             "retry": ("retry_worker", retry_worker), "memory": ("memory", memory)}
    for section in SECTIONS:
        if section in args.sections:
            key, fn = steps[section]
            t = time.monotonic()
            doc[key] = fn()
            doc["section_elapsed_s"][section] = round(time.monotonic() - t, 1)
            _save(doc, partial)
    doc["elapsed_s"] = round(time.monotonic() - t0, 1)
    doc["machine"]["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2)
    doc["headline"] = report.headline(doc)
    return doc


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    out_json, img_dir, out_md = QUICK_OUT if args.quick else FULL_OUT
    if args.quick:  # smoke-run output stays out of git
        out_json.parent.mkdir(parents=True, exist_ok=True)
        (out_json.parent / ".gitignore").write_text("# written by scripts/bench.py --quick\n*\n")
    if args.report_only:
        src = args.json or out_json
        if not src.exists():
            print(f"scripts/bench.py: error: {src} not found: run the suite first", file=sys.stderr)
            return 2
        doc = json.loads(src.read_text())
        if "throughput" in doc:  # summaries and headline follow the code of this version
            trials = doc["throughput"]["trials"]
            names = list(dict.fromkeys(t["contender"] for t in trials))
            sizes = list(dict.fromkeys(t["size_bytes"] for t in trials))
            doc["throughput"]["summary"] = summarize_trials(trials, names, sizes)
        doc["headline"] = report.headline(doc)
    else:
        doc = run_all(args, out_json)
        _save(doc, out_json)
        out_json.with_suffix(".partial.json").unlink(missing_ok=True)
    images = charts.draw(doc, img_dir)
    out_md.parent.mkdir(parents=True, exist_ok=True)
    out_md.write_text(report.markdown(doc, out_json, images, out_md.parent))
    written = [out_md, *images] if args.report_only else [out_json, out_md, *images]
    _log("wrote " + ", ".join(str(p.relative_to(ROOT)) for p in written))
    if "elapsed_s" in doc:
        _log(f"suite took {doc['elapsed_s']:.0f} s")
    return 0
