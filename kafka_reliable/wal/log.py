"""WriteAheadLog: the in-flight records of one producer, in its own folder of the spool.

One write per send call (a memory copy into a mapped segment: ``segment.py``); settlements
recorded in bulk once per poller tick as runs of sequence numbers, in a small file beside each
segment; a segment deleted once every record in it is settled. The folder is locked
(``fcntl.flock``) for the producer's lifetime, so another process knows the owner is alive
and never resends its records (``owners.py`` takes over only folders whose lock is free).
"""

from __future__ import annotations

import bisect
import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from kafka_reliable.errors import SpoolError, SpoolFullError
from kafka_reliable.wal.frames import (
    HEAD,
    HEAD_SIZE,
    KIND_ID_HEADER,
    RECORD,
    crc32,
    frame,
    record_payload,
    settled_payload,
)
from kafka_reliable.wal.segment import Segment

log = logging.getLogger(__name__)

#: Accepted ``fsync`` policies: never (survives a process crash), interval (group commit every
#: ``fsync_interval_ms``: survives power loss up to that window), always (before the call returns).
FSYNC_POLICIES = ("never", "interval", "always")
#: Bytes reserved per segment file.
SEGMENT_BYTES = 16 << 20
#: Default limit of the disk the log may reserve (``spool_max_bytes``).
DEFAULT_MAX_BYTES = 1 << 30
#: An idle log whose records are all settled gives its segment back after this long.
IDLE_RELEASE_S = 1.0
LOCK_FILE = "lock"
_RECORD_PACK = RECORD.pack
_HEAD_PACK_INTO = HEAD.pack_into
_now = time.time

Headers = Sequence[tuple[str, bytes | None]] | None


class WriteAheadLog:
    """Append-only log of one owner (a producer instance) under ``root/owner``."""

    def __init__(self, root: Path, owner: str, *, max_bytes: int = DEFAULT_MAX_BYTES,
                 segment_bytes: int = SEGMENT_BYTES, fsync: str = "never",
                 fsync_interval_ms: int = 100) -> None:
        self.folder = root / owner
        self.owner = owner
        self.max_bytes = max_bytes
        # a small limit gets smaller segments, so that several fit under it
        self.segment_bytes = max(64 << 10, min(segment_bytes, max_bytes // 8))
        self.fsync = fsync
        self._lock = threading.Lock()
        self._lock_fd = _lock_folder(self.folder)
        self._segments: list[Segment] = []
        self._active: Segment | None = None
        #: Record kind of ``append_plain``: the id header alone, or no header at all.
        self.plain_kind = KIND_ID_HEADER
        self._firsts: list[int] = []
        self._seq = 1
        self._open: dict[str, int] = {}
        self._topics: dict[str, bytes] = {}
        self._last_append = time.monotonic()
        self.settled = 0
        self._always = fsync == "always"
        self._stop = threading.Event()
        self._syncer: threading.Thread | None = None
        if fsync == "interval":
            self._syncer = threading.Thread(target=self._sync_loop, args=(fsync_interval_ms / 1000.0,),
                                            name="kafka-reliable-wal-sync", daemon=True)
            self._syncer.start()

    # -- writing (the send path) ------------------------------------------------------------

    def append(self, topic: str, key: bytes | None, value: bytes | None, mid: str, headers: Headers,
               ts_ms: int) -> None:
        """One record (``headers`` None: only the id header). In the kernel when it returns."""
        tb = self._topics.get(topic) or self._topic(topic)
        with self._lock:
            self._put(record_payload(self._seq, tb, mid.encode(), key, value, headers, ts_ms), mid)

    def append_plain(self, topic: str, key: bytes | None, value: bytes, mid: str) -> None:
        """The send path's fast path: a record whose only header is its id (or none, per
        ``plain_kind``), stamped now. ``append`` inlined: this runs once per record."""
        tb = self._topics.get(topic) or self._topic(topic)
        mb = mid.encode()
        ts = int(_now() * 1000)
        with self._lock:
            seq = self._seq
            payload = b"".join((
                _RECORD_PACK(self.plain_kind, seq, ts, -1, len(tb), len(mb),
                             -1 if key is None else len(key), len(value), 0),
                tb, mb, key or b"", value))
            seg = self._active
            n = len(payload)
            pos = seg.pos if seg is not None else 0
            end = pos + HEAD_SIZE + n
            if seg is None or end > seg.size:
                seg = self._rotate(n)
                pos, end = 0, HEAD_SIZE + n
            mm = seg.mm
            mm[pos + HEAD_SIZE:end] = payload
            _HEAD_PACK_INTO(mm, pos, n, crc32(payload))
            seg.pos = end
            seg.written += 1
            self._seq = seq + 1
            self._open[mid] = seq
            if self._always:
                seg.sync()

    def _put(self, payload: bytes, mid: str) -> None:
        seg = self._active
        if seg is None or not seg.room(len(payload)):
            seg = self._rotate(len(payload))
        seg.put(payload)
        seg.written += 1
        self._open[mid] = self._seq
        self._seq += 1
        if self._always:
            seg.sync()

    def append_many(self, topic: str, items: Sequence[tuple[bytes | None, bytes | None, str, Headers]],
                    ts_ms: int) -> None:
        """Records of one batch ``(key, value, message id, headers)``: one copy, one sync."""
        if not items:
            return
        tb = self._topics.get(topic) or self._topic(topic)
        with self._lock:
            seq0 = self._seq
            frames = [frame(record_payload(seq0 + i, tb, mid.encode(), k, v, h, ts_ms))
                      for i, (k, v, mid, h) in enumerate(items)]
            blob = b"".join(frames)
            seg = self._active
            if seg is None or not seg.room(len(blob) - HEAD_SIZE):
                seg = self._rotate(len(blob))
            # one copy of the whole batch: its frames carry their own headers
            pos = seg.pos
            seg.mm[pos:pos + len(blob)] = blob
            seg.pos = pos + len(blob)
            seg.written += len(items)
            self._seq = seq0 + len(items)
            for i, item in enumerate(items):
                self._open[item[2]] = seq0 + i
            if self._always:
                seg.sync()

    def _topic(self, topic: str) -> bytes:
        tb = topic.encode("utf-8")
        if len(self._topics) < 10_000:
            self._topics[topic] = tb
        return tb

    def _rotate(self, need: int) -> Segment:
        """A new segment (the log's limit checked first); the full one is synced if asked."""
        size = max(self.segment_bytes, need + 2 * HEAD_SIZE)
        reserved = sum(s.size for s in self._segments)
        if reserved + size > self.max_bytes:
            raise SpoolFullError(
                f"write-ahead log {self.folder} is full: {reserved} bytes of records in flight, "
                f"limit spool_max_bytes={self.max_bytes}; the record was not accepted (Kafka is not "
                "acknowledging: check the cluster, or raise spool_max_bytes)")
        if self._segments and self.fsync != "never":
            self._segments[-1].sync()
        try:
            seg = Segment(self.folder, self._seq, size)
        except OSError as exc:
            raise SpoolFullError(
                f"cannot grow the write-ahead log in {self.folder}: {exc.strerror or exc}; "
                "the record was not accepted") from exc
        if self.fsync != "never":
            _sync_dir(self.folder)
        self._segments.append(seg)
        self._firsts.append(seg.first_seq)
        self._active = seg
        self._last_append = time.monotonic()
        return seg

    # -- settling (the poller, once per tick) -------------------------------------------------

    def abandon(self, mid: str) -> None:
        """A record written but refused before librdkafka took it: nothing to resend."""
        self.settle([mid])

    def settle(self, mids: Iterable[str]) -> int:
        """Mark records settled (acknowledged, routed, spooled, refused); one write per
        segment touched; delete segments whose records are all settled. Returns how many."""
        with self._lock:
            pop = self._open.pop
            seqs = sorted(s for s in (pop(m, None) for m in mids) if s is not None)
            if seqs:
                self._record_settled(seqs)
            self._release()
        return len(seqs)

    def _record_settled(self, seqs: list[int]) -> None:
        runs: list[tuple[int, int]] = []
        start = prev = seqs[0]
        for s in seqs[1:]:
            if s != prev + 1:
                runs.append((start, prev - start + 1))
                start = s
            prev = s
        runs.append((start, prev - start + 1))
        by_seg: dict[int, list[tuple[int, int]]] = {}
        for a, n in runs:
            while n:
                i = bisect.bisect_right(self._firsts, a) - 1
                end = self._firsts[i + 1] if i + 1 < len(self._firsts) else a + n
                take = min(n, end - a)
                by_seg.setdefault(i, []).append((a, take))
                a, n = a + take, n - take
        for i, seg_runs in by_seg.items():
            seg = self._segments[i]
            seg.settled += sum(n for _, n in seg_runs)
            try:
                seg.add_settled(frame(settled_payload(seg_runs)))
            except OSError as exc:  # the records stay unsettled on disk: resent later, not lost
                log.warning("could not record settlements in %s: %s", self.folder, exc)
        self.settled += len(seqs)

    def _release(self) -> None:
        """Delete settled segments: every full one, and the last one once idle."""
        segs = self._segments
        keep = []
        for i, seg in enumerate(segs):
            last = i == len(segs) - 1
            idle = time.monotonic() - self._last_append > IDLE_RELEASE_S
            if seg.done and (not last or idle):
                seg.delete()
            else:
                keep.append(seg)
        if len(keep) != len(segs):
            self._segments = keep
            self._firsts = [s.first_seq for s in keep]
            self._active = keep[-1] if keep else None

    def tick(self) -> None:
        """Give back an idle, settled segment (called by the poller with nothing to settle)."""
        if self._segments and self._segments[-1].done:
            with self._lock:
                self._release()

    # -- durability and lifecycle ---------------------------------------------------------

    def sync(self) -> None:
        with self._lock:
            if self._segments:
                self._segments[-1].sync()

    def _sync_loop(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            try:
                self.sync()
            except (OSError, ValueError) as exc:  # a closed mapping at shutdown
                log.debug("wal sync: %s", exc)

    @property
    def in_flight(self) -> int:
        return len(self._open)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            segs = list(self._segments)
        return {
            "path": str(self.folder), "fsync": self.fsync, "in_flight": len(self._open),
            "segments": len(segs), "reserved_bytes": sum(s.size for s in segs),
            "written_bytes": sum(s.pos for s in segs), "max_bytes": self.max_bytes,
            "appended": self._seq - 1, "settled": self.settled,
        }

    def close(self) -> int:
        """Stop; delete the folder when nothing is in flight. Returns the records left (kept
        on disk for the next producer to resend)."""
        self._stop.set()
        if self._syncer is not None:
            self._syncer.join(2.0)
        with self._lock:
            self._last_append = 0.0
            self._release()
            left = len(self._open)
            for seg in self._segments:
                if self.fsync != "never":
                    seg.sync()
                seg.close()
            if not self._segments:
                for p in self.folder.iterdir():
                    p.unlink(missing_ok=True)
                self.folder.rmdir()
            os.close(self._lock_fd)
            self._lock_fd = -1
        return left


def _lock_folder(folder: Path) -> int:
    """Create the owner's folder and hold its lock (released by the kernel when we die)."""
    try:
        folder.mkdir(parents=True, exist_ok=False)
        fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise SpoolError(f"cannot create the write-ahead log folder {folder}: {exc.strerror or exc}"
                         " (pass durability=\"memory\" to run without one)") from exc
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _sync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
