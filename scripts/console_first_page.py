"""First-page time of the console on a 1,000,000-record DLQ -> bench/results/console.json.

Fills ``<source>.dlq`` fast (raw confluent-kafka producer, small values, our DLQ headers),
starts ``kafka-reliable console`` as its own process, and times HTTP GETs of its pages: the
very first page (a fresh console: its consumer connects), then warm pages (median of 10),
oldest first, a filter matching every record, a rare filter (bounded by the scan budget) and
a record page. The topics are deleted afterwards.

    python scripts/console_first_page.py [--records 1000000] [--partitions 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from kafka_reliable.config import RetryConfig, TopicNaming
from kafka_reliable.errors import classify
from kafka_reliable.routing import route_failure

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "results" / "console.json"


def fill(bootstrap: str, source: str, n: int) -> float:
    """``n`` DLQ records as the producer writes them; returns records/s."""
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50, "batch.size": 1_000_000,
                  "compression.type": "lz4", "queue.buffering.max.messages": 1_000_000})
    now = int(time.time() * 1000)
    headers = route_failure(
        topic=source, classification=classify("_MSG_TIMED_OUT"), error_message="timed out",
        attempt=4, retry_config=RetryConfig(max_retries=3), naming=TopicNaming(), now_ms=now,
        headers=[], message_id="m", first_failure_at_ms=now,
    ).headers
    t0 = time.monotonic()
    for i in range(n):
        while True:
            try:
                p.produce(source + ".dlq", key=b"k%d" % (i % 5000), value=b'{"i":%d}' % i,
                          headers=headers)
                break
            except BufferError:
                p.poll(0.05)
        if i % 10_000 == 0:
            p.poll(0)
    assert p.flush(120) == 0
    return n / (time.monotonic() - t0)


def get_s(url: str) -> float:
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as r:
        r.read()
        assert r.status == 200, url
    return time.perf_counter() - t0


def start_console(bootstrap: str, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "kafka_reliable", "console", "--port", str(port),
                             "--bootstrap-servers", bootstrap], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the console did not start")


def measure(base: str, dlq: str, middle: int) -> dict[str, float]:
    page = f"{base}/dlq/{dlq}"
    out = {"first_page_cold_s": get_s(page)}
    warm = [get_s(page) for _ in range(10)]
    out["first_page_warm_median_s"] = statistics.median(warm)
    out["first_page_warm_max_s"] = max(warm)
    out["oldest_first_page_s"] = statistics.median(get_s(page + "?order=oldest") for _ in range(5))
    out["filter_matching_all_s"] = statistics.median(
        get_s(page + "?error=KafkaTimeoutError") for _ in range(5))
    out["rare_filter_budget_20000_s"] = get_s(page + "?key=k4999")
    out["record_page_s"] = statistics.median(get_s(f"{base}/dlq/{dlq}/record/0/{middle}")
                                             for _ in range(5))
    out["overview_s"] = get_s(f"{base}/?q={dlq}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--port", type=int, default=18080)
    args = ap.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    source = f"console-bench-{int(time.time())}"
    dlq = source + ".dlq"
    for fut in admin.create_topics([NewTopic(t, args.partitions, 1) for t in (source, dlq)]).values():
        fut.result(30)
    proc = None
    try:
        rate = fill(bootstrap, source, args.records)
        load = os.getloadavg()
        proc = start_console(bootstrap, args.port)
        times = measure(f"http://127.0.0.1:{args.port}", dlq, args.records // args.partitions // 2)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(20)
        for fut in admin.delete_topics([source, dlq]).values():
            fut.result(30)
    result = {
        "what": "console page times (HTTP GET against `kafka-reliable console`, page size 50)",
        "records": args.records, "partitions": args.partitions, "fill_records_per_s": round(rate),
        "times_s": {k: round(v, 4) for k, v in times.items()},
        "conditions": {"cpus": os.cpu_count(), "loadavg_at_start": [round(x, 2) for x in load],
                       "python": platform.python_version(), "broker": bootstrap,
                       "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
