#!/usr/bin/env python
"""The asyncio front end (issue 16): event-loop lag while sending, and throughput side by side.

Three parts, one run, one broker, one machine:
- loop lag: a 1 ms ticker (``asyncio.sleep(0.001)``) measures how late the loop wakes it while
  ``AsyncReliableProducer`` sends ``--rate`` records/s with ``wait=False`` (target: p99 < 5 ms);
  the same ticker on an idle loop is the baseline;
- ``wait=False`` throughput against the sync ``send_message`` loop, interleaved round by round
  (target: within 15 %);
- 1,000 concurrent tasks awaiting each send: ``await send_message`` against aiokafka's
  ``await send_and_wait`` (target: >= 2x), interleaved round by round.

Both clients use the suite's conditions (acks=all, idempotence, linger 5 ms, lz4, 3 partitions,
~100-byte JSON). Writes ``bench/results/aio.json``; read the figures next to ``conditions``
(the machine is shared), never as a pass/fail threshold.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from confluent_kafka.admin import AdminClient  # noqa: E402

from bench.suite.common import (  # noqa: E402
    COMPRESSION,
    LINGER_MS,
    PARTITIONS,
    POOL,
    RDKAFKA_CONF,
    bootstrap,
    delete_topics,
    dumps,
    machine,
    new_topics,
    percentile,
    value_pool,
)
from kafka_reliable import ReliableKafkaProducer  # noqa: E402
from kafka_reliable.aio import AsyncReliableProducer  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "bench" / "results" / "aio.json"
TICK_S = 0.001
#: The paced sender hands over at most this many seconds' worth of records per wake-up.
MAX_BURST_S = 0.002
CONCURRENCY = 1000


# ---- the 1 ms ticker -----------------------------------------------------------------------

class Ticker:
    """Lateness of each 1 ms sleep, in ms."""

    def __init__(self) -> None:
        self.lags_ms: list[float] = []
        self._stop = False

    async def run(self) -> None:
        clock = time.perf_counter
        while not self._stop:
            t0 = clock()
            await asyncio.sleep(TICK_S)
            self.lags_ms.append(max(0.0, (clock() - t0 - TICK_S) * 1000))

    def stop(self) -> dict[str, float]:
        self._stop = True
        lags = sorted(self.lags_ms)
        return {"ticks": len(lags), "p50_ms": round(percentile(lags, 0.50), 3),
                "p99_ms": round(percentile(lags, 0.99), 3), "p999_ms": round(percentile(lags, 0.999), 3),
                "max_ms": round(lags[-1], 3) if lags else float("nan")}


async def with_ticker(work: Callable[[], Awaitable[Any]]) -> tuple[Any, dict[str, float]]:
    ticker = Ticker()
    task = asyncio.ensure_future(ticker.run())
    await asyncio.sleep(0.05)
    ticker.lags_ms.clear()
    try:
        result = await work()
    finally:
        lag = ticker.stop()
        await task
    return result, lag


# ---- producers -----------------------------------------------------------------------------

def _aio(spool_dir: str, name: str) -> AsyncReliableProducer:
    return AsyncReliableProducer(bootstrap_servers=bootstrap(), producer_config=dict(RDKAFKA_CONF),
                                 spool_path=Path(spool_dir) / f"{name}.sqlite3")


async def paced_sends(p: AsyncReliableProducer, topic: str, rate: int, seconds: float,
                      pool: list[dict[str, Any]]) -> dict[str, float]:
    """Send ``rate`` records/s with ``wait=False`` for ``seconds``: each wake-up sends what is due."""
    send = p.send_message
    n_total = int(rate * seconds)
    sent = 0
    bursts_ms: list[float] = []
    clock = time.perf_counter
    t0 = clock()
    while sent < n_total:
        tb = clock()
        # what is due, but never more than MAX_BURST_S worth at once: a sender that fell behind
        # (the machine cannot keep the rate) shows as a lower achieved rate, not as one long burst
        due = min(n_total, int((tb - t0) * rate) + 1, sent + max(1, int(rate * MAX_BURST_S)))
        while sent < due:
            await send(topic, pool[sent % POOL], key=str(sent), wait=False)
            sent += 1
        bursts_ms.append((clock() - tb) * 1000)
        await asyncio.sleep(TICK_S)
    elapsed = clock() - t0
    left = await p.flush(60)
    bursts_ms.sort()
    return {"records": sent, "seconds": round(elapsed, 3), "achieved_rate": round(sent / elapsed),
            "undelivered_after_flush": left,
            # how long the loop was held by the sends themselves, per wake-up of the sender
            "send_burst_ms": {"n": len(bursts_ms), "p50": round(percentile(bursts_ms, 0.5), 3),
                              "p99": round(percentile(bursts_ms, 0.99), 3), "max": round(bursts_ms[-1], 3)}}


async def loop_lag(spool_dir: str, topic: str, rate: int, seconds: float, pool: list[dict[str, Any]]) -> dict[str, Any]:
    async def idle() -> None:
        await asyncio.sleep(min(seconds, 2.0))

    _, baseline = await with_ticker(idle)
    async with _aio(spool_dir, "lag") as p:
        await p.send_message(topic, {"warm": True})
        sending, lag = await with_ticker(lambda: paced_sends(p, topic, rate, seconds, pool))
        stats = await p.get_stats()
    return {"target_rate": rate, "max_burst_s": MAX_BURST_S, "idle_loop": baseline, "while_sending": lag,
            "sending": sending,
            "messages_sent": stats["messages_sent"], "target_p99_ms": 5.0,
            "meets_target": lag["p99_ms"] < 5.0}


# ---- throughput: wait=False vs the sync loop -------------------------------------------------

def sync_loop(spool_dir: str, topic: str, n: int, pool: list[dict[str, Any]]) -> float:
    with ReliableKafkaProducer(bootstrap_servers=bootstrap(), producer_config=dict(RDKAFKA_CONF),
                               spool_path=Path(spool_dir) / "sync.sqlite3") as p:
        p.send_message(topic, {"warm": True})
        p.flush(30)
        send = p.send_message
        t0 = time.perf_counter()
        for i in range(n):
            send(topic, pool[i % POOL], key=str(i))
        p.flush(120)
        return n / (time.perf_counter() - t0)


async def nowait_loop(spool_dir: str, topic: str, n: int, pool: list[dict[str, Any]]) -> float:
    async with _aio(spool_dir, "nowait") as p:
        await p.send_message(topic, {"warm": True})
        send = p.send_message
        t0 = time.perf_counter()
        for i in range(n):
            await send(topic, pool[i % POOL], key=str(i), wait=False)
        await p.flush(120)
        return n / (time.perf_counter() - t0)


# ---- 1,000 concurrent awaited sends vs aiokafka send_and_wait -------------------------------

async def workers(n: int, send_one: Callable[[int], Awaitable[Any]]) -> float:
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
            await send_one(i)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return n / (time.perf_counter() - t0)


async def awaited_reliable(spool_dir: str, topic: str, n: int, pool: list[dict[str, Any]]) -> tuple[float, dict]:
    async with _aio(spool_dir, "awaited") as p:
        await p.send_message(topic, {"warm": True})
        return await with_ticker(lambda: workers(n, lambda i: p.send_message(topic, pool[i % POOL], key=str(i))))


async def awaited_aiokafka(topic: str, n: int, pool: list[dict[str, Any]]) -> tuple[float, dict]:
    from aiokafka import AIOKafkaProducer

    p = AIOKafkaProducer(bootstrap_servers=bootstrap(), acks="all", enable_idempotence=True,
                         compression_type=COMPRESSION, linger_ms=LINGER_MS)
    await p.start()
    try:
        await p.send_and_wait(topic, b"warm")
        return await with_ticker(lambda: workers(
            n, lambda i: p.send_and_wait(topic, dumps(pool[i % POOL]), key=str(i).encode())))
    finally:
        await p.stop()


# ---- main ----------------------------------------------------------------------------------

def median(xs: list[float]) -> float:
    return round(statistics.median(xs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rate", type=int, nargs="+", default=[50_000, 20_000],
                    help="records/s for the loop-lag part (one measurement per rate)")
    ap.add_argument("--lag-seconds", type=float, default=5.0)
    ap.add_argument("--records", type=int, default=100_000, help="records per throughput round")
    ap.add_argument("--awaited-records", type=int, default=30_000, help="records per awaited round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    if min(args.rate) < 1:
        ap.error("--rate must be >= 1")
    for name in ("records", "awaited_records", "rounds"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1")

    admin = AdminClient({"bootstrap.servers": bootstrap()})
    pool = value_pool(100)
    topics = new_topics(admin, len(args.rate) + 4 * args.rounds, prefix="bench-aio")
    it = iter(topics)
    conditions = {"machine": machine(), "partitions": PARTITIONS, "rdkafka": RDKAFKA_CONF, "value_bytes": 100,
                  "concurrency": CONCURRENCY, "rounds": args.rounds,
                  "note": "shared machine (2 cores, other sessions running tests and benchmarks): "
                          "moderate sizes, one run; read figures with load_avg_1m"}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-aio-") as spool_dir:
            lags = []
            for rate in args.rate:
                lags.append(asyncio.run(loop_lag(spool_dir, next(it), rate, args.lag_seconds, pool)))
                print(f"loop lag at {rate}/s: {lags[-1]['while_sending']} (idle {lags[-1]['idle_loop']}), "
                      f"achieved {lags[-1]['sending']['achieved_rate']}/s", flush=True)
            sync_r: list[float] = []
            nowait_r: list[float] = []
            rel_r: list[float] = []
            aiok_r: list[float] = []
            rel_lag: list[dict] = []
            aiok_lag: list[dict] = []
            for r in range(args.rounds):
                t_sync, t_async = next(it), next(it)
                if r % 2:  # alternate which goes first: the machine's load drifts
                    nowait_r.append(asyncio.run(nowait_loop(spool_dir, t_async, args.records, pool)))
                    sync_r.append(sync_loop(spool_dir, t_sync, args.records, pool))
                else:
                    sync_r.append(sync_loop(spool_dir, t_sync, args.records, pool))
                    nowait_r.append(asyncio.run(nowait_loop(spool_dir, t_async, args.records, pool)))
                rate, lg = asyncio.run(awaited_reliable(spool_dir, next(it), args.awaited_records, pool))
                rel_r.append(rate)
                rel_lag.append(lg)
                rate, lg = asyncio.run(awaited_aiokafka(next(it), args.awaited_records, pool))
                aiok_r.append(rate)
                aiok_lag.append(lg)
                print(f"round {r + 1}: sync {sync_r[-1]:.0f}/s, wait=False {nowait_r[-1]:.0f}/s, "
                      f"awaited x{CONCURRENCY} {rel_r[-1]:.0f}/s vs aiokafka {aiok_r[-1]:.0f}/s", flush=True)
    finally:
        delete_topics(admin, topics)
    result = {
        "conditions": conditions,
        "loop_lag": lags,
        "nowait_vs_sync": {
            "records_per_round": args.records, "sync_send_message_per_s": [round(x) for x in sync_r],
            "async_wait_false_per_s": [round(x) for x in nowait_r],
            "median_ratio_async_to_sync": round(median(nowait_r) / median(sync_r), 3),
            "per_round_ratio": [round(a / b, 3) for a, b in zip(nowait_r, sync_r, strict=True)],
            "target": "ratio >= 0.85",
        },
        "awaited_concurrent": {
            "records_per_round": args.awaited_records, "concurrent_tasks": CONCURRENCY,
            "async_reliable_await_send_message_per_s": [round(x) for x in rel_r],
            "aiokafka_send_and_wait_per_s": [round(x) for x in aiok_r],
            "median_ratio": round(median(rel_r) / median(aiok_r), 2),
            "loop_lag_async_reliable": rel_lag, "loop_lag_aiokafka": aiok_lag,
            "target": "ratio >= 2",
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "conditions"}))
    print(f"wrote {args.out} (load avg {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
