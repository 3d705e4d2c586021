"""How the orchestrator hands records to Kafka: the reliable producer, or a plain one for
comparison."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from kafka_reliable.config import build_producer_config
from kafka_reliable.sending import produce
from kafka_reliable.serialization import Serializer, serialize_key

log = logging.getLogger(__name__)

#: Counters every sender reports (the orchestrator's summary keys).
COUNT_KEYS = ("sent", "failed", "retried", "dead_lettered", "spooled", "duplicates")


class ReliableSender:
    """Sends through :class:`~kafka_reliable.ReliableKafkaProducer`; counts come from its stats."""

    name = "reliable"

    def __init__(self, producer: Any) -> None:
        self.producer = producer

    def send(self, topic: str, value: Any, key: str | None) -> None:
        self.producer.send_message(topic, value, key=key)

    def counts(self) -> dict[str, int]:
        s = self.producer.get_stats()
        return {
            "sent": s["messages_sent"],
            "failed": s["messages_failed"],
            "retried": s["messages_retried"],
            "dead_lettered": s["messages_dead_lettered"],
            "spooled": s["messages_spooled"],
            "duplicates": s["duplicates"],
        }

    def flush(self, timeout_s: float) -> int:
        return int(self.producer.flush(timeout_s))

    def close(self, timeout_s: float = 30.0) -> None:
        self.producer.close(timeout_s)


class RawSender:
    """A plain confluent-kafka producer: failures are counted and then gone (no retry topic, no
    DLQ)."""

    name = "raw"

    def __init__(
        self,
        *,
        bootstrap_servers: str | None,
        producer_config: Mapping[str, Any] | None,
        serializer: Serializer,
    ) -> None:
        conf = build_producer_config(bootstrap_servers, producer_config)
        self._producer = Producer(conf)
        self._serializer = serializer
        self._counts = dict.fromkeys(COUNT_KEYS, 0)
        self._lock = threading.Lock()
        self.last_errors: dict[str, int] = {}

    def _on_delivery(self, err: KafkaError | None, _msg: Any) -> None:
        with self._lock:
            if err is None:
                self._counts["sent"] += 1
            else:
                self._counts["failed"] += 1
                self.last_errors[err.name()] = self.last_errors.get(err.name(), 0) + 1

    def send(self, topic: str, value: Any, key: str | None) -> None:
        vb = self._serializer(value, topic)
        kb = serialize_key(key)
        try:
            produce(self._producer, topic, vb, kb, None, self._on_delivery)
        except KafkaException as exc:
            self._on_delivery(exc.args[0], None)
        self._producer.poll(0)

    def counts(self) -> dict[str, int]:
        self._producer.poll(0)
        with self._lock:
            return dict(self._counts)

    def flush(self, timeout_s: float) -> int:
        return int(self._producer.flush(timeout_s))

    def close(self, timeout_s: float = 30.0) -> None:
        left = self._producer.flush(timeout_s)
        if left:
            log.warning("raw producer closed with %d records undelivered (lost)", left)
