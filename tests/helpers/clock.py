"""A controllable clock for pure units: call it for the time; ``advance`` or ``sleep`` moves it."""

from __future__ import annotations


class FakeClock:
    """Monotonic seconds that move only when told to; ``sleep`` records the wait and moves time."""

    def __init__(self, start_s: float = 1000.0) -> None:
        self.now = start_s
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
