"""librdkafka configurations of the worker's consumer, producer and admin client."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kafka_reliable.config import RELIABLE_DEFAULTS
from kafka_reliable.logs import client_logger
from kafka_reliable.worker.settings import WorkerConfig

#: Pattern subscriptions see new ``.retry`` topics within this time (librdkafka default: 5 min).
PATTERN_METADATA_REFRESH_MS = 10_000


def admin_config(cfg: WorkerConfig) -> dict[str, Any]:
    return {
        "bootstrap.servers": cfg.bootstrap_servers,
        "logger": client_logger(),
        **cfg.client_keys("admin"),
    }


def consumer_config(
    cfg: WorkerConfig,
    error_cb: Callable[[Any], None],
    on_commit: Callable[[Any, Any], None] | None = None,
) -> dict[str, Any]:
    """Manual commits only; read_committed so aborted transactional hops are never seen."""
    conf: dict[str, Any] = {
        "bootstrap.servers": cfg.bootstrap_servers,
        "group.id": cfg.group_id,
        "client.id": "kafka-reliable-retry-worker",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "enable.partition.eof": False,
        "error_cb": error_cb,
        "logger": client_logger(),
    }
    if on_commit is not None:
        conf["on_commit"] = on_commit
    if cfg.pattern:
        conf["topic.metadata.refresh.interval.ms"] = PATTERN_METADATA_REFRESH_MS
    if cfg.instance_id:
        conf["group.instance.id"] = cfg.instance_id
    conf.update(cfg.client_keys("consumer"))
    return conf


def producer_config(cfg: WorkerConfig, error_cb: Callable[[Any], None]) -> dict[str, Any]:
    """Idempotent, acks=all; transactional with one transactional.id per worker instance."""
    conf: dict[str, Any] = {
        **RELIABLE_DEFAULTS,
        "bootstrap.servers": cfg.bootstrap_servers,
        "client.id": "kafka-reliable-retry-worker",
        "delivery.timeout.ms": cfg.delivery_timeout_ms,
        "error_cb": error_cb,
        "logger": client_logger(),
    }
    if cfg.transactional:
        conf["transactional.id"] = cfg.transactional_id()
        conf["transaction.timeout.ms"] = cfg.transaction_timeout_ms
        conf["delivery.timeout.ms"] = min(cfg.delivery_timeout_ms, cfg.transaction_timeout_ms)
    conf.update(cfg.client_keys("producer"))
    return conf
