"""Background load: a ``send_message`` loop at full speed, as in the throughput run.

``python -m bench.suite.load --topic T --seconds S`` sends until ``S`` seconds have passed or it
is terminated (SIGTERM), then prints one JSON line with the records sent and the rate. Used to
measure the retry worker's lateness while a producer competes for the same cores.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.suite.common import POOL, RDKAFKA_CONF, bootstrap, value_pool


def run(topic: str, seconds: float) -> dict[str, Any]:
    from kafka_reliable import ReliableKafkaProducer

    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    pool = value_pool(100)
    with tempfile.TemporaryDirectory(prefix="bench-load-") as d:
        p = ReliableKafkaProducer(
            bootstrap_servers=bootstrap(), producer_config=dict(RDKAFKA_CONF),
            spool_path=Path(d) / "spool", durability="memory",
        )  # fmt: skip
        send, i = p.send_message, 0
        t0 = time.perf_counter()
        while not stop["now"] and time.perf_counter() - t0 < seconds:
            for _ in range(1000):
                rec = pool[i % POOL]
                rec["seq"] = i
                send(topic, rec, key=str(i))
                i += 1
        elapsed = time.perf_counter() - t0
        p.flush(60)
        p.close(30)
    return {"records": i, "seconds": round(elapsed, 2), "records_per_s": round(i / elapsed)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--topic", required=True)
    ap.add_argument("--seconds", type=float, default=300.0)
    args = ap.parse_args(argv)
    print(json.dumps(run(args.topic, args.seconds)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
