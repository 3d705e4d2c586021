"""RSS over many records, and the durable log's disk use after the stream settles.

Child: ``python -m bench.suite.memory --topic T --records 2000000 [--dedup] [--durability
spool]`` prints one JSON line with (records sent, RSS MB) samples and the least-squares slope
of RSS over the samples after warm-up, in MB per million records. Warm-up is the first half:
the bounded structures fill first (memory dedup keeps up to ``DEFAULT_MAX_ENTRIES`` keys, the
status map ``status_capacity`` ids), so with 2,000,000 records the second million shows whether
RSS stays flat once they are full; a shorter run measures the fill, not a plateau.

With a durable mode the spool folder's size is sampled too: after the warm-up record (the
baseline), at every RSS sample, after ``flush()`` until it stops changing (the stream has
settled: every record acknowledged and the log's clean-up done), and after ``close()``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.suite.common import POOL, RDKAFKA_CONF, bootstrap, dir_bytes, rss_mb, value_pool

WARMUP_FRACTION = 0.5


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


def settle(folder: Path, max_wait_s: float = 60.0) -> tuple[int, float]:
    """(bytes, seconds waited) once the folder's size has not changed for 2 s."""
    t0 = time.monotonic()
    last, since = dir_bytes(folder), time.monotonic()
    while time.monotonic() - t0 < max_wait_s and time.monotonic() - since < 2.0:
        time.sleep(0.25)
        now = dir_bytes(folder)
        if now != last:
            last, since = now, time.monotonic()
    return last, time.monotonic() - t0


def _stream(p: Any, topic: str, n: int, every: int, folder: Path) -> dict[str, list[Any]]:
    pool = value_pool(100)
    rss: list[tuple[int, float]] = [(0, rss_mb())]
    disk: list[tuple[int, int]] = [(0, dir_bytes(folder))]
    send = p.send_message
    for i in range(n):
        rec = pool[i % POOL]
        rec["seq"] = i
        send(topic, rec, key=str(i))
        if (i + 1) % every == 0:
            rss.append((i + 1, rss_mb()))
            disk.append((i + 1, dir_bytes(folder)))
    return {"rss": rss, "disk": disk}


def run(topic: str, n: int, samples: int, *, dedup: bool, durability: str) -> dict[str, Any]:
    from kafka_reliable import ReliableKafkaProducer

    with tempfile.TemporaryDirectory(prefix="bench-spool-") as d:
        folder = Path(d)
        p = ReliableKafkaProducer(
            bootstrap_servers=bootstrap(), producer_config=dict(RDKAFKA_CONF),
            spool_path=folder / "spool", enable_deduplication=dedup, durability=durability,
        )  # fmt: skip
        p.send_message(topic, {"warm": True}, key="warm")
        p.flush(30)
        t0 = time.perf_counter()
        series = _stream(p, topic, n, max(1, n // samples), folder)
        p.flush(300)
        elapsed = time.perf_counter() - t0
        series["rss"].append((n, rss_mb()))
        settled, waited = settle(folder)
        stats = p.get_stats()
        p.close(30)
        closed = dir_bytes(folder)
    disk = series["disk"]
    return {
        "durability": durability, "dedup": dedup, "elapsed_s": elapsed,
        "records_per_s": n / elapsed, "messages_sent": stats["messages_sent"] - 1,
        **rss_figures(series["rss"], n),
        "disk": {"baseline_mb": disk[0][1] / 1e6, "peak_mb": max(b for _, b in disk) / 1e6,
                 "settled_mb": settled / 1e6, "settle_wait_s": round(waited, 2),
                 "after_close_mb": closed / 1e6, "samples": disk},
    }  # fmt: skip


def _nearest(points: list[tuple[int, float]], mark: int) -> float:
    """RSS of the sample taken nearest to ``mark`` records."""
    return min(points, key=lambda s: abs(s[0] - mark))[1]


def rss_figures(points: list[tuple[int, float]], n: int) -> dict[str, Any]:
    """Slopes, extremes and the RSS at 0, each million and the end (``rss_at_mb``)."""
    after = [s for s in points if s[0] >= n * WARMUP_FRACTION]
    marks = sorted({0, n, *range(1_000_000, n, 1_000_000)})
    at = {str(m): _nearest(points, m) for m in marks}
    return {
        "records": n, "sample_every": points[1][0] if len(points) > 1 else n,
        "rss_start_mb": points[0][1], "rss_peak_mb": max(s[1] for s in points),
        "rss_end_mb": points[-1][1], "rss_at_mb": at,
        "warmup_records": int(n * WARMUP_FRACTION),
        "slope_after_warmup_mb_per_million": slope_mb_per_million(after),
        "slope_whole_run_mb_per_million": slope_mb_per_million(points),
        "slope_last_quarter_mb_per_million": slope_mb_per_million(
            [s for s in points if s[0] >= n * 0.75]
        ),
        "rss_after_warmup_min_mb": min(s[1] for s in after),
        "rss_after_warmup_max_mb": max(s[1] for s in after),
        "bounds": bounds(), "samples": points,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--topic", required=True)
    ap.add_argument("--records", type=int, default=2_000_000)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--dedup", action="store_true", help="memory dedup on")
    ap.add_argument("--durability", default="memory", help="the producer's durability= mode")
    args = ap.parse_args(argv)
    result = run(args.topic, args.records, args.samples, dedup=args.dedup,
                 durability=args.durability)  # fmt: skip
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
