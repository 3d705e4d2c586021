"""librdkafka callbacks of the consumer's clients: errors, statistics (health and lag)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaError

from kafka_reliable.consumer.metrics import ConsumerMetrics
from kafka_reliable.health.monitor import HealthMonitor
from kafka_reliable.scheduling import TP

log = logging.getLogger("kafka_reliable.consumer.engine")


class ClientEvents:
    """Feeds health and lag; logs one line per change of client error; stops on a fatal one."""

    def __init__(self, *, health: HealthMonitor, metrics: ConsumerMetrics, stop: threading.Event,
                 owned: Mapping[TP, int]) -> None:
        self.health, self.metrics, self.stop, self.owned = health, metrics, stop, owned
        self.lag: dict[TP, int] = {}
        self.fatal: str | None = None
        self._last: str | None = None

    def on_stats(self, raw: str) -> None:
        try:
            stats = json.loads(raw)
        except ValueError:
            return
        self.health.record_stats(stats)
        for topic, t in (stats.get("topics") or {}).items():
            for part, pd in (t.get("partitions") or {}).items():
                lag = pd.get("consumer_lag", -1)
                tp = (topic, int(part))
                if lag is not None and lag >= 0 and tp in self.owned:
                    self.lag[tp] = lag
                    self.metrics.set_lag(topic, tp[1], lag)

    def on_consumer_error(self, err: KafkaError) -> None:
        self._client_error("consumer", err)

    def on_producer_error(self, err: KafkaError) -> None:
        self._client_error("producer", err)

    def _client_error(self, which: str, err: KafkaError) -> None:
        self.health.record_connection_error(err.name(), err.str())
        if err.fatal():
            self.fatal = f"{which}: {err}"
            self.stop.set()
        self.note(which, err)

    def note(self, where: str, err: Any) -> None:
        text = f"{where}: {err.name() if isinstance(err, KafkaError) else err}"
        if text != self._last:
            self._last = text
            log.warning("%s%s", text, f" ({err.str()})" if isinstance(err, KafkaError) else "")

    def recovered(self, prefix: str, message: str) -> None:
        """Log ``message`` once when the last noted error started with ``prefix``."""
        if self._last is not None and self._last.startswith(prefix):
            log.info("%s", message)
            self._last = None
