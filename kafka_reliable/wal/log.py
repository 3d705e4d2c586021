"""WriteAheadLog: the in-flight records of one producer, in its own folder of the spool.

One write per send call (a memory copy into a mapped segment: ``segment.py``); settlements
recorded in bulk once per poller tick as runs of sequence numbers, in a small file beside each
segment; a segment deleted once every record in it is settled. The folder is locked
(``fcntl.flock``) for the producer's lifetime, so another process knows the owner is alive
and never resends its records (``owners.py`` takes over only folders whose lock is free).
"""

from __future__ import annotations

import bisect
import itertools
import logging
import os
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from kafka_reliable.errors import SpoolFullError
from kafka_reliable.wal.folder import lock_folder, sync_dir
from kafka_reliable.wal.frames import (
    HEAD,
    HEAD_SIZE,
    KIND_ID_HEADER,
    RECORD,
    crc32,
    frame,
    record_payload,
    runs_of,
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
_RECORD_PACK = RECORD.pack
_HEAD_PACK_INTO = HEAD.pack_into
_now = time.time
_join = b"".join

Headers = Sequence[tuple[str, bytes | None]] | None


class WriteAheadLog:
    """Append-only log of one owner (a producer instance) under ``root/owner``."""

    def __init__(
        self,
        root: Path,
        owner: str,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        segment_bytes: int = SEGMENT_BYTES,
        fsync: str = "never",
        fsync_interval_ms: int = 100,
    ) -> None:
        self.folder = root / owner
        self.owner = owner
        self.max_bytes = max_bytes
        # a small limit gets smaller segments, so that several fit under it
        self.segment_bytes = max(64 << 10, min(segment_bytes, max_bytes // 8))
        self.fsync = fsync
        self._lock = threading.Lock()
        self._lock_fd = lock_folder(self.folder)
        self._segments: list[Segment] = []
        #: The active segment's mapping, write position and size (None/0/0: none open).
        self._mm: Any = None
        self._pos = 0
        self._size = 0
        #: Epoch ms stamped on fast-path records, moved on by the poller's tick.
        self.clock_ms = int(_now() * 1000)
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
            self._syncer = threading.Thread(
                target=self._sync_loop,
                args=(fsync_interval_ms / 1000.0,),
                name="kafka-reliable-wal-sync",
                daemon=True,
            )
            self._syncer.start()

    # -- writing (the send path) ------------------------------------------------------------
    # The active segment's mapping, write position and size live on the log itself (one
    # attribute each on the hot path); a segment's record count is the span of its sequence
    # numbers, so nothing is counted per record.

    def append(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        mid: str,
        headers: Headers,
        ts_ms: int,
    ) -> None:
        """One record (``headers`` None: only the id header). In the kernel when it returns."""
        tb = self._topics.get(topic) or self._topic(topic)
        with self._lock:
            seq = self._seq
            self._write(frame(record_payload(seq, tb, mid.encode(), key, value, headers, ts_ms)))
            self._seq = seq + 1
            self._open[mid] = seq

    def append_plain(self, topic: str, key: bytes | None, value: bytes, mid: str) -> None:
        """The send path's fast path: a record whose only header is its id (or none, per
        ``plain_kind``), stamped with the log's clock (kept by the poller to the millisecond
        tick). ``append`` inlined: this runs once per record."""
        tb = self._topics.get(topic) or self._topic(topic)
        mb = mid.encode()
        with self._lock:
            seq = self._seq
            payload = _join(
                (
                    _RECORD_PACK(
                        self.plain_kind,
                        seq,
                        self.clock_ms,
                        -1,
                        len(tb),
                        len(mb),
                        -1 if key is None else len(key),
                        len(value),
                        0,
                    ),
                    tb,
                    mb,
                    key or b"",
                    value,
                )
            )
            n = len(payload)
            pos = self._pos
            end = pos + HEAD_SIZE + n
            if end > self._size:
                pos = self._rotate(HEAD_SIZE + n)
                end = pos + HEAD_SIZE + n
            mm = self._mm
            mm[pos + HEAD_SIZE : end] = payload  # payload first: a frame cut short has no length
            _HEAD_PACK_INTO(mm, pos, n, crc32(payload))
            self._pos = end
            self._seq = seq + 1
            self._open[mid] = seq
            if self._always:
                self._sync_active()

    def append_many(
        self,
        topic: str,
        items: Sequence[tuple[bytes | None, bytes | None, str, Headers]],
        ts_ms: int,
    ) -> None:
        """Records of one batch ``(key, value, message id, headers)``: one copy, one sync."""
        if not items:
            return
        tb = self._topics.get(topic) or self._topic(topic)
        with self._lock:
            seq0 = self._seq
            self._write(
                _join(
                    [
                        frame(record_payload(seq0 + i, tb, mid.encode(), k, v, h, ts_ms))
                        for i, (k, v, mid, h) in enumerate(items)
                    ]
                )
            )
            self._seq = seq0 + len(items)
            opened = self._open
            for i, item in enumerate(items):
                opened[item[2]] = seq0 + i

    def _write(self, blob: bytes) -> None:
        """Frames, whole (the batch's frames carry their own headers), at the write position."""
        pos = self._pos
        if pos + len(blob) > self._size:
            pos = self._rotate(len(blob))
        self._mm[pos : pos + len(blob)] = blob
        self._pos = pos + len(blob)
        if self._always:
            self._sync_active()

    def _sync_active(self) -> None:
        seg = self._segments[-1]
        seg.pos = self._pos
        seg.sync()

    def _topic(self, topic: str) -> bytes:
        tb = topic.encode("utf-8")
        if len(self._topics) < 10_000:
            self._topics[topic] = tb
        return tb

    def _rotate(self, need: int) -> int:
        """A new segment (the log's limit checked first); the full one is synced if asked.
        Returns the write position in it (0)."""
        size = max(self.segment_bytes, need + HEAD_SIZE)
        reserved = sum(s.size for s in self._segments)
        if reserved + size > self.max_bytes:
            raise SpoolFullError(
                f"write-ahead log {self.folder} is full: {reserved} bytes of records in flight, "
                f"limit spool_max_bytes={self.max_bytes}; the record was not accepted "
                "(Kafka is not "
                "acknowledging: check the cluster, or raise spool_max_bytes)"
            )
        if self._segments:
            self._segments[-1].pos = self._pos
            if self.fsync != "never":
                self._segments[-1].sync()
        try:
            seg = Segment(self.folder, self._seq, size)
        except OSError as exc:
            raise SpoolFullError(
                f"cannot grow the write-ahead log in {self.folder}: {exc.strerror or exc}; "
                "the record was not accepted"
            ) from exc
        if self.fsync != "never":
            sync_dir(self.folder)
        self._segments.append(seg)
        self._firsts.append(seg.first_seq)
        self._mm, self._pos, self._size = seg.mm, 0, size
        self._last_append = time.monotonic()
        self.clock_ms = int(_now() * 1000)
        return 0

    def _written(self, i: int) -> int:
        """Records in segment ``i``: the span of its sequence numbers."""
        nxt = self._firsts[i + 1] if i + 1 < len(self._firsts) else self._seq
        return nxt - self._firsts[i]

    # -- settling (the poller, once per tick) -------------------------------------------------

    def abandon(self, mid: str) -> None:
        """A record written but refused before librdkafka took it: nothing to resend."""
        self.settle([mid])

    def settle(self, mids: Iterable[str]) -> int:
        """Mark records settled (acknowledged, routed, spooled, refused); one write per
        segment touched; delete segments whose records are all settled. Returns how many."""
        with self._lock:
            # C-level loops: pop each id's sequence number (None: not ours), drop the Nones
            # (sequence numbers start at 1), sort.
            seqs = sorted(filter(None, map(self._open.pop, mids, itertools.repeat(None))))
            if seqs:
                self._record_settled(seqs)
            self._release()
        return len(seqs)

    def _record_settled(self, seqs: list[int]) -> None:
        runs = runs_of(seqs)
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
        idle = time.monotonic() - self._last_append > IDLE_RELEASE_S
        for i, seg in enumerate(segs):
            last = i == len(segs) - 1
            if seg.settled >= self._written(i) and (not last or idle):
                seg.delete()
            else:
                keep.append(seg)
        if len(keep) == len(segs):
            return
        self._segments = keep
        self._firsts = [s.first_seq for s in keep]
        if not keep or keep[-1] is not segs[-1]:
            self._mm, self._pos, self._size = None, 0, 0  # the next record opens a new segment

    def tick(self) -> None:
        """Move the clock on; give back an idle, settled segment (called by the poller)."""
        self.clock_ms = int(_now() * 1000)
        segs = self._segments
        if segs and segs[-1].settled >= self._written(len(segs) - 1):
            with self._lock:
                self._release()

    # -- durability and lifecycle ---------------------------------------------------------

    def sync(self) -> None:
        """msync the active segment (the group commit of ``fsync="interval"``): the range is
        taken under the lock, the disk is waited for outside it."""
        with self._lock:
            if not self._segments or self._mm is None:
                return
            seg = self._segments[-1]
            seg.pos = self._pos
        seg.sync()

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
            if segs and self._mm is not None:
                segs[-1].pos = self._pos
        return {
            "path": str(self.folder),
            "fsync": self.fsync,
            "in_flight": len(self._open),
            "segments": len(segs),
            "reserved_bytes": sum(s.size for s in segs),
            "written_bytes": sum(s.pos for s in segs),
            "max_bytes": self.max_bytes,
            "appended": self._seq - 1,
            "settled": self.settled,
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
            if self._segments and self._mm is not None:
                self._segments[-1].pos = self._pos
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
