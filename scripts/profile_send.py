"""Where a ``send_message`` goes: cProfile of 100,000 calls (100 B values) in memory mode and with
the write-ahead log, top functions by own time, written to bench/results/profile_send_message.txt
(the load average at the start and end included). Needs a broker (KAFKA_BOOTSTRAP_SERVERS or
localhost:9092).

    python scripts/profile_send.py [--records 100000]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import tempfile
import time
import uuid
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic

from kafka_reliable import ReliableKafkaProducer

OUT = Path(__file__).resolve().parents[1] / "bench" / "results" / "profile_send_message.txt"


def profile(bootstrap: str, topic: str, durability: str, n: int) -> str:
    with tempfile.TemporaryDirectory(prefix="profile-send-") as d:
        p = ReliableKafkaProducer(
            bootstrap_servers=bootstrap,
            spool_path=os.path.join(d, "spool.sqlite3"),
            durability=durability,
            producer_config={"linger_ms": 5},
        )
        value = {"id": 1, "pad": "x" * 80}
        prof = cProfile.Profile()
        t = time.perf_counter()
        prof.enable()
        for i in range(n):
            p.send_message(topic, value, key=str(i))
        p.flush(60)
        prof.disable()
        wall = time.perf_counter() - t
        p.close(30)
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(16)
    return f"== durability={durability!r}: {n} records in {wall:.2f} s under cProfile\n{out.getvalue()}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=100_000)
    args = ap.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092")
    topic = "profile-send-" + uuid.uuid4().hex[:8]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 3, 1)])[topic].result(30)
    time.sleep(1)
    load = os.getloadavg()
    parts = [profile(bootstrap, topic, mode, args.records) for mode in ("memory", "spool")]
    admin.delete_topics([topic])
    head = f"load average at start {load[0]:.2f}, at end {os.getloadavg()[0]:.2f}\n\n"
    OUT.write_text(head + "\n".join(parts))
    print(head + "\n".join(parts))


if __name__ == "__main__":
    main()
