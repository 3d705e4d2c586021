"""Memory dedup store: bytes per key and RSS over millions of distinct keys.

Child: ``python -m bench.suite.dedup_store --keys 5000000 [--max-entries N]`` prints one JSON
line. The store is ``MemoryDeduplicator()`` with its defaults (TTL and ``max_entries``
unchanged) or with ``max_entries=N`` (the suite runs it with N = keys too, so bytes per key is
measured over every key, not at the default bound); keys are the
producer's own content keys (``key_for(topic, key, value)``), claimed through the public
``check()`` in chunks of 1,000 (what ``send_batch`` does). RSS is sampled as keys go in:

- bytes per key: RSS growth from the empty store to the moment it holds ``max_entries`` keys
  (or every key, if fewer), divided by the keys held;
- after it is full, the store evicts as many keys as it takes in, so RSS should stay flat: the
  least-squares slope over the samples after the fill, in MB per million keys.

``--reference`` measures the store the compact one replaced (an ``OrderedDict`` of key →
expiry, LRU-trimmed to the bound) with the same keys, for the before → after line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from bench.suite.common import rss_mb
from bench.suite.memory import slope_mb_per_million

CHUNK = 1000


class OrderedDictStore:
    """The memory store before the compact one: ``OrderedDict[key, expiry]``, LRU-trimmed."""

    def __init__(self, *, max_entries: int, key_for: Any, ttl_s: float = 3600.0) -> None:
        from collections import OrderedDict

        self.max_entries, self.ttl_s, self.key_for = max_entries, ttl_s, key_for
        self._entries: OrderedDict[bytes, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def check(self, keys: list[bytes]) -> list[bool]:
        now = time.monotonic()
        out = []
        for k in keys:
            exp = self._entries.get(k)
            out.append(exp is None or exp <= now)
            self._entries[k] = now + self.ttl_s
            self._entries.move_to_end(k)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return out


def _keys(store: Any, start: int, count: int) -> list[bytes]:
    key_for = store.key_for
    return [
        key_for("bench-dedup", str(i).encode(), b'{"seq":%d,"amount_cents":9999}' % i)
        for i in range(start, start + count)
    ]


def _fill_point(points: list[tuple[int, float]], held: list[int], cap: int) -> tuple[int, float]:
    """The first sample at which the store held ``cap`` keys (or the last sample)."""
    for (n, rss), h in zip(points, held, strict=True):
        if h >= cap:
            return n, rss
    return points[-1]


def run(n: int, samples: int, max_entries: int | None = None, reference: bool = False) -> dict:
    from kafka_reliable.dedup import MemoryDeduplicator

    options: dict[str, Any] = {} if max_entries is None else {"max_entries": max_entries}
    store: Any = MemoryDeduplicator(**options)
    if reference:
        store = OrderedDictStore(max_entries=store.max_entries, key_for=store.key_for)
    cap = int(getattr(store, "max_entries", n))
    every = max(CHUNK, (n // samples) // CHUNK * CHUNK)
    _keys(store, 0, CHUNK)  # the key function's own first-call allocations
    points, held = [(0, rss_mb())], [len(store)]
    check_s, dup = 0.0, 0
    for start in range(0, n, CHUNK):
        keys = _keys(store, start, min(CHUNK, n - start))
        t0 = time.perf_counter()
        dup += len(keys) - sum(store.check(keys))
        check_s += time.perf_counter() - t0
        if (start + CHUNK) % every == 0 or start + CHUNK >= n:
            points.append((min(n, start + CHUNK), rss_mb()))
            held.append(len(store))
    fill_n, fill_rss = _fill_point(points, held, min(cap, n))
    keys_held = min(cap, fill_n)
    after = [p for p in points if p[0] >= fill_n]
    return {
        "keys": n, "max_entries": cap, "ttl_s": getattr(store, "ttl_s", None),
        "held_at_end": len(store), "duplicates_reported": dup,
        "rss_start_mb": points[0][1], "rss_full_mb": fill_rss, "rss_end_mb": points[-1][1],
        "rss_peak_mb": max(p[1] for p in points),
        "bytes_per_key": (fill_rss - points[0][1]) * 1e6 / keys_held if keys_held else None,
        "slope_after_full_mb_per_million": slope_mb_per_million(after),
        "check_ns_per_key": check_s / n * 1e9,
        "samples": points,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=int, default=5_000_000)
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--max-entries", type=int, help="default: the library's")
    ap.add_argument("--reference", action="store_true", help="the OrderedDict store instead")
    args = ap.parse_args(argv)
    print(json.dumps(run(args.keys, args.samples, args.max_entries, args.reference)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
