"""One segment file of the write-ahead log: preallocated, memory-mapped, append-only.

Writing a frame is a memory copy into a ``MAP_SHARED`` mapping: the pages belong to the
kernel's page cache the moment the copy ends, so the frame survives the process being killed
(SIGKILL, OOM kill) with no system call on the send path. The file's blocks are reserved when
the segment is created (``posix_fallocate``), so a full disk or a file-size limit is an
``OSError`` at that moment, never a SIGBUS on a later write into the mapping.
(``scripts/bench_wal_write.py`` measures this against ``os.write``: bench/results/wal_write.json.)
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path

PAGE = mmap.PAGESIZE


def segment_name(first_seq: int) -> str:
    return f"seg-{first_seq:020d}.wal"


def settled_name(first_seq: int) -> str:
    return f"seg-{first_seq:020d}.settled"


class Segment:
    """A writable segment holding frames of sequence numbers ``first_seq`` onwards."""

    __slots__ = (
        "path",
        "first_seq",
        "size",
        "pos",
        "settled",
        "synced",
        "_fd",
        "mm",
        "_settled_fd",
    )

    def __init__(self, folder: Path, first_seq: int, size: int) -> None:
        self.path = folder / segment_name(first_seq)
        self.first_seq = first_seq
        self.size = size
        #: Bytes written (kept up to date by the log at rotation, sync and close).
        self.pos = 0
        self.settled = 0
        self.synced = 0
        self._settled_fd = -1
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.posix_fallocate(fd, 0, size)
            self.mm = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except BaseException:
            os.close(fd)
            self.path.unlink(missing_ok=True)
            raise
        self._fd = fd

    def sync(self) -> None:
        """msync what was written since the last sync (power-loss durability)."""
        start, end = self.synced, self.pos
        if end > start:
            aligned = start - start % PAGE
            self.mm.flush(aligned, end - aligned)
            self.synced = end

    def add_settled(self, frame: bytes) -> None:
        if self._settled_fd < 0:
            self._settled_fd = os.open(
                self.path.with_name(settled_name(self.first_seq)),
                os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                0o600,
            )
        os.write(self._settled_fd, frame)

    def close(self) -> None:
        if self._fd < 0:
            return
        self.mm.close()
        os.close(self._fd)
        self._fd = -1
        if self._settled_fd >= 0:
            os.close(self._settled_fd)
            self._settled_fd = -1

    def delete(self) -> None:
        """Close and remove (the segment first: a settled file alone means nothing)."""
        self.close()
        self.path.unlink(missing_ok=True)
        self.path.with_name(settled_name(self.first_seq)).unlink(missing_ok=True)
