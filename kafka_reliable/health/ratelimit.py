"""RateLimiter: a token bucket on send, in records per second and/or bytes per second.

Each bucket holds at most ``rate * burst_s`` tokens and refills continuously. In ``"block"``
mode ``acquire`` reserves its tokens at once (the bucket may go into debt) and sleeps for the
debt outside the lock, so concurrent senders are served in arrival order and the long-run
rate is exact. In ``"raise"`` mode it raises ``RateLimitExceededError`` (with
``retry_after_s``) and takes nothing. A request larger than a whole bucket is admitted when
the bucket is full, so one large record is slowed, never refused forever.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from kafka_reliable.errors import KafkaReliableError

#: What ``acquire`` does when the bucket is short.
MODES = ("block", "raise")


class RateLimitExceededError(KafkaReliableError):
    """The send rate limit is reached (mode ``raise``); nothing was sent."""

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class _Bucket:
    __slots__ = ("rate", "capacity", "tokens")

    def __init__(self, rate: float, burst_s: float) -> None:
        self.rate = rate
        self.capacity = max(rate * burst_s, 1.0)
        self.tokens = self.capacity

    def refill(self, elapsed_s: float) -> None:
        self.tokens = min(self.capacity, self.tokens + elapsed_s * self.rate)

    def shortfall(self, n: float) -> float:
        """Tokens missing before ``n`` may be taken (a request above capacity needs a full
        bucket)."""
        return max(0.0, min(n, self.capacity) - self.tokens)


class RateLimiter:
    """Token buckets for records/s and bytes/s (either may be None: unlimited)."""

    def __init__(
        self,
        *,
        records_per_s: float | None = None,
        bytes_per_s: float | None = None,
        burst_s: float = 1.0,
        mode: str = "block",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        for name, rate in (("records_per_s", records_per_s), ("bytes_per_s", bytes_per_s)):
            if rate is not None and not rate > 0:
                raise ValueError(f"{name} must be > 0 or None, got {rate!r}")
        if not burst_s > 0:
            raise ValueError(f"burst_s must be > 0, got {burst_s!r}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.mode = mode
        self._records = _Bucket(records_per_s, burst_s) if records_per_s else None
        self._bytes = _Bucket(bytes_per_s, burst_s) if bytes_per_s else None
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._last = clock()

    @property
    def enabled(self) -> bool:
        return self._records is not None or self._bytes is not None

    def acquire(self, records: int = 1, nbytes: int = 0) -> None:
        """Take ``records`` and ``nbytes`` tokens: block until there are, or raise."""
        rb = self._records if records > 0 else None
        bb = self._bytes if nbytes > 0 else None
        if rb is None and bb is None:
            return
        with self._lock:
            now = self._clock()
            elapsed, self._last = now - self._last, now
            wait_s = 0.0
            if rb is not None:
                rb.refill(elapsed)
                wait_s = rb.shortfall(records) / rb.rate
            if bb is not None:
                bb.refill(elapsed)
                wait_s = max(wait_s, bb.shortfall(nbytes) / bb.rate)
            if wait_s > 0 and self.mode == "raise":
                raise RateLimitExceededError(
                    f"send rate limit reached; retry in {wait_s:.3f}s", retry_after_s=wait_s
                )
            debt_s = 0.0
            if rb is not None:
                rb.tokens -= records
                debt_s = -rb.tokens / rb.rate
            if bb is not None:
                bb.tokens -= nbytes
                debt_s = max(debt_s, -bb.tokens / bb.rate)
        if debt_s > 0 and self.mode == "block":
            self._sleep(debt_s)
