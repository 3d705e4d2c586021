"""Throughput race: every contender, interleaved A B C A B C…, a fresh topic per trial.

Each Python contender runs in a child process of its own (trial.py) so that its CPU time and
peak RSS are its own; kcat runs as the C reference. Raw confluent-kafka runs first and last in
each round; ratios are taken pair by pair against raw of the same round and size (geometric
mean of its two trials), then summarized (median, min–max).
"""

from __future__ import annotations

import importlib.util
import math
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.suite.common import (
    LINGER_MS,
    POOL,
    bootstrap,
    delete_topics,
    dumps,
    end_offsets,
    new_topics,
    run_child,
    summarize,
    value_pool,
    vm_hwm_mb,
)
from bench.suite.contenders import async_reliable_available

_PRODUCER_ROWS = [
    "reliable-send", "reliable-send-noid", "reliable-batch", "reliable-send-memdedup",
    "reliable-batch-redisdedup", "reliable-batch-rcdedup",
]  # fmt: skip
#: Race order inside a round (raw first: every ratio pairs with the raw of its round). Every
#: producer row runs with ``durability="memory"`` and as ``<row>@durable`` (the durable log).
ORDER = [
    "raw",
    *[f"{row}{mode}" for row in _PRODUCER_ROWS for mode in ("", "@durable")],
    "reliable-send@fsync-interval",
    "async-reliable-nowait", "async-reliable-gather", "kafka-python", "aiokafka",
    "aiokafka-send-and-wait", "kcat",
]  # fmt: skip
_BASE_LABELS = {
    "reliable-send": "send_message loop (id header, status)",
    "reliable-send-noid": "send_message loop, message_id_header=False",
    "reliable-batch": "send_batch, 1,000 per call, keys spread over partitions",
    "reliable-send-memdedup": "send_message loop + memory dedup",
    "reliable-batch-redisdedup": "send_batch + Redis dedup",
    "reliable-batch-rcdedup": "send_batch + Redis-Cluster dedup",
}
_MODE_LABELS = {
    "": ', durability="memory"',
    "@durable": ', durable (durability="spool", default fsync)',
    "@fsync-interval": ', durable, fsync="interval" every 100 ms',
}
LABELS = {
    "raw": "raw confluent-kafka produce() + delivery callback + json.dumps",
    **{
        name: _BASE_LABELS[name.partition("@")[0]]
        + _MODE_LABELS["@" + name.partition("@")[2] if "@" in name else ""]
        for name in ORDER
        if name.partition("@")[0] in _BASE_LABELS
    },
    "async-reliable-nowait": "AsyncReliableProducer send_message(wait=False) loop"
    + _MODE_LABELS[""],
    "async-reliable-gather": "AsyncReliableProducer, 1,000 concurrent awaited sends"
    + _MODE_LABELS[""],
    "kafka-python": "kafka-python KafkaProducer.send (future per record)",
    "aiokafka": "aiokafka AIOKafkaProducer send + gather per 1,000",
    "aiokafka-send-and-wait": "aiokafka, 1,000 concurrent send_and_wait tasks",
    "kcat": "kcat -P from a file (C reference)",
}

#: Patterns that run at a few thousand records/s here (a round trip or a task per record, pure
#: Python): a share of the records keeps a full run within its budget; records/s is a steady rate.
SLOW_SHARE = {"kafka-python": 0.25, "aiokafka-send-and-wait": 0.25}


def _producer_problem(name: str) -> str | None:
    """Why a producer row cannot run with this version of the library, or None."""
    from bench.suite.common import redis_url
    from bench.suite.contenders import DURABILITY, RELIABLE_VARIANTS, missing_options
    from bench.suite.services import redis_cluster_problem, redis_problem

    base, _, mode = name.partition("@")
    options = {**RELIABLE_VARIANTS[base][1], **DURABILITY[mode or "memory"]}
    options.pop("redis_cluster", None)
    missing = missing_options(options)
    if missing:
        return f"not available (ReliableKafkaProducer has no {', '.join(missing)} keyword)"
    if base.endswith("rcdedup"):
        return redis_cluster_problem()
    return redis_problem(redis_url()) if base.endswith("redisdedup") else None


def unavailable(names: list[str] | None = None) -> dict[str, str]:
    """Contenders (of ``names``, default all) that cannot run here, with the reason."""
    from bench.suite.contenders import RELIABLE_VARIANTS

    out: dict[str, str] = {}
    for name in names or ORDER:
        if name.partition("@")[0] in RELIABLE_VARIANTS:
            why = _producer_problem(name)
        elif name.startswith("async-reliable"):
            why = async_reliable_available()
        elif name == "kcat":
            why = None if shutil.which("kcat") else "not available (kcat not on PATH)"
        else:
            module = {"kafka-python": "kafka"}.get(name, name.split("-")[0])
            why = (
                None
                if name == "raw" or importlib.util.find_spec(module)
                else (f"not available (no module {module!r}: pip install -e '.[bench]')")
            )
        if why:
            out[name] = why
    return out


def _kcat_once(topic: str, path: Path) -> tuple[float, float, float, int]:
    """Run ``kcat -P`` on ``path``: (wall s, CPU s, peak RSS MB, exit code)."""
    cmd = [
        "kcat",
        "-P",
        "-b",
        bootstrap(),
        "-t",
        topic,
        "-K",
        "\t",
        "-l",
        "-X",
        "acks=all",
        "-X",
        "enable.idempotence=true",
        "-X",
        "compression.type=lz4",
        "-X",
        f"linger.ms={LINGER_MS}",
        str(path),
    ]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = [0.0]
    done = threading.Event()

    def sample() -> (
        None
    ):  # VmHWM until exit: wait4's ru_maxrss carries this process's peak over exec
        while not done.is_set():
            peak[0] = max(peak[0], vm_hwm_mb(proc.pid) or 0.0)
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, ru = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    done.set()
    sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return elapsed, ru.ru_utime + ru.ru_stime, peak[0], proc.returncode


def run_kcat(topic: str, n: int, size: int) -> dict[str, Any]:
    """kcat from a file of ``key<TAB>json`` lines; its start-up (a 1-record run) is subtracted."""
    pool = value_pool(size)
    value_bytes = len(dumps(pool[0]))
    with tempfile.TemporaryDirectory(prefix="bench-kcat-") as d:
        warm, data = Path(d) / "warm.txt", Path(d) / "data.txt"
        warm.write_bytes(b"warm\t{}\n")
        with data.open("wb") as f:
            for i in range(n):
                rec = pool[i % POOL]
                rec["seq"] = i
                f.write(str(i).encode() + b"\t" + dumps(rec) + b"\n")
        w_s, w_cpu, _, rc1 = _kcat_once(topic, warm)
        t_s, t_cpu, rss, rc2 = _kcat_once(topic, data)
    if rc1 or rc2:
        return {"error": f"kcat exited {rc1}/{rc2}"}
    return {
        "contender": "kcat",
        "records": n,
        "acked": end_offsets(bootstrap(), topic) - 1,
        "value_bytes": value_bytes,
        "elapsed_s": max(1e-6, t_s - w_s),
        "cpu_s": max(0.0, t_cpu - w_cpu),
        "peak_rss_mb": rss,
        "note": f"1-record start-up run subtracted ({w_s:.3f} s wall, {w_cpu:.3f} s CPU)",
    }


def records_for(name: str, n: int) -> int:
    """Records of a trial: ``n``, or a share of it for the slowest patterns (at least 10,000)."""
    return n if name not in SLOW_SHARE else min(n, max(10_000, int(n * SLOW_SHARE[name])))


def run_trial(name: str, topic: str, n: int, size: int) -> dict[str, Any]:
    if name == "kcat":
        r = run_kcat(topic, n, size)
    else:
        r = run_child(
            "bench.suite.trial",
            ["--contender", name, "--topic", topic, "--records", str(n), "--size-bytes", str(size)],
            timeout_s=120 + n / 2000,
        )
    if "error" not in r:
        written = end_offsets(bootstrap(), topic) - 1
        if written != n or r["acked"] != n:
            r["error"] = f"{name}: {r['acked']} acked, {written} in the topic, {n} sent"
        r["records_per_s"] = n / r["elapsed_s"]
        r["mb_per_s"] = n * r["value_bytes"] / r["elapsed_s"] / 1e6
        r["cpu_s_per_100k"] = r["cpu_s"] / n * 100_000
    return r


def _guarded_trial(name: str, topic: str, n: int, size: int) -> dict[str, Any]:
    """``run_trial``; a broker error while checking the topic fails this trial, not the race."""
    try:
        return run_trial(name, topic, n, size)
    except Exception as exc:  # noqa: BLE001 - one trial's failure is its row's result
        return {"error": f"{name}: {type(exc).__name__}: {exc}"}


def race(
    admin: Any,
    names: list[str],
    sizes: list[int],
    n: int,
    rounds: int,
    log: Callable[[str], None],
    checkpoint: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """All rounds; returns raw trials and, per size and contender, summaries and ratios.
    ``checkpoint`` gets the same shape after every round and size."""
    trials: list[dict[str, Any]] = []
    order = [*names, "raw"] if len(names) > 1 else names  # raw opens and closes each round
    for rnd in range(rounds):
        for size in sizes:
            topics = new_topics(admin, len(order), prefix=f"bench-r{rnd}-{size}")
            for name, topic in zip(order, topics, strict=True):
                load = os.getloadavg()[0]
                r = _guarded_trial(name, topic, records_for(name, n), size)
                r.update(round=rnd, size_bytes=size, contender=name, load_1m_before=round(load, 2))
                trials.append(r)
                log(
                    f"  round {rnd + 1}/{rounds} {size:>5} B {name:<26} "
                    + (
                        r["error"]
                        if "error" in r
                        else f"{r['records_per_s']:>9,.0f} rec/s "
                        f"{r['cpu_s_per_100k']:5.2f} CPU-s/100k {r['peak_rss_mb']:6.1f} MB"
                    )
                )
            delete_topics(admin, topics)
            if checkpoint is not None:
                checkpoint({"trials": trials, "summary": summarize_trials(trials, names, sizes)})
    return {"trials": trials, "summary": summarize_trials(trials, names, sizes)}


def _raw_per_round(raw_trials: list[dict[str, Any]]) -> dict[int, dict[str, float]]:
    """Raw's figures per round: the geometric mean of the trials that open and close the round,
    so that load drifting during a round biases no contender's ratio one way."""
    out: dict[int, dict[str, float]] = {}
    for rnd in {t["round"] for t in raw_trials}:
        ts = [t for t in raw_trials if t["round"] == rnd]
        out[rnd] = {
            k: math.prod(t[k] for t in ts) ** (1 / len(ts))
            for k in ("records_per_s", "cpu_s_per_100k")
        }
    return out


def summarize_trials(
    trials: list[dict[str, Any]], names: list[str], sizes: list[int]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for size in sizes:
        raw = _raw_per_round(
            [
                t
                for t in trials
                if t["size_bytes"] == size and t["contender"] == "raw" and "error" not in t
            ]
        )
        per: dict[str, Any] = {}
        for name in names:
            ok = [
                t
                for t in trials
                if t["size_bytes"] == size and t["contender"] == name and "error" not in t
            ]
            errors = [
                t["error"]
                for t in trials
                if t["size_bytes"] == size and t["contender"] == name and "error" in t
            ]
            if not ok:
                per[name] = {"error": errors[0] if errors else "no trial"}
                continue
            paired = [(t, raw[t["round"]]) for t in ok if t["round"] in raw]
            ratios = [t["records_per_s"] / r["records_per_s"] for t, r in paired]
            cpu = [
                r["cpu_s_per_100k"] / t["cpu_s_per_100k"]
                for t, r in paired
                if t["cpu_s_per_100k"] > 0
            ]
            per[name] = {
                "label": LABELS.get(name, name),
                "records_per_s": summarize([t["records_per_s"] for t in ok]),
                "mb_per_s": summarize([t["mb_per_s"] for t in ok]),
                "cpu_s_per_100k": summarize([t["cpu_s_per_100k"] for t in ok]),
                "peak_rss_mb": summarize([t["peak_rss_mb"] for t in ok]),
                "ratio_to_raw": summarize(ratios) if ratios else None,
                "cpu_ratio_to_raw": summarize(cpu) if cpu else None,
                "failed_rounds": len(errors),
            }
        out[str(size)] = per
    return out
