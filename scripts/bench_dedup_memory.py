#!/usr/bin/env python
"""Bytes per key of the memory dedup store over 5,000,000 keys (``dedup_memory.json``).

The measurement is ``bench.suite.dedup_store`` (also run by ``make bench``), one fresh
interpreter per configuration: the default bound (1,000,000: RSS must stay flat once full),
a bound of every key (bytes per key over all of them), and the ``OrderedDict`` store the
compact one replaced. RSS does not depend on the machine's load, so these figures are
quotable from any run; the ``check_ns_per_key`` timings are not (see ``conditions``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "dedup_memory.json"


def run(keys: int = 5_000_000, samples: int = 50, reference: bool = True) -> dict[str, Any]:
    """Each configuration in a child interpreter; the results, keyed as ``make bench`` keys them."""
    configs: dict[str, list[str]] = {
        "default_bound": [],
        "every_key": ["--max-entries", str(keys)],
    }
    if reference:
        configs["ordered_dict_reference"] = ["--reference"]
    out: dict[str, Any] = {
        "conditions": {
            "python": platform.python_version(), "machine": platform.machine(), "keys": keys,
            "load_avg_start": os.getloadavg()[0], "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "note": "RSS is load-independent; check_ns_per_key is not",
        },
    }  # fmt: skip
    for name, extra in configs.items():
        args = ["-m", "bench.suite.dedup_store", "--keys", str(keys), "--samples", str(samples)]
        done = subprocess.run([sys.executable, *args, *extra], cwd=ROOT, check=True,
                              capture_output=True, text=True)  # fmt: skip
        out[name] = json.loads(done.stdout.strip().splitlines()[-1])
    out["conditions"]["load_avg_end"] = os.getloadavg()[0]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=int, default=5_000_000)
    ap.add_argument("--samples", type=int, default=50)
    ap.add_argument("--no-reference", action="store_true", help="skip the OrderedDict store")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    result = run(args.keys, args.samples, reference=not args.no_reference)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for name, res in result.items():
        if name != "conditions":
            rss = f"{res['rss_start_mb']:.0f} → {res['rss_full_mb']:.0f} MB when full"
            end = res["rss_end_mb"]
            print(f"{name}: {res['bytes_per_key']:.1f} B/key, RSS {rss}, {end:.0f} MB at the end")


if __name__ == "__main__":
    main()
