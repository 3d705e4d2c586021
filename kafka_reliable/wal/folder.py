"""An owner's folder of the write-ahead log: created and locked for the owner's lifetime (the
kernel drops the lock when the process dies), and synced after a new segment appears."""

from __future__ import annotations

import os
from pathlib import Path

from kafka_reliable.errors import SpoolError

LOCK_FILE = "lock"


def lock_folder(folder: Path) -> int:
    """Create the owner's folder and hold its lock (released by the kernel when we die)."""
    try:
        import fcntl
    except ImportError:
        raise SpoolError(
            "the write-ahead log needs a POSIX system (flock, mmap, posix_fallocate); "
            'pass durability="memory" here'
        ) from None
    try:
        folder.mkdir(parents=True, exist_ok=False)
        fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise SpoolError(
            f"cannot create the write-ahead log folder {folder}: {exc.strerror or exc}"
            ' (pass durability="memory" to run without one)'
        ) from exc
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def sync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
