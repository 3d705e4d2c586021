"""The owners' folders of a spool's write-ahead log: who is alive, what each holds, and the
take-over of a dead owner's unsettled records.

An owner is alive while it holds the ``flock`` of its folder's lock file (the kernel drops
it when the process dies, SIGKILL included). Only a folder whose lock can be taken is read
for recovery, so a live producer's records are never resent by another process — the
gunicorn/uvicorn-workers case, where every worker shares one spool.
"""

from __future__ import annotations

import bisect
import logging
import re
import shutil
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from kafka_reliable.filelock import try_flock
from kafka_reliable.wal.folder import LOCK_FILE
from kafka_reliable.wal.frames import KIND_SETTLED, WalRecord, decode_runs, iter_records, scan

log = logging.getLogger(__name__)

_SEGMENT = re.compile(r"^seg-(\d{20})\.wal$")


def wal_root(spool_path: Path) -> Path:
    """The folder of a spool's write-ahead logs: ``<spool file>.inflight/``."""
    return spool_path.with_name(spool_path.name + ".inflight")


@dataclass
class OwnerLog:
    """What one owner's folder holds (read without taking it over)."""

    folder: Path
    alive: bool
    pid: int | None
    records: list[WalRecord] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    bytes_on_disk: int = 0

    @property
    def owner(self) -> str:
        return self.folder.name


def _try_lock(folder: Path) -> AbstractContextManager[bool]:
    """True (and the lock held) when the folder's owner is dead; False while it lives."""
    return try_flock(folder / LOCK_FILE)


def _pid(folder: Path) -> int | None:
    try:
        return int((folder / LOCK_FILE).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def read_unsettled(folder: Path) -> tuple[list[WalRecord], list[str], int]:
    """Unsettled records of a folder, oldest first; problems found (torn or corrupt frames);
    bytes on disk. A torn frame ends its segment's scan: the records before it are kept."""
    records: list[WalRecord] = []
    problems: list[str] = []
    size = 0
    segs = sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := _SEGMENT.match(p.name)))
    for _first, path in segs:
        data = path.read_bytes()
        size += len(data)
        found = scan(data)
        if found.problem:
            problems.append(
                f"{path.name}: {found.problem}; "
                f"recovered the {len(found.payloads)} frames before it"
            )
        settled = _settled(path.with_suffix(".settled"), problems)
        records.extend(r for r in iter_records(found.payloads) if not _covered(settled, r.seq))
    return records, problems, size


def _settled(path: Path, problems: list[str]) -> list[tuple[int, int]]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    found = scan(data)
    if found.problem:
        problems.append(f"{path.name}: {found.problem} (records after it are resent)")
    runs: list[tuple[int, int]] = []
    for p in found.payloads:
        if p and p[0] == KIND_SETTLED:
            runs.extend(decode_runs(p))
    merged: list[tuple[int, int]] = []  # disjoint [start, end) intervals, in order
    for a, n in sorted(runs):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], a + n))
        else:
            merged.append((a, a + n))
    return merged


def _covered(intervals: list[tuple[int, int]], seq: int) -> bool:
    i = bisect.bisect_right(intervals, (seq, float("inf"))) - 1
    return i >= 0 and intervals[i][0] <= seq < intervals[i][1]


def owner_folders(root: Path) -> list[Path]:
    try:
        return sorted(p for p in root.iterdir() if p.is_dir())
    except FileNotFoundError:
        return []


def inspect(root: Path, *, skip: str | None = None) -> list[OwnerLog]:
    """Every owner's folder with its unsettled records (live owners' too, for operators)."""
    out = []
    for folder in owner_folders(root):
        if folder.name == skip:
            continue
        with _try_lock(folder) as dead:
            records, problems, size = read_unsettled(folder)
            out.append(OwnerLog(folder, not dead, _pid(folder), records, problems, size))
    return out


def take_over(root: Path, sink: object, *, skip: str | None = None) -> tuple[int, list[str]]:
    """Hand every dead owner's unsettled records to ``sink(records)`` (the spool, which makes
    them durable before returning), then delete the folder. Returns (records, problems)."""
    n = 0
    problems: list[str] = []
    for folder in owner_folders(root):
        if folder.name == skip:
            continue
        with _try_lock(folder) as dead:
            if not dead:
                continue
            records, found, _ = read_unsettled(folder)
            if records:
                sink(records)  # type: ignore[operator]
            n += len(records)
            for p in found:
                problems.append(f"{folder.name}/{p}")
                log.warning("write-ahead log of a dead producer: %s", p)
            shutil.rmtree(folder, ignore_errors=True)
            if records:
                log.warning(
                    "took over %d unsettled records of a dead producer (%s): they are "
                    "sent again with their message ids",
                    len(records),
                    folder.name,
                )
    return n, problems
