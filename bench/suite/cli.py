"""``python scripts/bench.py [--quick] [--cluster]``: every benchmark in one invocation.

Sections (in run order): producer throughput race (every contender, interleaved rounds, ratios
to raw confluent-kafka of the same round), consumer race, asyncio event-loop lag, latency at a
fixed rate, the retry worker (alone and under load), the memory dedup store, RSS and disk over
millions of records. Writes the JSON (after every section to ``*.partial.json`` too), the PNG
charts and ``docs/benchmarks.md``, generated from the single-broker and the cluster JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from bench.suite import charts, headline, report
from bench.suite.common import RESULTS, ROOT, machine
from bench.suite.sections import SECTIONS, run_section
from bench.suite.target import (
    load_refusal,
    stop_cluster_if_started,
    use_cluster,
    wait_for_quiet,
)
from bench.suite.throughput import ORDER, summarize_trials

#: Full-run sizes, then --quick sizes (a smoke run of < 3 minutes).
FULL = {"rounds": 3, "records": 100_000, "sizes": "100,1024", "latency_seconds": 20.0,
        "memory_records": 2_000_000, "consumer_records": 100_000, "dedup_keys": 5_000_000,
        "aio_runs": 3, "aio_seconds": 10.0}  # fmt: skip
QUICK = {"rounds": 1, "records": 3_000, "sizes": "100", "latency_seconds": 2.0,
         "memory_records": 30_000, "consumer_records": 5_000, "dedup_keys": 200_000,
         "aio_runs": 1, "aio_seconds": 1.0}  # fmt: skip


def _log(msg: str) -> None:
    print(msg, flush=True)


def outputs(quick: bool, cluster: bool) -> tuple[Path, Path, Path]:
    """(JSON, chart folder, Markdown) of a mode."""
    folder = RESULTS / "quick" if quick else RESULTS
    name = "suite-cluster.json" if cluster else "suite.json"
    if quick:
        return folder / name, folder, folder / "benchmarks.md"
    return folder / name, ROOT / "docs" / "img", ROOT / "docs" / "benchmarks.md"


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="scripts/bench.py", description=__doc__.splitlines()[0])
    add = ap.add_argument
    add("--quick", action="store_true", help="smoke run (< 3 min): 1 round, small sizes")
    add("--cluster", action="store_true", help="on the 3-broker dev cluster (RF 3, "
        "min.insync.replicas 2; started if needed) into suite-cluster.json")  # fmt: skip
    add("--force", action="store_true", help="run even when the 1-minute load is >= 0.5")
    add("--wait-load", type=float, default=0.0, metavar="S",
        help="wait up to S seconds for the load to fall below 0.5 before refusing")  # fmt: skip
    add("--sections", default=",".join(SECTIONS), help=f"subset of {','.join(SECTIONS)}")
    add("--contenders", help=f"producer race subset of: {','.join(ORDER)}")
    add("--sizes", help="value sizes in bytes, comma separated (default 100,1024)")
    for key, value in FULL.items():
        if key != "sizes":
            add(f"--{key.replace('_', '-')}", type=type(value),
                help=f"default {value:,} ({QUICK[key]:,} with --quick)")  # fmt: skip
    add("--latency-rate", type=float, default=5000.0)
    add("--report-only", action="store_true", help="redraw charts and Markdown from the JSON")
    add("--json", type=Path, help="with --report-only: read this JSON instead (e.g. a partial)")
    args = ap.parse_args(argv)
    _defaults(ap, args)
    return args


def _defaults(ap: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    try:
        args.sizes = [int(s) for s in str(args.sizes).split(",")]
    except ValueError:
        ap.error(f"--sizes: expected integers like 100,1024, got {args.sizes!r}")
    args.contenders = args.contenders.split(",") if args.contenders else list(ORDER)
    bad = [c for c in args.contenders if c not in ORDER]
    if bad:
        ap.error(f"unknown contender(s) {','.join(bad)}; choose from {','.join(ORDER)}")
    if "raw" not in args.contenders:
        args.contenders.insert(0, "raw")
    args.sections = args.sections.split(",")
    if not set(args.sections) <= set(SECTIONS):
        ap.error(f"--sections: choose from {','.join(SECTIONS)}")


def _save(doc: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n")


def run_all(args: argparse.Namespace, out_json: Path, start: dict[str, Any]) -> dict[str, Any]:
    """Every selected section, each guarded; the document so far is saved after each one."""
    from confluent_kafka.admin import AdminClient

    from bench.suite.common import bootstrap

    admin = AdminClient({"bootstrap.servers": bootstrap()})
    t0 = time.monotonic()
    partial = out_json.with_suffix(".partial.json")
    doc: dict[str, Any] = {**start, "machine": machine(), "conditions": report.conditions(args)}
    _log(f"machine: {doc['machine']['cores']} cores, {doc['machine']['cpu_model']}, "
         f"load {start['load']['start_1m']}; broker {doc['machine']['kafka_broker']}")  # fmt: skip
    for name, key in SECTIONS.items():
        if name in args.sections:

            def save(part: dict[str, Any], key: str = key) -> None:
                _save({**doc, key: part}, partial)

            doc[key] = run_section(name, args, admin, _log, save)
            _save(doc, partial)
    doc["elapsed_s"] = round(time.monotonic() - t0, 1)
    doc["load"]["end_1m"] = round(os.getloadavg()[0], 2)
    doc["headline"] = headline.headline(doc)
    return doc


def _gate(args: argparse.Namespace) -> dict[str, Any] | int:
    """The run's start facts, or an exit code when it must not start."""
    cluster = None
    if args.cluster:
        try:
            cluster = use_cluster(_log)
        except Exception as exc:  # noqa: BLE001 - any start failure ends the run, said plainly
            print(f"scripts/bench.py: error: --cluster: {exc}", file=sys.stderr)
            return 2
    load = wait_for_quiet(args.wait_load, log=_log) if args.wait_load else os.getloadavg()[0]
    refusal = load_refusal(load, force=args.force)
    if refusal:
        print(f"scripts/bench.py: refusing to start: {refusal}", file=sys.stderr)
        stop_cluster_if_started(cluster, _log)
        return 3
    return {
        "quick": args.quick,
        "command": "python scripts/bench.py " + " ".join(sys.argv[1:]),
        "cluster": cluster,
        "load": {"start_1m": round(load, 2), "forced": bool(args.force and load >= 0.5)},
    }


def _report_only(src: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(src.read_text())
    mem = doc.get("memory", {})
    if "samples" in mem:  # a result file from before the durable run: one memory run
        doc["memory"] = {"memory_dedup": mem}
    t = doc.get("throughput", {})
    if "trials" in t:  # summaries and headline follow the code of this version
        names = list(dict.fromkeys(x["contender"] for x in t["trials"]))
        sizes = list(dict.fromkeys(x["size_bytes"] for x in t["trials"]))
        t["summary"] = summarize_trials(t["trials"], names, sizes)
    doc["headline"] = headline.headline(doc)
    return doc


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    out_json, img_dir, out_md = outputs(args.quick, args.cluster)
    if args.quick:  # smoke-run output stays out of git
        out_json.parent.mkdir(parents=True, exist_ok=True)
        (out_json.parent / ".gitignore").write_text("# written by scripts/bench.py --quick\n*\n")
    if args.report_only:
        src = args.json or out_json
        if not src.exists():
            print(f"scripts/bench.py: error: {src} not found: run the suite first", file=sys.stderr)
            return 2
        doc = _report_only(src)
    else:
        start = _gate(args)
        if isinstance(start, int):
            return start
        try:
            doc = run_all(args, out_json, start)
        finally:
            stop_cluster_if_started(start["cluster"], _log)
        _save(doc, out_json)
        out_json.with_suffix(".partial.json").unlink(missing_ok=True)
    return _write_report(args, doc, out_json, img_dir, out_md)


def _write_report(args: argparse.Namespace, doc: dict[str, Any], out_json: Path, img_dir: Path,
                  out_md: Path) -> int:  # fmt: skip
    """Charts of this run, and the Markdown from both result files (this run's and the other
    target's, when it exists)."""
    prefix = "bench-cluster-" if args.cluster else "bench-"
    images = charts.draw(doc, img_dir, prefix)
    other_json = outputs(args.quick, not args.cluster)[0]
    docs: dict[str, report.Doc] = {"single": None, "cluster": None}
    docs["cluster" if args.cluster else "single"] = (doc, out_json)
    if other_json.exists():
        other = _report_only(other_json)
        docs["single" if args.cluster else "cluster"] = (other, other_json)
    all_images = sorted(img_dir.glob("bench-*.png")) if img_dir.exists() else images
    out_md.parent.mkdir(parents=True, exist_ok=True)
    out_md.write_text(report.markdown(docs, all_images, out_md.parent))
    written = [out_md, *images] if args.report_only else [out_json, out_md, *images]
    _log("wrote " + ", ".join(str(p.relative_to(ROOT)) for p in written))
    if "elapsed_s" in doc and not args.report_only:
        _log(f"suite took {doc['elapsed_s']:.0f} s")
    return 0
