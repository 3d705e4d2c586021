"""Shared pieces of the benchmark suite: conditions, payloads, topics, machine facts."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"

#: Conditions of issue 13, the same for every contender.
PARTITIONS = 3
LINGER_MS = 5
COMPRESSION = "lz4"
#: librdkafka settings shared by the raw producer, the reliable one and kcat.
RDKAFKA_CONF: dict[str, Any] = {
    "acks": "all",
    "enable.idempotence": True,
    "linger.ms": LINGER_MS,
    "compression.type": COMPRESSION,
}
#: Base record: 100 bytes of JSON with a sequence number. Larger sizes add a note of random hex,
#: different in each pool slot, so lz4 does not get a run of one character for free.
BASE_VALUE: dict[str, Any] = {
    "user_id": "u-12345",
    "order_id": "o-987",
    "amount_cents": 9999,
    "currency": "EUR",
    "items": 3,
    "seq": 0,
}
#: Records handed to the clients come from a pool of this many dicts (unique ``seq`` per record).
POOL = 1000


def bootstrap() -> str:
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092")


def redis_url() -> str:
    return os.environ.get("REDIS_URL", "redis://localhost:6379/0")


def replication_factor() -> int:
    """Replication factor of the bench's topics (``BENCH_REPLICATION_FACTOR``; 3 with --cluster)."""
    return int(os.environ.get("BENCH_REPLICATION_FACTOR", "1"))


def topic_config() -> dict[str, str]:
    """Topic settings of the bench's topics (``min.insync.replicas`` on the cluster)."""
    isr = os.environ.get("BENCH_MIN_INSYNC_REPLICAS")
    return {"min.insync.replicas": isr} if isr else {}


def dumps(value: Any) -> bytes:
    """The JSON encoding every contender uses (the project's JsonSerializer settings)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def value_pool(size_bytes: int) -> list[dict[str, Any]]:
    """``POOL`` dicts whose JSON is ``size_bytes`` long (±a few bytes as ``seq`` grows)."""
    base = dict(BASE_VALUE, seq=100000)
    if size_bytes <= len(dumps(base)):
        return [dict(base) for _ in range(POOL)]
    base["note"] = ""
    pad = size_bytes - len(dumps(base))
    rnd = random.Random(13)
    return [dict(base, note=rnd.randbytes(pad // 2 + 1).hex()[:pad]) for _ in range(POOL)]


def new_topics(admin: Any, count: int, prefix: str = "bench") -> list[str]:
    """Create ``count`` fresh topics of ``PARTITIONS`` partitions and wait for their leaders."""
    from confluent_kafka.admin import NewTopic

    names = [f"{prefix}-{uuid.uuid4().hex[:10]}" for _ in range(count)]
    rf, conf = replication_factor(), topic_config()
    futures = admin.create_topics([NewTopic(n, PARTITIONS, rf, config=conf) for n in names])
    for f in futures.values():
        f.result(30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        md = admin.list_topics(timeout=10).topics
        if all(
            n in md
            and len(md[n].partitions) == PARTITIONS
            and all(p.leader >= 0 for p in md[n].partitions.values())
            for n in names
        ):
            return names
        time.sleep(0.1)
    raise RuntimeError(f"topics {names} have no leaders after 30 s")


def delete_topics(admin: Any, names: Iterable[str]) -> None:
    names = list(names)
    if names:
        for f in admin.delete_topics(names).values():
            with contextlib.suppress(Exception):  # best effort clean-up of bench topics
                f.result(30)


def end_offsets(bootstrap_servers: str, topic: str) -> int:
    """Records in ``topic`` (sum of high watermarks; the topics are fresh, so low = 0)."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer(
        {"bootstrap.servers": bootstrap_servers, "group.id": f"bench-wm-{uuid.uuid4().hex[:6]}"}
    )
    try:
        return sum(
            c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(PARTITIONS)
        )
    finally:
        c.close()


def summarize(values: list[float]) -> dict[str, float]:
    """Median and min–max of a list of round figures."""
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(p * len(sorted_values)))]


def cdf_points(sorted_values: list[float], points: int = 200) -> list[float]:
    """``points`` evenly spaced quantiles (0 … 1) of a sorted list, for a CDF chart."""
    if not sorted_values:
        return []
    n = len(sorted_values)
    return [sorted_values[min(n - 1, round(i * (n - 1) / (points - 1)))] for i in range(points)]


def vm_hwm_mb(pid: int | str = "self") -> float | None:
    """Peak RSS of a process since its exec (``VmHWM``; ``ru_maxrss`` would carry the
    parent's over exec)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _kcat_version() -> str | None:
    exe = shutil.which("kcat")
    if not exe:
        return None
    out = subprocess.run([exe, "-V"], capture_output=True, text=True, timeout=10).stdout
    line = next((x for x in out.splitlines() if x.startswith("Version")), "")
    return line.split("(")[0].replace("Version", "").strip() + (
        f" (librdkafka {line.split('librdkafka ')[1].split()[0]})" if "librdkafka " in line else ""
    )


def _redis_version() -> str | None:
    try:
        import redis

        return str(
            redis.Redis.from_url(redis_url(), socket_timeout=2).info("server").get("redis_version")
        )
    except Exception:  # noqa: BLE001 - informational only
        return None


def machine() -> dict[str, Any]:
    """Facts about the machine and the versions under test (recorded with every result)."""
    import confluent_kafka

    from kafka_reliable.dev.broker import KAFKA_VERSION

    return {
        "date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "cores": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "confluent_kafka": _version("confluent-kafka"),
        "librdkafka": confluent_kafka.libversion()[0],
        "kafka_reliable": _version("kafka-reliable"),
        "kafka_python": _version("kafka-python"),
        "aiokafka": _version("aiokafka"),
        "kcat": _kcat_version(),
        "kafka_broker": os.environ.get("BENCH_TARGET")
        or f"Apache Kafka {KAFKA_VERSION} at {bootstrap()} (single node, loopback)",
        "redis": _redis_version(),
    }


def run_child(module: str, args: list[str], timeout_s: float) -> dict[str, Any]:
    """Run ``python -m module args`` and return the JSON object on its last stdout line, or
    ``{"error": why}`` (non-zero exit, no JSON, timeout): a failed child never raises."""
    path = os.pathsep.join(x for x in (os.environ.get("PYTHONPATH"), str(ROOT)) if x)
    env = {**os.environ, "PYTHONPATH": path, "KAFKA_RELIABLE_LOG_LEVEL": "WARNING"}
    cmd = [sys.executable, "-m", module, *args]
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            cwd=tempfile.gettempdir(),
            env=env,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"{module} {' '.join(args)} did not finish within {timeout_s:.0f} s"}
    lines = [x for x in proc.stdout.splitlines() if x.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"error": f"{module} {' '.join(args)} exited {proc.returncode}: {' | '.join(tail)}"}
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except ValueError as exc:
        return {"error": f"{module}: unreadable result line ({exc})"}
    return result


def rss_mb(pid: int | str = "self") -> float:
    """Current resident set size of a process, MB."""
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def dir_bytes(path: Path) -> int:
    """Bytes on disk of every file under ``path`` (allocated blocks: sparse files count as used)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(root, name)).st_blocks * 512
    return total
