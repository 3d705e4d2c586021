"""Backoff: one pure function."""

from __future__ import annotations

import random
from collections.abc import Callable

from kafka_reliable.config import RetryConfig


def backoff_ms(attempt: int, config: RetryConfig, rand: Callable[[], float] = random.random) -> int:
    """Delay before retry number ``attempt`` (1-based): exponential, capped, optional jitter.

    ``initial_delay_ms * multiplier**(attempt-1)`` capped at ``max_delay_ms``; with jitter the
    delay is drawn uniformly from [delay/2, delay] ("equal jitter"), so retries of many records
    that failed together spread out but none waits longer than the cap.
    """
    if attempt < 1:
        raise ValueError(f"attempt is 1-based, got {attempt}")
    exp = min(attempt - 1, 64)
    delay = min(
        float(config.max_delay_ms), config.initial_delay_ms * config.backoff_multiplier**exp
    )
    if config.jitter:
        delay = delay / 2 + rand() * delay / 2
    return int(delay)
