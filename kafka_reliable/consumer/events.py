"""librdkafka callbacks of the consumer's clients: errors (``client_errors.ErrorNotes``: one
line per kind and window), statistics (health and lag), a fatal error stops the consumer."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping

from confluent_kafka import KafkaError

from kafka_reliable.client_errors import ErrorNotes, read_stats
from kafka_reliable.consumer.metrics import ConsumerMetrics
from kafka_reliable.health.monitor import HealthMonitor
from kafka_reliable.scheduling import TP

log = logging.getLogger("kafka_reliable.consumer.engine")


class ClientEvents:
    """Feeds health and lag; logs one line per change of client error; stops on a fatal one."""

    def __init__(
        self,
        *,
        health: HealthMonitor,
        metrics: ConsumerMetrics,
        stop: threading.Event,
        owned: Mapping[TP, int],
    ) -> None:
        self.health, self.metrics, self.stop, self.owned = health, metrics, stop, owned
        self.lag: dict[TP, int] = {}
        self.fatal: str | None = None
        self.notes = ErrorNotes(logger=log)
        self.note = self.notes.note

    def on_stats(self, raw: str) -> None:
        stats = read_stats(raw)
        if stats is None:
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

    def recovered(self, after: str, what: str) -> None:
        """Log ``what`` once when the last noted error's kind starts with ``after``."""
        self.notes.recovered(what, after)
