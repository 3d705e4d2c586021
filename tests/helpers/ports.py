"""Ports for servers the tests start: reserved by binding, never by a check-then-bind scan.

``free_port()`` is a port the kernel just handed out (for a server that binds it at once, or
for "nothing listens here"). ``reserve_ports(n)`` is a block for a broker or cluster that
binds seconds later (a JVM): a *listening* marker socket at the top of the block is held for
the reservation's life, so every other ``reserve_ports`` call (other xdist workers, other
test runs on the machine) skips the block, and each port of the block is bound once to prove
it free now. Blocks lie below Linux's ephemeral range (32768-60999), where no client's
outgoing connection can take a port between the check and the server's bind.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass, field

__all__ = ["PortBlock", "free_port", "reserve_ports"]

#: First and last base of the reserved blocks, and the block size (the top port is the marker).
LOW, HIGH, BLOCK = 20_000, 32_000, 100


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PortBlock:
    """Ports ``base`` .. ``base + count - 1`` are free and held for you until ``release()``."""

    base: int
    count: int
    _marker: socket.socket | None = field(default=None, repr=False)

    @property
    def ports(self) -> list[int]:
        return list(range(self.base, self.base + self.count))

    def release(self) -> None:
        if self._marker is not None:
            self._marker.close()
            self._marker = None


def reserve_ports(count: int, *, low: int = LOW, high: int = HIGH) -> PortBlock:
    """A block of ``count`` (< 100) consecutive free ports; ``release()`` it when the server stops."""
    if not 0 < count < BLOCK:
        raise ValueError(f"reserve_ports: count must be 1..{BLOCK - 1}, got {count}")
    for base in range(low, high, BLOCK):
        marker = _bind(base + BLOCK - 1, listen=True)
        if marker is None:
            continue  # another reservation holds this block
        if all(_bind_once(port) for port in range(base, base + count)):
            return PortBlock(base, count, marker)
        marker.close()
    raise RuntimeError(f"no block of {count} free ports in {low}..{high}")


def _bind(port: int, *, listen: bool) -> socket.socket | None:
    s = socket.socket()
    # as a server does (a port in TIME_WAIT from an earlier run is free for it)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        if listen:
            s.listen(1)
    except OSError as exc:
        s.close()
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            return None
        raise
    return s


def _bind_once(port: int) -> bool:
    s = _bind(port, listen=True)
    if s is None:
        return False
    s.close()
    return True
