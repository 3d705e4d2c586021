"""Calling the handler: local retries, timing, counting, and the route of a failure."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from kafka_reliable.consumer import routes
from kafka_reliable.consumer.metrics import ConsumerMetrics
from kafka_reliable.consumer.record import ConsumerRecord, exception_name
from kafka_reliable.consumer.routes import GroupTopicNaming, Origin
from kafka_reliable.consumer.settings import ConsumerSettings
from kafka_reliable.consumer.stats import ConsumerStats
from kafka_reliable.health.monitor import HealthMonitor
from kafka_reliable.routing import Route

Handler = Callable[[ConsumerRecord], Any]


class Invoker:
    """Runs the handler for one record and says what its failure means."""

    def __init__(self, *, s: ConsumerSettings, handler: Handler, naming: GroupTopicNaming, stats: ConsumerStats,
                 metrics: ConsumerMetrics, health: HealthMonitor, stop: threading.Event) -> None:
        self.s, self.handler, self.naming = s, handler, naming
        self.stats, self.metrics, self.health, self.stop = stats, metrics, health, stop
        #: outcomes not yet given to the health monitor: ok, failed, latency sum (ms)
        self._window: list[float] = [0, 0, 0.0]

    def call(self, rec: ConsumerRecord) -> Exception | None:
        """Run the handler (plus local retries); None when it returned, else the last exception."""
        for i in range(self.s.local_retries + 1):
            t0 = time.perf_counter()
            try:
                self.handler(rec)
            except Exception as exc:  # noqa: BLE001 - the handler's failure is what we route
                dt = time.perf_counter() - t0
                self._count_failure(rec.topic, exception_name(exc), dt)
                final = isinstance(exc, routes.Retry) or (
                    bool(self.s.non_retriable_exceptions) and isinstance(exc, self.s.non_retriable_exceptions))
                if final or i == self.s.local_retries or self.stop.is_set():
                    return exc
                if self.s.local_retry_delay_ms:
                    time.sleep(self.s.local_retry_delay_ms / 1000)
                continue
            dt = time.perf_counter() - t0
            self.stats.counts["handled"] += 1
            self.stats.handler_ms.add(dt * 1000)
            self.metrics.handled(rec.topic, dt)
            self._window[0] += 1
            self._window[2] += dt * 1000
            return None
        return None  # pragma: no cover - the loop always returns

    def _count_failure(self, topic: str, name: str, dt: float) -> None:
        self.stats.counts["failed"] += 1
        self.stats.failed_by_class[name] = self.stats.failed_by_class.get(name, 0) + 1
        self.stats.handler_ms.add(dt * 1000)
        self.metrics.failed(topic, name, dt)
        self._window[1] += 1
        self._window[2] += dt * 1000

    def route(self, origin: Origin, exc: Exception) -> Route:
        """The group's retry topic or DLQ for a record whose handler raised ``exc``."""
        name = exception_name(exc)
        cls = routes.classify_exception(exc, name, self.s.non_retriable_exceptions)
        delay = exc.delay_ms if isinstance(exc, routes.Retry) else None
        return routes.failure_route(origin, classification=cls, error_message=str(exc) or name,
                                    retry_config=self.s.retry_config, naming=self.naming,
                                    now_ms=int(time.time() * 1000), delay_ms=delay)

    def flush_health(self) -> None:
        """Give the outcomes since the last call to the health monitor (once per loop turn)."""
        ok, failed, ms = self._window
        if ok or failed:
            self.health.record_deliveries(int(ok), int(failed), ms, int(ok + failed))
            self._window = [0, 0, 0.0]
