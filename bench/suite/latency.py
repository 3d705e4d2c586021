"""Produce→ack latency at a fixed offered rate, raw vs reliable, app thread sleeping or busy.

Child: ``python -m bench.suite.latency --client raw|reliable --mode sleep|busy --topic T
--rate 5000 --seconds 20`` prints one JSON line. Record i is due at ``t0 + i / rate``; between
sends the application thread either sleeps until the next due time (``sleep``) or spins on
pure-Python work holding the GIL (``busy``).

- raw: librdkafka's own ``msg.latency()`` and, from the caller's view, the time from the
  ``produce()`` call to the delivery callback (served by ``poll(0)`` after each send).
- reliable: from the caller's view, the time from ``send_message()`` to the moment
  ``get_message_status()`` says ``sent`` (the status flip, reported by
  ``ReliableKafkaProducer.watch`` from whichever thread served the report); plus the
  producer's own ``latency_stats`` (librdkafka's ``msg.latency()``).
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.suite.common import RDKAFKA_CONF, bootstrap, cdf_points, dumps, percentile

VALUE: dict[str, Any] = {"user_id": "u-12345", "order_id": "o-987", "amount_cents": 9999, "seq": 0}


def _wait_until(due: float, busy: bool) -> None:
    if busy:
        x = 0
        while time.perf_counter() < due:
            for k in range(40):
                x += k * k
        return
    left = due - time.perf_counter()
    if left > 0:
        time.sleep(left)


def _stats(ms: list[float]) -> dict[str, Any]:
    ms.sort()
    return {
        "count": len(ms),
        "p50_ms": percentile(ms, 0.50),
        "p99_ms": percentile(ms, 0.99),
        "max_ms": ms[-1] if ms else float("nan"),
        "cdf_ms": cdf_points(ms),
    }


def run_raw(topic: str, n: int, rate: float, busy: bool) -> dict[str, Any]:
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bootstrap(), **RDKAFKA_CONF})
    p.produce(topic, b"warm", b"warm")
    p.flush(30)
    sent_at = [0.0] * n
    lib_ms: list[float] = []
    caller_ms: list[float] = []

    def cb(err: Any, msg: Any) -> None:
        if err is None:
            caller_ms.append((time.perf_counter() - sent_at[int(msg.key())]) * 1000)
            lib_ms.append(msg.latency() * 1000)

    t0 = time.perf_counter() + 0.01
    for i in range(n):
        _wait_until(t0 + i / rate, busy)
        VALUE["seq"] = i
        sent_at[i] = time.perf_counter()
        p.produce(topic, dumps(VALUE), str(i).encode(), on_delivery=cb)
        p.poll(0)
    send_s = time.perf_counter() - t0
    p.flush(30)
    return {
        "offered_per_s": rate,
        "achieved_per_s": n / send_s,
        "librdkafka_msg_latency": _stats(lib_ms),
        "caller_view": _stats(caller_ms),
    }


class _Flips:
    """When each record's status flips to ``sent``: ``ReliableKafkaProducer.watch`` calls back at
    the moment the status is stored, i.e. from then on ``get_message_status`` says ``sent``."""

    def __init__(self) -> None:
        self.sent_at: dict[str, float] = {}
        self.other: collections.Counter[str] = collections.Counter()

    def __call__(self, mid: str, status: str, _error_class: str | None) -> None:
        if status == "sent":
            self.sent_at[mid] = time.perf_counter()
        else:
            self.other[status] += 1


def run_reliable(topic: str, n: int, rate: float, busy: bool) -> dict[str, Any]:
    from kafka_reliable import ReliableKafkaProducer

    with tempfile.TemporaryDirectory(prefix="bench-spool-") as d:
        p = ReliableKafkaProducer(
            bootstrap_servers=bootstrap(),
            producer_config=dict(RDKAFKA_CONF),
            spool_path=Path(d) / "spool.sqlite3",
        )
        p.send_message(topic, {"warm": True}, key="warm")
        p.flush(30)
        flips = _Flips()
        started: dict[str, float] = {}
        t0 = time.perf_counter() + 0.01
        for i in range(n):
            _wait_until(t0 + i / rate, busy)
            VALUE["seq"] = i
            t = time.perf_counter()
            mid = p.send_message(topic, VALUE, key=str(i))
            started[mid] = t
            p.watch(
                mid, flips
            )  # a record already settled is reported at once (then late by this call)
        send_s = time.perf_counter() - t0
        p.flush(60)
        ms = [(flips.sent_at[m] - t) * 1000 for m, t in started.items() if m in flips.sent_at]
        own = p.get_stats().get("latency_stats", {})
        p.close(30)
    return {
        "offered_per_s": rate,
        "achieved_per_s": n / send_s,
        "caller_view": _stats(ms),
        "not_sent": dict(flips.other),
        "producer_latency_stats": own,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--client", choices=["raw", "reliable"], required=True)
    ap.add_argument("--mode", choices=["sleep", "busy"], required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--rate", type=float, default=5000)
    ap.add_argument("--seconds", type=float, default=20)
    args = ap.parse_args(argv)
    n = int(args.rate * args.seconds)
    fn = run_raw if args.client == "raw" else run_reliable
    result = fn(args.topic, n, args.rate, args.mode == "busy")
    result.update(client=args.client, mode=args.mode, records=n, seconds=args.seconds)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
