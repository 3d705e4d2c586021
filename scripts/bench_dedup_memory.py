#!/usr/bin/env python
"""Bytes per key of the memory dedup store: RSS over 5,000,000 distinct keys.

Each configuration runs in a fresh interpreter (its own baseline): distinct content keys are
claimed in batches of 1,000 through ``MemoryDeduplicator.check`` and the process RSS sampled
along the way.

- ``bound_1m``: the default ``max_entries`` (1,000,000): RSS must be flat once it is full;
- ``bound_5m``: ``max_entries=5,000,000``: bytes per key = (RSS at 5M − RSS at 0) / 5M;
- ``ordered_dict_1m`` (``--reference``): the store this one replaced (an ``OrderedDict`` of
  16-byte keys to expiries), for the before/after line.

RSS does not depend on the machine's load, so these figures are quotable from any run.
Writes ``bench/results/dedup_memory.json``; ``run()`` returns the same dict (for ``make bench``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "dedup_memory.json"
BATCH = 1000


def _rss() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def _child(config: str, keys: int, samples: int) -> dict[str, Any]:
    """Fill one store in this process; RSS at ``samples`` evenly spaced points."""
    sys.path.insert(0, str(ROOT))
    from kafka_reliable.dedup import MemoryDeduplicator, content_key

    bound = {"bound_1m": 1_000_000, "bound_5m": 5_000_000, "ordered_dict_1m": 1_000_000}[config]
    claim: Callable[[Sequence[bytes]], Any]
    if config == "ordered_dict_1m":
        store: OrderedDict[bytes, float] = OrderedDict()

        def claim_od(batch: Sequence[bytes]) -> None:
            for k in batch:
                store[k] = 1.0
                while len(store) > bound:
                    store.popitem(last=False)

        claim = claim_od
    else:
        claim = MemoryDeduplicator(max_entries=bound).check
    every = keys // samples
    points = [{"keys": 0, "rss_bytes": _rss()}]
    t0 = time.process_time()
    for start in range(0, keys, BATCH):
        claim([content_key("bench", None, b"%d" % i) for i in range(start, start + BATCH)])
        if (start + BATCH) % every == 0:
            points.append({"keys": start + BATCH, "rss_bytes": _rss()})
    cpu_us = (time.process_time() - t0) / keys * 1e6
    return {"max_entries": bound, "points": points, "cpu_us_per_key_incl_keygen": round(cpu_us, 3)}


def _summary(res: dict[str, Any]) -> dict[str, Any]:
    pts = res["points"]
    base, bound = pts[0]["rss_bytes"], min(res["max_entries"], pts[-1]["keys"])
    at_bound = min((p for p in pts if p["keys"] >= bound), key=lambda p: p["keys"])
    last = pts[-1]
    return {
        "bytes_per_key": round((at_bound["rss_bytes"] - base) / bound, 1),
        "rss_mb_at_0": round(base / 2**20, 1),
        "rss_mb_when_full": round(at_bound["rss_bytes"] / 2**20, 1),
        "rss_mb_at_end": round(last["rss_bytes"] / 2**20, 1),
        "growth_after_full_mb": round((last["rss_bytes"] - at_bound["rss_bytes"]) / 2**20, 1),
    }


def run(keys: int = 5_000_000, samples: int = 10, reference: bool = True) -> dict[str, Any]:
    """Every configuration, each in a fresh interpreter; the results dict."""
    configs = ["bound_1m", "bound_5m"] + (["ordered_dict_1m"] if reference else [])
    out: dict[str, Any] = {
        "conditions": {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "keys": keys,
            "batch": BATCH,
            "load_avg_start": os.getloadavg()[0],
            "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "note": "RSS is load-independent; cpu_us_per_key includes building the content keys",
        },
        "results": {},
    }
    for config in configs:
        n = min(keys, 2_000_000) if config == "ordered_dict_1m" else keys
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                config,
                "--keys",
                str(n),
                "--samples",
                str(samples),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        res = json.loads(done.stdout)
        res["summary"] = _summary(res)
        out["results"][config] = res
    out["conditions"]["load_avg_end"] = os.getloadavg()[0]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=int, default=5_000_000)
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--no-reference", action="store_true", help="skip the OrderedDict store")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.keys, args.samples)))
        return
    result = run(args.keys, args.samples, reference=not args.no_reference)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for name, res in result["results"].items():
        print(name, json.dumps(res["summary"]))


if __name__ == "__main__":
    main()
