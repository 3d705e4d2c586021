"""The write-ahead log's write, measured both ways the issue asked: a memory copy into a
``MAP_SHARED`` mapping of a preallocated segment (what ``kafka_reliable.wal`` does) against
one ``os.write`` of the frame to an ``O_APPEND`` file, and the log's whole ``append_plain``
(frame, CRC, lock, bookkeeping). CPU time of the writing thread per record, interleaved rounds,
the load average at start and end. Writes bench/results/wal_write.json.

    python scripts/bench_wal_write.py [--records 200000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import statistics
import struct
import tempfile
import time
import zlib
from pathlib import Path

from kafka_reliable.wal import WriteAheadLog
from kafka_reliable.wal.frames import HEAD, RECORD

OUT = Path(__file__).resolve().parents[1] / "bench" / "results" / "wal_write.json"
TOPIC, KEY, VALUE = b"orders", b"key-12345", b"x" * 100


def _payload(i: int, mid: bytes) -> bytes:
    return b"".join((RECORD.pack(2, i, 1_700_000_000_000, -1, len(TOPIC), len(mid), len(KEY), len(VALUE), 0),
                     TOPIC, mid, KEY, VALUE))


def _os_write(folder: str, mids: list[bytes]) -> float:
    fd = os.open(os.path.join(folder, "w.seg"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
    t = time.thread_time()
    for i, mid in enumerate(mids):
        p = _payload(i, mid)
        os.write(fd, HEAD.pack(len(p), zlib.crc32(p)) + p)
    spent = time.thread_time() - t
    os.close(fd)
    return spent


def _mmap_copy(folder: str, mids: list[bytes]) -> float:
    size = 64 << 20
    fd = os.open(os.path.join(folder, "m.seg"), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    os.posix_fallocate(fd, 0, size)
    mm = mmap.mmap(fd, size, mmap.MAP_SHARED)
    pack_into, pos = struct.Struct("<II").pack_into, 0
    t = time.thread_time()
    for i, mid in enumerate(mids):
        p = _payload(i, mid)
        n = len(p)
        mm[pos + 8:pos + 8 + n] = p
        pack_into(mm, pos, n, zlib.crc32(p))
        pos += 8 + n
    spent = time.thread_time() - t
    mm.close()
    os.close(fd)
    return spent


def _append_plain(folder: str, mids: list[bytes]) -> float:
    log = WriteAheadLog(Path(folder) / "wal", "bench")
    names = [m.decode() for m in mids]
    t = time.thread_time()
    for name in names:
        log.append_plain("orders", KEY, VALUE, name)
    spent = time.thread_time() - t
    log.settle(names)
    log.close()
    return spent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    mids = [f"a1b2c3d4e5f6-{i}".encode() for i in range(args.records)]
    load_start = os.getloadavg()
    ways = {"os_write": _os_write, "mmap_copy": _mmap_copy, "wal_append_plain": _append_plain}
    us: dict[str, list[float]] = {k: [] for k in ways}
    for _ in range(args.rounds):
        for name, fn in ways.items():
            with tempfile.TemporaryDirectory(prefix="walbench-") as d:
                us[name].append(fn(d, mids) / args.records * 1e6)
    result = {
        "what": "CPU time of the writing thread per record (us), frame of a 100 B value with key and id",
        "records": args.records, "rounds": args.rounds,
        "load_start": load_start, "load_end": os.getloadavg(),
        "us_per_record": {k: [round(x, 3) for x in v] for k, v in us.items()},
        "median_us": {k: round(statistics.median(v), 3) for k, v in us.items()},
        "kept": "mmap_copy" if statistics.median(us["mmap_copy"]) <= statistics.median(us["os_write"]) else "os_write",
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["median_us"]), "kept:", result["kept"], f"load {load_start[0]:.2f} -> {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
