"""One non-blocking file lock (``flock``), held while a ``with`` block runs.

Shared by the spool (one drain at a time across processes) and the write-ahead log (an owner
is alive while it holds its folder's lock; the kernel drops the lock when a process dies).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # not a POSIX system: no lock between processes (see ``LOCKS``)
    fcntl = None  # type: ignore[assignment]

#: Whether locks hold across processes here (POSIX ``flock``).
LOCKS = fcntl is not None


@contextmanager
def try_flock(path: Path | str) -> Iterator[bool]:
    """True (and the lock held until the block ends) when no other process holds it; False
    when one does, or when the lock file cannot be opened. Without ``flock`` (not POSIX)
    every caller gets True: callers that need the guarantee check ``LOCKS`` first."""
    if fcntl is None:
        yield True
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)
