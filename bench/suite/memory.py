"""RSS over many records: ``send_message`` with status tracking and memory dedup on.

Child: ``python -m bench.suite.memory --topic T --records 2000000 --samples 200`` prints one
JSON line with (records sent, RSS MB) samples and the least-squares slope of RSS over the
samples after warm-up, in MB per million records. Warm-up is the first half: the bounded
structures fill first (memory dedup keeps up to ``DEFAULT_MAX_ENTRIES`` = 1,000,000 keys, the
status map ``status_capacity`` ids), so with 2,000,000 records the second million shows whether
RSS stays flat once they are full; a shorter run measures the fill, not a plateau.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.suite.common import POOL, RDKAFKA_CONF, bootstrap, value_pool

WARMUP_FRACTION = 0.5
_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE / 1e6


def slope_mb_per_million(samples: list[tuple[int, float]]) -> float:
    """Least-squares slope of RSS (MB) over records, per million records."""
    if len(samples) < 2:
        return 0.0
    xs = [s[0] / 1e6 for s in samples]
    ys = [s[1] for s in samples]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0


def bounds() -> dict[str, Any]:
    """The sizes that bound the producer's memory, as this version of the library declares them."""
    import inspect

    from kafka_reliable import ReliableKafkaProducer

    out: dict[str, Any] = {}
    param = inspect.signature(ReliableKafkaProducer.__init__).parameters.get("status_capacity")
    if param is not None:
        out["status_capacity"] = param.default
    try:
        from kafka_reliable.dedup.base import DEFAULT_MAX_ENTRIES

        out["memory_dedup_max_entries"] = DEFAULT_MAX_ENTRIES
    except ImportError:
        pass
    return out


def run(topic: str, n: int, samples: int) -> dict[str, Any]:
    from kafka_reliable import ReliableKafkaProducer

    pool = value_pool(100)
    every = max(1, n // samples)
    points: list[tuple[int, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench-spool-") as d:
        p = ReliableKafkaProducer(bootstrap_servers=bootstrap(), producer_config=dict(RDKAFKA_CONF),
                                  spool_path=Path(d) / "spool.sqlite3", enable_deduplication=True)
        p.send_message(topic, {"warm": True}, key="warm")
        p.flush(30)
        points.append((0, rss_mb()))
        send = p.send_message
        t0 = time.perf_counter()
        for i in range(n):
            rec = pool[i % POOL]
            rec["seq"] = i
            send(topic, rec, key=str(i))
            if (i + 1) % every == 0:
                points.append((i + 1, rss_mb()))
        p.flush(120)
        elapsed = time.perf_counter() - t0
        points.append((n, rss_mb()))
        stats = p.get_stats()
        p.close(30)
    after = [s for s in points if s[0] >= n * WARMUP_FRACTION]
    return {
        "records": n, "sample_every": every, "elapsed_s": elapsed, "records_per_s": n / elapsed,
        "messages_sent": stats["messages_sent"] - 1, "duplicates": stats.get("duplicates", 0),
        "rss_start_mb": points[0][1], "rss_peak_mb": max(s[1] for s in points), "rss_end_mb": points[-1][1],
        "warmup_records": int(n * WARMUP_FRACTION),
        "slope_after_warmup_mb_per_million": slope_mb_per_million(after),
        "slope_whole_run_mb_per_million": slope_mb_per_million(points), "bounds": bounds(),
        "slope_last_quarter_mb_per_million": slope_mb_per_million([s for s in points if s[0] >= n * 0.75]),
        "rss_after_warmup_min_mb": min(s[1] for s in after), "rss_after_warmup_max_mb": max(s[1] for s in after),
        "samples": points,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--topic", required=True)
    ap.add_argument("--records", type=int, default=2_000_000)
    ap.add_argument("--samples", type=int, default=200)
    args = ap.parse_args(argv)
    print(json.dumps(run(args.topic, args.records, args.samples)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
