#!/usr/bin/env python
"""What deduplication costs per message: memory and Redis, against no dedup and a raw producer.

Two parts, one run:
- micro: ``content_key`` and ``check`` per key at several batch sizes (no broker);
- end to end: the same records through a raw ``confluent_kafka.Producer`` (json.dumps +
  produce + flush), ``ReliableKafkaProducer`` without dedup, with memory dedup and with Redis
  dedup, by ``send_batch`` and by ``send_message``. Variants are interleaved round by round;
  the median and the best of the rounds are reported.

Writes ``bench/results/dedup.json``. Figures are wall-clock on whatever machine runs it: read
them next to the ``conditions`` block, never as a pass/fail threshold.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis  # noqa: E402
from confluent_kafka import Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from kafka_reliable.dedup import MemoryDeduplicator, RedisDeduplicator, content_key  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "bench" / "results" / "dedup.json"


def _values(n: int, tag: str) -> list[dict[str, Any]]:
    """Distinct ~100-byte JSON values (no accidental duplicates)."""
    return [{"id": i, "run": tag, "payload": "x" * 56} for i in range(n)]


def micro_content_key(n: int) -> float:
    vals = [json.dumps(v).encode() for v in _values(n, "ck")]
    t0 = time.perf_counter()
    for v in vals:
        content_key("transactions", b"user-123", v)
    return (time.perf_counter() - t0) / n * 1e6


def micro_check(make: Callable[[], Any], batch_size: int, n: int) -> float:
    d = make()
    keys = [content_key("t", None, uuid.uuid4().bytes) for _ in range(n)]
    d.check(keys[:1])
    t0 = time.perf_counter()
    for i in range(0, n, batch_size):
        d.check(keys[i : i + batch_size])
    elapsed = time.perf_counter() - t0
    if isinstance(d, RedisDeduplicator):
        d.release(keys)
        d.close()
    return elapsed / n * 1e6


def micro(redis_url: str, n: int, repeats: int = 3) -> dict[str, Any]:
    """Best of ``repeats`` (the machine is shared: the best is the least disturbed)."""
    prefix = f"kr-bench:{uuid.uuid4().hex[:8]}:"
    out: dict[str, Any] = {"content_key_us": round(min(micro_content_key(n) for _ in range(repeats)), 3)}
    for bs in (1, 100, 1000, 10_000):
        count = min(n, 2000) if bs == 1 else n
        out[f"memory_check_batch{bs}_us_per_key"] = round(
            min(micro_check(MemoryDeduplicator, bs, count) for _ in range(repeats)), 3
        )
        out[f"redis_check_batch{bs}_us_per_key"] = round(
            min(
                micro_check(lambda: RedisDeduplicator(url=redis_url, key_prefix=prefix), bs, count)
                for _ in range(repeats)
            ),
            3,
        )
    return out


def run_raw(bootstrap: str, topic: str, values: list[dict[str, Any]], batch_size: int, mode: str) -> float:
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 5})
    p.produce(topic, b"warm-up")
    p.flush(30)
    t0 = time.perf_counter()
    for i in range(0, len(values), batch_size):
        for v in values[i : i + batch_size]:
            while True:
                try:
                    p.produce(topic, json.dumps(v).encode(), str(v["id"]).encode())
                    break
                except BufferError:
                    p.poll(0.01)
            p.poll(0)
        if mode == "send_batch":
            p.flush(60)
    p.flush(60)
    return (time.perf_counter() - t0) / len(values) * 1e6


def run_reliable(
    bootstrap: str, topic: str, values: list[dict[str, Any]], batch_size: int, mode: str, dedup: str, redis_url: str
) -> tuple[float, dict[str, Any] | None]:
    from kafka_reliable.producer import ReliableKafkaProducer

    kwargs: dict[str, Any] = {}
    if dedup != "none":
        kwargs["enable_deduplication"] = True
    if dedup == "redis":
        kwargs["redis_client"] = redis.Redis.from_url(redis_url)
    p = ReliableKafkaProducer(bootstrap_servers=bootstrap, **kwargs)
    try:
        p.send_batch(topic, [{"warm": uuid.uuid4().hex}])
        t0 = time.perf_counter()
        if mode == "send_batch":
            for i in range(0, len(values), batch_size):
                p.send_batch(topic, values[i : i + batch_size], key_extractor=lambda v: str(v["id"]))
        else:
            for v in values:
                p.send_message(topic, v, key=str(v["id"]))
            p.flush(60)
        elapsed = time.perf_counter() - t0
        return elapsed / len(values) * 1e6, p.get_stats().get("deduplication_stats")
    finally:
        p.close()


def end_to_end(bootstrap: str, redis_url: str, records: int, batch_size: int, rounds: int) -> dict[str, Any]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = f"bench-dedup-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    variants = ["raw", "none", "memory", "redis"]
    results: dict[str, Any] = {}
    try:
        for mode in ("send_batch", "send_message"):
            samples: dict[str, list[float]] = {v: [] for v in variants}
            dedup_seen: dict[str, Any] = {}
            for r in range(rounds):
                for v in variants[r % len(variants):] + variants[: r % len(variants)]:
                    vals = _values(records, f"{mode}-{v}-{r}-{uuid.uuid4().hex[:6]}")
                    if v == "raw":
                        samples[v].append(run_raw(bootstrap, topic, vals, batch_size, mode))
                        continue
                    us, dstats = run_reliable(bootstrap, topic, vals, batch_size, mode, v, redis_url)
                    samples[v].append(us)
                    dedup_seen[v] = dstats
            results[mode] = _summarize(samples, dedup_seen)
    finally:
        admin.delete_topics([topic])
    return results


def _summarize(samples: dict[str, list[float]], dedup_seen: dict[str, Any]) -> dict[str, Any]:
    med = {v: statistics.median(s) for v, s in samples.items()}
    out: dict[str, Any] = {}
    for v, s in samples.items():
        entry: dict[str, Any] = {
            "us_per_msg_median": round(med[v], 2),
            "us_per_msg_best": round(min(s), 2),
            "rounds_us": [round(x, 2) for x in s],
        }
        if v in ("memory", "redis"):
            stats = dedup_seen.get(v)
            entry["dedup_active"] = bool(stats and stats.get("checks"))
            entry["dedup_stats_last_round"] = stats
            entry["added_us_per_msg_vs_none"] = round(med[v] - med["none"], 2)
            entry["relative_to_none"] = round(med[v] / med["none"], 3)
        out[v] = entry
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    ap.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    ap.add_argument("--records", type=int, default=20_000, help="records per variant and round")
    ap.add_argument("--batch-size", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--micro-keys", type=int, default=50_000)
    ap.add_argument("--skip-e2e", action="store_true")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    report: dict[str, Any] = {
        "conditions": {
            "python": platform.python_version(), "cpus": os.cpu_count(), "machine": platform.machine(),
            "records": args.records, "batch_size": args.batch_size, "rounds": args.rounds,
            "value_bytes": len(json.dumps(_values(1, "x" * 30)[0])), "redis": "local loopback",
            "kafka": "local single broker, acks=all, idempotent",
            "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
        "micro": micro(args.redis_url, args.micro_keys),
    }
    if not args.skip_e2e:
        report["end_to_end"] = end_to_end(args.bootstrap, args.redis_url, args.records, args.batch_size, args.rounds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    _print_summary(report, args.out)
    return 0


def _print_summary(report: dict[str, Any], out: Path) -> None:
    print("micro (best of 3, µs per key):")
    for name, us in report["micro"].items():
        print(f"  {name:40s} {us:8.3f}")
    for mode, variants in report.get("end_to_end", {}).items():
        print(f"{mode} (µs per message, median / best of rounds):")
        for name, e in variants.items():
            extra = ""
            if "added_us_per_msg_vs_none" in e:
                extra = f"  +{e['added_us_per_msg_vs_none']} vs none (x{e['relative_to_none']}), active={e['dedup_active']}"
            print(f"  {name:8s} {e['us_per_msg_median']:8.2f} / {e['us_per_msg_best']:8.2f}{extra}")
    print(f"written to {out}")


if __name__ == "__main__":
    raise SystemExit(main())
