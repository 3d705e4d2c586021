"""ReliableConsumer: a handler's failures go through the producer's retry/DLQ contract.

A record whose handler raises goes to the group's retry topic (``<topic>.<group>.retry``) with
the header contract, and comes back to the handler when due; non-retriable, exhausted and
undeserializable records go to the group's DLQ (``<topic>.<group>.dlq``). Offsets are
committed only after a record was handled or its retry/DLQ write was acknowledged.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterable, Mapping
from types import FrameType
from typing import Any

from prometheus_client import CollectorRegistry

from kafka_reliable.config import HealthThresholds, RetryConfig, TopicNaming, redact
from kafka_reliable.consumer import arguments
from kafka_reliable.consumer.arguments import check_handler
from kafka_reliable.consumer.engine import ConsumerError, Engine
from kafka_reliable.consumer.invoke import CallDriver, Handler, InlineCalls
from kafka_reliable.consumer.metrics import ConsumerMetrics
from kafka_reliable.consumer.routes import GroupTopicNaming
from kafka_reliable.consumer.settings import admin_conf
from kafka_reliable.consumer.stats import ConsumerStats
from kafka_reliable.dlq_counts import DlqCounts
from kafka_reliable.health.monitor import HealthMonitor
from kafka_reliable.stats import DlqStats
from kafka_reliable.topics import CompanionTopics

log = logging.getLogger(__name__)

#: Seconds a DLQ record count is reused by get_stats / get_health_status.
DLQ_COUNT_TTL_S = 5.0


class ReliableConsumer:
    """Consume ``topics`` as ``group_id``; ``run(handler)`` until ``stop()`` or SIGTERM/SIGINT.

    See docs/consumer.md for what happens to a record, key ordering and the topics.
    """

    def __init__(
        self,
        *,
        group_id: str,
        topics: Iterable[str],
        bootstrap_servers: str | Iterable[str] | None = None,
        retry_config: RetryConfig | None = None,
        non_retriable_exceptions: Iterable[type[BaseException]] = (),
        local_retries: int = 0,
        local_retry_delay_ms: int = 0,
        ordering: str = "none",
        deserializer: Any = None,
        consumer_config: Mapping[str, Any] | None = None,
        topic_naming: TopicNaming | None = None,
        max_pending: int = 10_000,
        health_thresholds: HealthThresholds | Mapping[str, Any] | None = None,
        metrics_registry: CollectorRegistry | None = None,
        enable_metrics: bool = True,
        shutdown_timeout_s: float = 10.0,
    ) -> None:
        given = {k: v for k, v in locals().items() if k != "self"}
        self.settings, self.bootstrap_servers = arguments.settings(**given)
        base = topic_naming or TopicNaming()
        self.naming = GroupTopicNaming(
            retry_suffix=base.retry_suffix,
            dlq_suffix=base.dlq_suffix,
            dlq_retention_ms=base.dlq_retention_ms,
            group=group_id,
        )
        self._deserializer = arguments.deserializer(deserializer)
        self.metrics = ConsumerMetrics(
            group=group_id, registry=metrics_registry, enabled=enable_metrics
        )
        self.stats = ConsumerStats()
        self._health = HealthMonitor(thresholds=health_thresholds)
        self._stop = threading.Event()
        self._running = threading.Lock()
        self._engine: Engine | None = None
        self._dlq = DlqCounts(
            companions=lambda: CompanionTopics(
                admin_conf(self.settings, self.bootstrap_servers), naming=self.naming
            ),
            naming=self.naming,
            topics=lambda: self.settings.topics,
            ttl_s=DLQ_COUNT_TTL_S,
        )

    # ---- topics -------------------------------------------------------------------------
    def retry_topic(self, topic: str) -> str:
        """This group's retry topic for ``topic`` (``<topic>.<group>.retry``)."""
        return self.naming.retry_topic(topic)

    def dlq_topic(self, topic: str) -> str:
        """This group's DLQ for ``topic`` (``<topic>.<group>.dlq``)."""
        return self.naming.dlq_topic(topic)

    # ---- running ------------------------------------------------------------------------
    def run(self, handler: Handler) -> None:
        """Hand every record to ``handler(record)`` until ``stop()`` (or SIGTERM/SIGINT when run
        in the main thread). Raises ConsumerError when it cannot start or a client fails fatally.
        An ``async def`` handler is refused: use ``kafka_reliable.aio.run_async``."""
        check_handler(handler)
        calls: list[InlineCalls] = []

        def driver(engine: Engine) -> InlineCalls:
            calls.append(InlineCalls(handler, engine.invoker))
            return calls[0]

        self.run_engine(driver, signals=True)
        if calls and calls[0].misuse:
            raise ConsumerError(calls[0].misuse)

    def run_engine(self, driver: Callable[[Engine], CallDriver], *, signals: bool = False) -> None:
        """Run one engine whose handler calls ``driver(engine)`` runs (``run()`` runs them
        inline, ``kafka_reliable.aio.run_async`` on an event loop); blocks until stopped.
        ``signals``: stop on SIGTERM/SIGINT (main thread only)."""
        if not self._running.acquire(blocking=False):
            raise ConsumerError("this ReliableConsumer is already running")
        restore = self._install_signals() if signals else (lambda: None)
        try:
            self._stop.clear()
            engine = self._engine = Engine(
                s=self.settings,
                bootstrap=self.bootstrap_servers,
                deserializer=self._deserializer,
                naming=self.naming,
                metrics=self.metrics,
                health=self._health,
                stats=self.stats,
                stop=self._stop,
            )
            log.info(
                "consumer starting: group %s, topics %s, %s",
                self.settings.group_id,
                list(self.settings.topics),
                redact(self.settings.consumer),
            )
            engine.run(driver(engine))
            log.info("consumer stopped: %s", {k: v for k, v in self.stats.counts.items() if v})
        finally:
            restore()
            self._dlq.close()
            self._running.release()

    def stop(self) -> None:
        """Ask ``run`` to return: the current handler call finishes, acknowledged work is committed.
        Thread-safe and signal-safe."""
        self._stop.set()

    @property
    def running(self) -> bool:
        return self._running.locked()

    def _install_signals(self) -> Any:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            log.info("signal %s: stopping the consumer", signal.Signals(signum).name)
            self.stop()

        for sig in previous:
            signal.signal(sig, on_signal)

        def restore() -> None:
            for sig, old in previous.items():
                signal.signal(sig, old)

        return restore

    # ---- stats and health ---------------------------------------------------------------
    def assignment(self) -> list[tuple[str, int]]:
        engine = self._engine
        return sorted(engine.gens) if engine is not None and self.running else []

    def get_stats(self) -> dict[str, Any]:
        """Counters and latencies in the producer's shape, plus the consumer's own keys."""
        stats = self.stats.snapshot()
        engine = self._engine
        stats["messages_pending"] = engine.pending() if engine is not None else 0
        writer = engine.writer if engine is not None else None
        stats["writes_failing"] = writer.failing if writer is not None else 0
        counts = self._dlq.get()
        stats["dlq_stats"] = DlqStats(
            total_messages=sum(counts.values()),
            topic_breakdown=dict(counts),
            routed_by_this_consumer=dict(self.stats.dlq_by_topic),
        )
        lag = dict(engine.events.lag) if engine is not None else {}
        stats.update(
            {
                "group_id": self.settings.group_id,
                "topics": list(self.settings.topics),
                "ordering": self.settings.ordering,
                "running": self.running,
                "assignment": [f"{t}[{p}]" for t, p in self.assignment()],
                "lag": {f"{t}[{p}]": n for (t, p), n in sorted(lag.items())},
                "connected": self._health.connected,
            }
        )
        return stats

    def get_health_status(self) -> dict[str, Any]:
        """``{"status": healthy|degraded|unhealthy, "metrics": {...}, "issues": [...]}`` — the
        producer's rules and thresholds, fed with handler outcomes and the group's DLQ size."""
        self._health.set_dlq_size(sum(self._dlq.get().values()))
        return self._health.get_status()

    def add_health_alert_callback(self, callback: Any) -> None:
        self._health.add_alert_callback(callback)
