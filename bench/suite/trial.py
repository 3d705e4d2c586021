"""One timed throughput trial of one contender, in a process of its own.

``python -m bench.suite.trial --contender NAME --topic T --records N --size-bytes S`` prints one
JSON line: elapsed seconds (first send → last ack, after a warm-up record), CPU seconds of the
whole process (all threads, librdkafka's included) over that span, and the process's peak RSS
(``VmHWM``).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

from bench.suite.common import dumps, value_pool, vm_hwm_mb
from bench.suite.contenders import make


def _cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--contender", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--records", type=int, required=True)
    ap.add_argument("--size-bytes", type=int, required=True)
    args = ap.parse_args(argv)
    pool = value_pool(args.size_bytes)
    value_bytes = len(dumps(pool[0]))
    c = make(args.contender)
    c.warm(args.topic)
    cpu0, t0 = _cpu_s(), time.perf_counter()
    acked = c.run(args.topic, args.records, pool)
    elapsed, cpu = time.perf_counter() - t0, _cpu_s() - cpu0
    c.close()
    print(
        json.dumps(
            {
                "contender": args.contender,
                "records": args.records,
                "acked": acked,
                "value_bytes": value_bytes,
                "elapsed_s": elapsed,
                "cpu_s": cpu,
                "peak_rss_mb": vm_hwm_mb(),
            }
        )
    )
    return 0 if acked == args.records else 1


if __name__ == "__main__":
    sys.exit(main())
