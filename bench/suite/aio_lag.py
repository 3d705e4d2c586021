"""Event-loop lag while ``AsyncReliableProducer`` sends with ``wait=False``.

Child: ``python -m bench.suite.aio_lag --topic T --rate 20000 --seconds 5 --burst 20000
--burst-seconds 0.5`` prints one JSON line. A 1 ms ticker (``asyncio.sleep(0.001)``) measures
how late the loop wakes it: on an idle loop (baseline), while a paced sender offers ``rate``
records/s for ``seconds``, and while it offers a burst of ``burst`` records within
``burst_seconds``. The paced sender hands over at most ``MAX_BURST_S`` worth of records per
wake-up, as an application serving requests would; a sender that falls behind shows as a
lower achieved rate. The producer runs with the library's default durability.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.suite.common import POOL, RDKAFKA_CONF, bootstrap, percentile, value_pool

TICK_S = 0.001
#: The paced sender hands over at most this many seconds' worth of records per wake-up.
MAX_BURST_S = 0.003


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
        return lag_summary(self.lags_ms)


def lag_summary(lags_ms: list[float]) -> dict[str, float]:
    lags = sorted(lags_ms)
    return {
        "ticks": len(lags),
        "p50_ms": round(percentile(lags, 0.50), 3),
        "p99_ms": round(percentile(lags, 0.99), 3),
        "max_ms": round(lags[-1], 3) if lags else float("nan"),
    }


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


async def paced_sends(
    p: Any, topic: str, rate: float, n_total: int, pool: list[dict[str, Any]]
) -> dict[str, Any]:
    """Offer ``rate`` records/s with ``wait=False`` until ``n_total`` are handed over; flush."""
    send, clock = p.send_message, time.perf_counter
    sent, step = 0, max(1, int(rate * MAX_BURST_S))
    t0 = clock()
    while sent < n_total:
        due = min(n_total, int((clock() - t0) * rate) + 1, sent + step)
        while sent < due:
            await send(topic, pool[sent % POOL], key=str(sent), wait=False)
            sent += 1
        await asyncio.sleep(TICK_S)
    elapsed = clock() - t0
    left = await p.flush(60)
    return {
        "records": sent,
        "offered_per_s": rate,
        "seconds": round(elapsed, 3),
        "achieved_per_s": round(sent / elapsed),
        "undelivered_after_flush": left,
    }


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    from kafka_reliable.aio import AsyncReliableProducer

    pool = value_pool(100)
    _, idle = await with_ticker(lambda: asyncio.sleep(min(args.seconds, 2.0)))
    with tempfile.TemporaryDirectory(prefix="bench-aio-") as d:
        producer = AsyncReliableProducer(
            bootstrap_servers=bootstrap(),
            producer_config=dict(RDKAFKA_CONF),
            spool_path=Path(d) / "spool",
        )
        async with producer as p:
            await p.send_message(args.topic, {"warm": True}, wait=False)
            await p.flush(30)
            steady = int(args.rate * args.seconds)
            s_run, s_lag = await with_ticker(
                lambda: paced_sends(p, args.topic, args.rate, steady, pool)
            )
            b_rate = args.burst / args.burst_seconds
            b_run, b_lag = await with_ticker(
                lambda: paced_sends(p, args.topic, b_rate, args.burst, pool)
            )
            stats = await p.get_stats()
    return {
        "idle_loop": idle,
        "steady": {**s_run, "lag": s_lag},
        "burst": {**b_run, "lag": b_lag},
        "p99_ms_worst": max(s_lag["p99_ms"], b_lag["p99_ms"]),
        "max_burst_s": MAX_BURST_S,
        "durability": stats.get("durability", "library default"),
        "messages_sent": stats.get("messages_sent"),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--topic", required=True)
    ap.add_argument("--rate", type=float, default=20_000)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--burst", type=int, default=20_000)
    ap.add_argument("--burst-seconds", type=float, default=0.5)
    args = ap.parse_args(argv)
    print(json.dumps(asyncio.run(measure(args))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
