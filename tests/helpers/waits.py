"""Waiting on a condition with a deadline, instead of a fixed sleep before an assert."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(cond: Callable[[], object], timeout_s: float, what: Callable[[], str] | str = "the condition",
               step_s: float = 0.05) -> float:
    """Poll ``cond`` every ``step_s`` until it is true; return the seconds it took.

    Raises ``AssertionError`` naming ``what`` (a string, or a function called for the message
    at the end) when ``timeout_s`` passes first.
    """
    start = time.monotonic()
    deadline = start + timeout_s
    while True:
        if cond():
            return time.monotonic() - start
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s}s: {what() if callable(what) else what}")
        time.sleep(step_s)
