"""Traffic shape of the data generator: the daily curve and Poisson arrival gaps."""

from __future__ import annotations

import random

_HOURLY_SHAPE = (
    0.35,
    0.25,
    0.2,
    0.18,
    0.2,
    0.3,
    0.5,
    0.75,
    0.95,
    1.05,
    1.1,
    1.2,
    1.3,
    1.2,
    1.1,
    1.05,
    1.05,
    1.15,
    1.35,
    1.55,
    1.6,
    1.4,
    1.0,
    0.76,
)
#: Relative traffic per UTC hour (mean 1.0): a night trough and a lunch and evening peak.
HOURLY_TRAFFIC: tuple[float, ...] = tuple(x * 24 / sum(_HOURLY_SHAPE) for x in _HOURLY_SHAPE)


def daily_traffic_factor(ts_ms: int) -> float:
    """Traffic relative to the daily mean at ``ts_ms`` (UTC), interpolated between hours."""
    hours = (ts_ms / 3_600_000.0) % 24.0
    h = int(hours)
    frac = hours - h
    return HOURLY_TRAFFIC[h] * (1 - frac) + HOURLY_TRAFFIC[(h + 1) % 24] * frac


def exp_gap_ms(rng: random.Random, per_minute: float) -> int:
    """Gap to the next arrival of a Poisson process with ``per_minute`` events a minute."""
    return max(1, int(rng.expovariate(max(per_minute, 1e-9) / 60_000.0)))
