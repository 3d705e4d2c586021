#!/usr/bin/env python
"""The asyncio front end (issue 16): event-loop lag while sending, and throughput side by side.

Three parts, one run, one broker, one machine:
- loop lag: a 1 ms ticker (``asyncio.sleep(0.001)``) measures how late the loop wakes it while
  ``AsyncReliableProducer`` sends ``--rate`` records/s with ``wait=False`` (target: p99 < 5 ms);
  the same ticker on an idle loop is the baseline;
- ``wait=False`` throughput against the sync ``send_message`` loop on the same producer and
  topic, in alternating slices (target: within 15 %); again after one awaited send;
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
from kafka_reliable.aio import AsyncReliableProducer  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "bench" / "results" / "aio.json"
TICK_S = 0.001
#: The paced sender hands over at most this many seconds' worth of records per wake-up.
MAX_BURST_S = 0.003
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
    cpu0 = time.thread_time()
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
    cpu_s = time.thread_time() - cpu0
    left = await p.flush(60)
    bursts_ms.sort()
    return {"records": sent, "seconds": round(elapsed, 3), "achieved_rate": round(sent / elapsed),
            "undelivered_after_flush": left,
            # CPU the loop's thread spent (sends, the sender, the ticker): what the rate needs of a core
            "loop_thread_cpu_s": round(cpu_s, 3), "loop_thread_cpu_us_per_record": round(cpu_s / sent * 1e6, 2),
            # how long the loop was held by the sends themselves, per wake-up of the sender
            "send_burst_ms": {"n": len(bursts_ms), "p50": round(percentile(bursts_ms, 0.5), 3),
                              "p99": round(percentile(bursts_ms, 0.99), 3), "max": round(bursts_ms[-1], 3)}}


async def loop_lag(spool_dir: str, topic: str, rate: int, seconds: float, pool: list[dict[str, Any]]) -> dict[str, Any]:
    async def idle() -> None:
        await asyncio.sleep(min(seconds, 2.0))

    _, baseline = await with_ticker(idle)
    async with _aio(spool_dir, "lag") as p:
        await p.send_message(topic, {"warm": True}, wait=False)  # only wait=False sends: fast path on
        await p.flush(30)
        sending, lag = await with_ticker(lambda: paced_sends(p, topic, rate, seconds, pool))
        stats = await p.get_stats()
    return {"target_rate": rate, "max_burst_s": MAX_BURST_S, "idle_loop": baseline, "while_sending": lag,
            "sending": sending,
            "messages_sent": stats["messages_sent"], "target_p99_ms": 5.0,
            "meets_target": lag["p99_ms"] < 5.0}


# ---- throughput: wait=False vs the sync loop -------------------------------------------------

async def slices(p: AsyncReliableProducer, topic: str, n: int, slices_n: int,
                 pool: list[dict[str, Any]]) -> tuple[list[float], list[float]]:
    """The sync ``send_message`` loop and the ``await send_message(wait=False)`` loop on one
    producer and topic, in alternating slices (which goes first alternates too), each slice
    flushed: the machine's load drifts, so only neighbouring slices are compared."""
    per = max(1, n // slices_n)
    sync_send, async_send = p.sync.send_message, p.send_message
    sync_r: list[float] = []
    async_r: list[float] = []
    seq = 0

    def run_sync() -> None:
        nonlocal seq
        t0 = time.perf_counter()
        for _ in range(per):
            sync_send(topic, pool[seq % POOL], key=str(seq))
            seq += 1
        p.sync.flush(60)  # the sync producer's own flush, as a sync caller would
        sync_r.append(per / (time.perf_counter() - t0))

    async def run_async() -> None:
        nonlocal seq
        t0 = time.perf_counter()
        for _ in range(per):
            await async_send(topic, pool[seq % POOL], key=str(seq), wait=False)
            seq += 1
        await p.flush(60)
        async_r.append(per / (time.perf_counter() - t0))

    for i in range(slices_n):
        if i % 2:
            await run_async()
            run_sync()
        else:
            run_sync()
            await run_async()
    return sync_r, async_r


async def nowait_vs_sync(spool_dir: str, topic: str, n: int, slices_n: int, pool: list[dict[str, Any]]) -> dict:
    async with _aio(spool_dir, "nowait") as p:
        await p.send_message(topic, {"warm": True}, wait=False)
        await p.flush(30)
        fast_sync, fast_async = await slices(p, topic, n, slices_n, pool)
        # after one awaited send the producer listens to every record's outcome: the sync
        # producer's no-listener fast path is off for both loops from then on
        await p.send_message(topic, {"awaited": True})
        slow_sync, slow_async = await slices(p, topic, n, slices_n, pool)

    def part(sync_r: list[float], async_r: list[float]) -> dict[str, Any]:
        ratios = [a / b for a, b in zip(async_r, sync_r, strict=True)]
        return {"sync_send_message_per_s": [round(x) for x in sync_r],
                "async_wait_false_per_s": [round(x) for x in async_r],
                "median_sync_per_s": median(sync_r), "median_async_per_s": median(async_r),
                "median_ratio_of_neighbouring_slices": round(statistics.median(ratios), 3)}

    return {"records_per_slice": max(1, n // slices_n), "slices_per_side": slices_n,
            "only_wait_false_sends": part(fast_sync, fast_async),
            "after_an_awaited_send": part(slow_sync, slow_async),
            "note": "one producer, one topic, alternating slices; an awaited send makes the async producer "
                    "listen to every record's outcome, which turns the sync producer's no-listener fast path "
                    "off for all sends (hook requested from the producer)",
            "target": "ratio >= 0.85"}


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
    ap.add_argument("--records", type=int, default=200_000, help="records per side of the wait=False comparison")
    ap.add_argument("--slices", type=int, default=10, help="alternating slices per side")
    ap.add_argument("--awaited-records", type=int, default=30_000, help="records per awaited round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    if min(args.rate) < 1:
        ap.error("--rate must be >= 1")
    for name in ("records", "slices", "awaited_records", "rounds"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1")

    admin = AdminClient({"bootstrap.servers": bootstrap()})
    pool = value_pool(100)
    topics = new_topics(admin, len(args.rate) + 1 + 2 * args.rounds, prefix="bench-aio")
    it = iter(topics)
    conditions = {"machine": machine(), "partitions": PARTITIONS, "rdkafka": RDKAFKA_CONF, "value_bytes": 100,
                  "concurrency": CONCURRENCY, "rounds_awaited": args.rounds,
                  "note": "shared machine (2 cores, other sessions running tests and benchmarks): "
                          "moderate sizes, one run; read figures with load_avg_1m"}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-aio-") as spool_dir:
            lags = []
            for rate in args.rate:
                lags.append(asyncio.run(loop_lag(spool_dir, next(it), rate, args.lag_seconds, pool)))
                print(f"loop lag at {rate}/s: {lags[-1]['while_sending']} (idle {lags[-1]['idle_loop']}), "
                      f"achieved {lags[-1]['sending']['achieved_rate']}/s", flush=True)
            thr = asyncio.run(nowait_vs_sync(spool_dir, next(it), args.records, args.slices, pool))
            for part in ("only_wait_false_sends", "after_an_awaited_send"):
                q = thr[part]
                print(f"{part}: sync {q['median_sync_per_s']}/s, wait=False {q['median_async_per_s']}/s, "
                      f"ratio {q['median_ratio_of_neighbouring_slices']}", flush=True)
            rel_r: list[float] = []
            aiok_r: list[float] = []
            rel_lag: list[dict] = []
            aiok_lag: list[dict] = []
            for r in range(args.rounds):
                first_ours = r % 2 == 0  # alternate which goes first: the machine's load drifts
                for ours in (first_ours, not first_ours):
                    if ours:
                        rate, lg = asyncio.run(awaited_reliable(spool_dir, next(it), args.awaited_records, pool))
                        rel_r.append(rate)
                        rel_lag.append(lg)
                    else:
                        rate, lg = asyncio.run(awaited_aiokafka(next(it), args.awaited_records, pool))
                        aiok_r.append(rate)
                        aiok_lag.append(lg)
                print(f"round {r + 1}: awaited x{CONCURRENCY} {rel_r[-1]:.0f}/s vs aiokafka {aiok_r[-1]:.0f}/s",
                      flush=True)
    finally:
        delete_topics(admin, topics)
    result = {
        "conditions": conditions,
        "loop_lag": lags,
        "nowait_vs_sync": thr,
        "awaited_concurrent": {
            "records_per_round": args.awaited_records, "concurrent_tasks": CONCURRENCY,
            "async_reliable_await_send_message_per_s": [round(x) for x in rel_r],
            "aiokafka_send_and_wait_per_s": [round(x) for x in aiok_r],
            "median_ratio": round(median(rel_r) / median(aiok_r), 2),
            "loop_lag_async_reliable": rel_lag, "loop_lag_aiokafka": aiok_lag,
            "target": "ratio >= 2",
        },
    }
    conditions["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "conditions"}))
    print(f"wrote {args.out} (load avg {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
