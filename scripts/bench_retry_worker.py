#!/usr/bin/env python
"""Retry-worker figures on a real broker, side by side with a raw confluent-kafka pipe.

- drain: N records already due in ``<topic>.retry`` (P partitions, ~100-byte values), read by
  a raw consume->produce pipe (confluent-kafka, same client settings, commits every 200 ms)
  and by one worker process (``python -m kafka_reliable.worker``), at-least-once and
  transactional, interleaved over the same records (a fresh group each), R rounds. Rate: from
  the first record written to the target until every record is acknowledged (pipe) or every
  ``.retry`` offset is committed (worker). Ratio: worker / pipe of the same round.
- lateness: N records with staggered due times over S seconds (record i due at i*S/N plus a
  random backoff up to 500 ms), republished into a source topic with LogAppendTime (the broker
  stamps arrival); lateness = arrival - due (p50/p99/max), early = arrivals before due.
- crash: C records due over ~4 s; SIGKILL the worker once half has reached the topic,
  restart it, wait until every ``.retry`` offset is committed; lost and duplicated message ids.

Writes ``bench/results/retry_worker.json`` (``--out``). Wall-clock figures of whatever machine
runs it: read them next to the ``conditions`` block, never as a pass/fail threshold.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import confluent_kafka  # noqa: E402

from bench.suite.common import replication_factor  # noqa: E402
from bench.suite.retry_drain import Cluster, drain, drain_summary, pipe_child  # noqa: E402
from bench.suite.retry_late import crash, lateness  # noqa: E402

OUT = ROOT / "bench" / "results" / "retry_worker.json"
FULL: dict[str, Any] = {
    "records": 100_000,
    "partitions": 6,
    "rounds": 3,
    "lateness_records": 100_000,
    "lateness_spread_s": 10.0,
    "crash_records": 20_000,
}
QUICK: dict[str, Any] = {
    "records": 10_000,
    "partitions": 6,
    "rounds": 1,
    "lateness_records": 5_000,
    "lateness_spread_s": 3.0,
    "crash_records": 4_000,
}


# ---- main ---------------------------------------------------------------------------------
def _git_commit() -> str | None:
    """HEAD of the checkout (``$BENCH_GIT_COMMIT`` when run from an exported tree)."""
    if os.environ.get("BENCH_GIT_COMMIT"):
        return os.environ["BENCH_GIT_COMMIT"]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def conditions(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "confluent_kafka": confluent_kafka.__version__,
        "librdkafka": confluent_kafka.libversion()[0],
        "broker": os.environ.get("BENCH_TARGET") or f"Apache Kafka at {args.bootstrap_servers}",
        "replication_factor": replication_factor(),
        "value_bytes": 100,
        "worker": "one process, defaults (linger.ms=5, lz4, acks=all, idempotent, asynchronous "
        "commit every 200 ms; transactional: a transaction committed every 200 ms)",
        "pipe": "raw confluent-kafka Consumer.consume(500) -> Producer.produce of each record with "
        "its headers (same producer defaults, per-record delivery callback, async commit every "
        "200 ms), own process",
        "timing": "pipe and worker alike: from the first record readable in the target topic until "
        "every .retry offset is committed (worker) or the pipe has flushed and committed; process "
        "start-up excluded",
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "git_commit": _git_commit(),
        "quick": args.quick,
    }


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--bootstrap-servers", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    )
    ap.add_argument(
        "--quick", action="store_true", help="small sizes, one round (< 60 s): a smoke run"
    )
    for key, value in FULL.items():
        ap.add_argument(
            f"--{key.replace('_', '-')}",
            type=type(value),
            help=f"default {value} ({QUICK[key]} quick)",
        )
    ap.add_argument(
        "--pipe-child", nargs=4, metavar=("SOURCE", "SINK", "N", "GROUP"), help=argparse.SUPPRESS
    )
    ap.add_argument(
        "--sections", default="drain,lateness,crash", help="what to run (default: all three)"
    )
    ap.add_argument(
        "--out", type=Path, default=OUT, help=f"JSON output (default {OUT.relative_to(ROOT)})"
    )
    return ap.parse_args()


def main() -> int:
    args = parse()
    if args.pipe_child:
        source, sink, n, group = args.pipe_child
        return pipe_child(args.bootstrap_servers, source, sink, int(n), group)
    size = {
        k: getattr(args, k) if getattr(args, k) is not None else (QUICK if args.quick else FULL)[k]
        for k in FULL
    }
    t0 = time.monotonic()
    result = measure(args, size)
    result["conditions"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["elapsed_s"] = round(time.monotonic() - t0, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


def measure(args: argparse.Namespace, size: dict[str, Any]) -> dict[str, Any]:
    """The selected parts: drain, lateness, crash."""
    cl = Cluster(args.bootstrap_servers)
    result: dict[str, Any] = {"conditions": conditions(args), "sizes": size}
    sections = set(args.sections.split(","))
    write_rate = 30_000.0
    if "drain" in sections:
        d = drain(cl, size["records"], size["partitions"], size["rounds"])
        result["raw_pipe"], result["drain"] = drain_summary(d, size["records"], size["partitions"])
        write_rate = d["write_records_per_s"]
    if "lateness" in sections:
        result["lateness"] = lateness(
            cl, size["lateness_records"], size["lateness_spread_s"], size["partitions"], write_rate
        )
    if "crash" in sections:
        log = args.out.parent / "retry_worker_crash.log"
        log.unlink(missing_ok=True)
        result["crash"] = [
            crash(cl, size["crash_records"], size["partitions"], txn, log) for txn in (False, True)
        ]
        log.unlink(missing_ok=True)
    return result


if __name__ == "__main__":
    sys.exit(main())
