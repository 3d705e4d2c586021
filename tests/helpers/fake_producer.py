"""A stand-in for librdkafka's ``Producer`` in pure unit tests (no broker).

``produce()`` records the call and queues its delivery report; ``poll()`` / ``flush()`` fire the
queued reports with the outcome ``decide(call)`` chose (``None`` = delivered, a ``KafkaError`` =
failed); ``decide`` returning an exception makes ``produce()`` raise it at once. With
``hold = True`` reports wait until it is set back to ``False``; ``purge()`` fails what waits.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError


@dataclass
class Produced:
    """One ``produce()`` call."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]
    timestamp: int

    def header(self, name: str) -> bytes | None:
        return dict(self.headers).get(name)


Outcome = KafkaError | BaseException | None


class FakeProducer:
    """Records ``produce()`` calls; fires their delivery callbacks when polled."""

    def __init__(self, decide: Callable[[Produced], Outcome] | None = None) -> None:
        self.decide: Callable[[Produced], Outcome] = decide or (lambda _call: None)
        self.calls: list[Produced] = []
        self.hold = False
        self.purged = 0
        self._reports: list[tuple[Callable[..., None], KafkaError | None]] = []
        self._lock = threading.Lock()

    def produce(self, topic: str, value: bytes | None = None, key: bytes | None = None, partition: int = -1,
                on_delivery: Callable[..., None] | None = None, callback: Callable[..., None] | None = None,
                timestamp: int = 0, headers: Any = None) -> None:
        """confluent-kafka's argument order (``callback`` is ``on_delivery``'s alias)."""
        on_delivery = on_delivery or callback
        assert on_delivery is not None, "produce() without a delivery callback"
        call = Produced(topic, key, value, list(headers or []), timestamp)
        outcome = self.decide(call)
        if isinstance(outcome, BaseException):
            raise outcome
        with self._lock:
            self.calls.append(call)
            self._reports.append((on_delivery, outcome))

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._reports)

    def poll(self, timeout: float | None = 0) -> int:
        if self.hold:
            time.sleep(min(timeout or 0.0, 0.01))
            return 0
        with self._lock:
            reports, self._reports = self._reports, []
        for on_delivery, err in reports:
            on_delivery(err, None)
        if not reports:
            time.sleep(min(timeout or 0.0, 0.01))
        return len(reports)

    def flush(self, timeout: float | None = None) -> int:
        self.poll(0)
        return self.waiting

    def purge(self, in_queue: bool = True, in_flight: bool = True, blocking: bool = True) -> None:
        with self._lock:
            reports, self._reports = self._reports, []
        self.purged += len(reports)
        for on_delivery, _err in reports:
            on_delivery(KafkaError(KafkaError._PURGE_QUEUE), None)
