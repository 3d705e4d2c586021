"""Points in time as users write them: ISO-8601, ``2h``/``30m``/``7d`` ago, or epoch ms."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)(?:\s+ago)?\s*$", re.IGNORECASE)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def parse_duration_ms(text: str) -> int:
    """``90s``, ``30m``, ``2h``, ``7d``, ``1w``, ``250ms`` -> milliseconds. ValueError otherwise."""
    m = _RELATIVE.match(text)
    if not m:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 15m, 2h, 7d, 1w)")
    return int(float(m.group(1)) * _UNIT_MS[m.group(2).lower()])


def parse_time(text: str, *, now: int | None = None) -> int:
    """Epoch ms of ``text``.

    Accepts a relative age (``2h`` = two hours ago), an ISO-8601 date or date-time (a trailing
    ``Z`` is UTC; no offset means UTC), or an integer epoch in milliseconds.
    """
    s = text.strip()
    if not s:
        raise ValueError("empty time")
    if _RELATIVE.match(s):
        return (now if now is not None else now_ms()) - parse_duration_ms(s)
    if s.isdigit():
        return int(s)
    try:
        dt = datetime.fromisoformat(s[:-1] + "+00:00" if s[-1] in "zZ" else s)
    except ValueError:
        raise ValueError(
            f"not a time: {text!r} (use ISO-8601 like 2024-05-01T12:00:00Z, a relative age "
            "like 2h / 30m / 7d, or epoch milliseconds)"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)
