"""The suite's sections. Each takes the parsed options and returns its part of the JSON; a
section that fails returns ``{"error": why}`` (see :func:`guarded`) and the run goes on."""

from __future__ import annotations

import argparse
import time
import traceback
from collections.abc import Callable
from typing import Any

from bench.suite import consume, retry
from bench.suite.common import delete_topics, new_topics, run_child
from bench.suite.throughput import race, unavailable

Log = Callable[[str], None]
#: Section name → key of its part in the JSON (in run order: the long memory runs last).
SECTIONS = {
    "throughput": "throughput",
    "consumer": "consumer",
    "aio": "aio",
    "latency": "latency",
    "retry": "retry_worker",
    "dedup": "dedup",
    "memory": "memory",
}


def guarded(name: str, fn: Callable[[], dict[str, Any]], log: Log) -> dict[str, Any]:
    """``fn()``, or ``{"error": ...}`` naming the exception and where it was raised."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - one failed section must not end the run
        where = traceback.extract_tb(exc.__traceback__)[-1]
        why = f"{type(exc).__name__}: {exc} (at {where.filename.split('/')[-1]}:{where.lineno})"
        log(f"  {name} failed: {why}")
        return {"error": why}


def throughput(a: argparse.Namespace, admin: Any, log: Log, save: Callable[[dict], None]) -> dict:
    skip = unavailable(a.contenders)
    names = [c for c in a.contenders if c not in skip]
    for name, why in skip.items():
        log(f"  {name}: {why}")
    log(f"throughput: {len(names)} contenders x {len(a.sizes)} sizes x {a.rounds} rounds, "
        f"{a.records:,} records each")  # fmt: skip
    head = {"unavailable": skip}

    def checkpoint(part: dict[str, Any]) -> None:
        save({**head, **part})

    return {**head, **race(admin, names, a.sizes, a.records, a.rounds, log, checkpoint)}


def consumer(a: argparse.Namespace, admin: Any, log: Log) -> dict[str, Any]:
    log(f"consumer: {len(consume.ORDER)} contenders x {a.rounds} rounds, "
        f"{a.consumer_records:,} records")  # fmt: skip
    out = consume.race(admin, a.consumer_records, a.rounds, log)
    log("consumer under failures: scripts/bench_consumer.py")
    n = str(1_000 if a.quick else 10_000)
    args = ["--flaky-records", n, "--crash-records", n]
    out["failures"] = retry.run_script("bench_consumer.py", args, 300 if a.quick else 900, log)
    return out


def aio(a: argparse.Namespace, admin: Any, log: Log) -> dict[str, Any]:
    log(f"asyncio: event-loop lag, {a.aio_runs} run(s) of {a.aio_seconds:g} s at 20,000/s "
        "plus a burst of 20,000 in 0.5 s")  # fmt: skip
    runs = []
    for i in range(a.aio_runs):
        (topic,) = new_topics(admin, 1, prefix="bench-aio")
        args = ["--topic", topic, "--rate", "20000", "--seconds", str(a.aio_seconds),
                "--burst", "20000", "--burst-seconds", "0.5"]  # fmt: skip
        r = run_child("bench.suite.aio_lag", args, timeout_s=a.aio_seconds * 4 + 120)
        delete_topics(admin, [topic])
        runs.append(r)
        log(f"  run {i + 1}/{a.aio_runs}: " + (r["error"] if "error" in r else
            f"loop lag p99 steady {r['steady']['lag']['p99_ms']:.1f} ms, "
            f"burst {r['burst']['lag']['p99_ms']:.1f} ms"))  # fmt: skip
    return {"runs": runs}


def latency(a: argparse.Namespace, admin: Any, log: Log) -> dict[str, Any]:
    log(f"latency: {a.latency_rate:,.0f} records/s for {a.latency_seconds:g} s per run")
    runs = []
    for mode in ("sleep", "busy"):
        for client in ("raw", "reliable"):
            (topic,) = new_topics(admin, 1, prefix="bench-lat")
            args = ["--client", client, "--mode", mode, "--topic", topic,
                    "--rate", str(a.latency_rate), "--seconds", str(a.latency_seconds)]  # fmt: skip
            r = run_child("bench.suite.latency", args, timeout_s=a.latency_seconds * 3 + 120)
            r.update(client=client, mode=mode)
            runs.append(r)
            view = r.get("caller_view", {})
            log(f"  {mode:5} {client:8} " + (r["error"] if "error" in r else
                f"caller view p50 {view['p50_ms']:.1f} p99 {view['p99_ms']:.1f} ms"))  # fmt: skip
            delete_topics(admin, [topic])
    return {"offered_per_s": a.latency_rate, "seconds": a.latency_seconds, "runs": runs}


def retry_worker(a: argparse.Namespace, admin: Any, log: Log) -> dict[str, Any]:
    log("retry worker: scripts/bench_retry_worker.py, then its lateness under load")
    return retry.run(admin, a.quick, log)


def dedup(a: argparse.Namespace, admin: Any, log: Log) -> dict[str, Any]:
    """The store with its default bound (flat once full?), bounded by the key count (bytes per
    key over every key), and the OrderedDict store it replaced at the default bound."""
    out: dict[str, Any] = {}
    every_key = ["--max-entries", str(a.dedup_keys)]
    configs = {
        "default_bound": [],
        "every_key": every_key,
        "ordered_dict_reference": ["--reference"],
    }
    for name, extra in configs.items():
        log(f"dedup ({name}): memory store over {a.dedup_keys:,} keys")
        r = run_child("bench.suite.dedup_store", ["--keys", str(a.dedup_keys), *extra],
                      timeout_s=a.dedup_keys / 20_000 + 120)  # fmt: skip
        if "error" not in r:
            log(
                f"  {r['bytes_per_key']:.0f} bytes per key, RSS {r['rss_start_mb']:.0f} → "
                f"{r['rss_full_mb']:.0f} MB full → {r['rss_end_mb']:.0f} MB at the end"
            )
        out[name] = r
    return out


def memory(a: argparse.Namespace, admin: Any, log: Log) -> dict[str, Any]:
    out: dict[str, Any] = {}
    variants = {"memory_dedup": ["--dedup"], "durable": ["--durability", "spool"]}
    for name, extra in variants.items():
        log(f"memory ({name}): {a.memory_records:,} records")
        (topic,) = new_topics(admin, 1, prefix="bench-mem")
        args = ["--topic", topic, "--records", str(a.memory_records), *extra]
        r = run_child("bench.suite.memory", args, timeout_s=a.memory_records / 1000 + 300)
        delete_topics(admin, [topic])
        if "error" not in r:
            log(f"  RSS {r['rss_start_mb']:.0f} → {r['rss_end_mb']:.0f} MB, slope after warm-up "
                f"{r['slope_after_warmup_mb_per_million']:+.1f} MB per million; disk settled "
                f"{r['disk']['settled_mb']:.1f} MB")  # fmt: skip
        out[name] = r
    return out


def run_section(name: str, a: argparse.Namespace, admin: Any, log: Log,
                save: Callable[[dict], None]) -> dict[str, Any]:  # fmt: skip
    """One section, guarded, with its wall time and the load at its start."""
    import os

    fns: dict[str, Callable[[], dict[str, Any]]] = {
        "throughput": lambda: throughput(a, admin, log, save),
        "consumer": lambda: consumer(a, admin, log),
        "aio": lambda: aio(a, admin, log),
        "latency": lambda: latency(a, admin, log),
        "retry": lambda: retry_worker(a, admin, log),
        "dedup": lambda: dedup(a, admin, log),
        "memory": lambda: memory(a, admin, log),
    }
    load, t0 = round(os.getloadavg()[0], 2), time.monotonic()
    part = guarded(name, fns[name], log)
    part["section"] = {"elapsed_s": round(time.monotonic() - t0, 1), "load_1m_at_start": load}
    return part
