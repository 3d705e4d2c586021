"""How a ReliableKafkaProducer is put together: its arguments checked, its client config, its
local state (spool, write-ahead log) opened first, and the parts that route, drain, watch and
send wired to each other. The facade (``producer.py``) keeps the public API only.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException, Producer
from prometheus_client import CollectorRegistry

from kafka_reliable import tracing
from kafka_reliable.client_errors import with_logger
from kafka_reliable.config import (
    HealthThresholds,
    RetryConfig,
    TopicNaming,
    build_producer_config,
    redact,
)
from kafka_reliable.dedup import Deduplicator, make_deduplicator
from kafka_reliable.dlq import DeadLetterQueue
from kafka_reliable.errors import ConfigurationError
from kafka_reliable.health import CircuitBreaker, HealthMonitor, RateLimiter
from kafka_reliable.owned_keys import PRODUCER_OWNED, refuse_owned
from kafka_reliable.producer import tracking as T
from kafka_reliable.producer.companion_writer import CompanionWriter
from kafka_reliable.producer.connection import ConnectionState
from kafka_reliable.producer.dlq_watch import DlqWatch
from kafka_reliable.producer.durable import DURABILITY_MODES, DurableLedger, adopt_dead_owners
from kafka_reliable.producer.metrics import ProducerMetrics
from kafka_reliable.producer.outcomes import RoutingOutcomes
from kafka_reliable.producer.reports import DeliveryReports
from kafka_reliable.producer.retry_manager import RetryManager
from kafka_reliable.producer.send_path import SendPath
from kafka_reliable.producer.spool_drainer import SpoolDrainer
from kafka_reliable.serialization import Serializer
from kafka_reliable.spool import Spool
from kafka_reliable.topics import CompanionTopics
from kafka_reliable.wal import FSYNC_POLICIES

#: Statistics interval requested from librdkafka (connection state for health and the spool).
STATS_INTERVAL_MS = 1000


@dataclass(frozen=True, kw_only=True)
class Options:
    """``ReliableKafkaProducer``'s keyword arguments, as given (the signature stays explicit
    there for IDEs and type checkers; the parts are built from this)."""

    bootstrap_servers: str | Iterable[str] | None
    producer_config: Mapping[str, Any] | None
    retry_config: RetryConfig | None
    dlq_max_size: int
    enable_deduplication: bool
    redis_client: Any
    redis_url: str | None
    dedup_ttl_s: float
    dedup_on_unavailable: str
    dedup_key_fn: Callable[[str, bytes | None, bytes], bytes | str] | None
    health_thresholds: HealthThresholds | Mapping[str, Any] | None
    health_window_s: float
    alert_cooldown_s: float
    metrics_registry: CollectorRegistry | None
    enable_metrics: bool
    circuit_breaker: CircuitBreaker | None
    rate_limiter: RateLimiter | None
    enable_tracing: bool | None
    serializer: Serializer | None
    spool_path: str | os.PathLike[str] | None
    topic_naming: TopicNaming | None
    message_id_header: bool
    status_capacity: int
    worker_group: str
    maintenance_interval_s: float
    dlq_check_interval_s: float
    durability: str
    fsync: str
    fsync_interval_ms: int
    spool_max_bytes: int
    unsafe_producer_config: bool


def deduplicator(o: Options) -> Deduplicator | None:
    if not o.enable_deduplication:
        return None
    return make_deduplicator(
        redis_client=o.redis_client,
        redis_url=o.redis_url,
        ttl_s=o.dedup_ttl_s,
        on_unavailable=o.dedup_on_unavailable,  # type: ignore[arg-type]
        key_fn=o.dedup_key_fn,
    )


def loggable(conf: Mapping[str, Any]) -> dict[str, Any]:
    """The config as it may be logged: plain values only, secrets redacted."""
    return redact({k: v for k, v in conf.items() if isinstance(v, str | int | float | bool)})


def validate(
    dlq_max_size: object,
    durability: object,
    fsync: object,
    fsync_interval_ms: object,
    spool_max_bytes: object,
) -> None:
    """The producer's own arguments (the client config is checked by ``client_config``)."""
    if isinstance(dlq_max_size, bool) or not isinstance(dlq_max_size, int) or dlq_max_size < 0:
        raise ConfigurationError(f"dlq_max_size must be an int >= 0, got {dlq_max_size!r}")
    if durability not in DURABILITY_MODES:
        raise ConfigurationError(
            f"durability must be one of {DURABILITY_MODES}, got {durability!r}"
        )
    if fsync not in FSYNC_POLICIES:
        raise ConfigurationError(f"fsync must be one of {FSYNC_POLICIES}, got {fsync!r}")
    for name, value, low in (
        ("fsync_interval_ms", fsync_interval_ms, 1),
        ("spool_max_bytes", spool_max_bytes, 1 << 20),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigurationError(f"{name} must be an int >= {low}, got {value!r}")


def client_config(
    bootstrap_servers: str | Iterable[str] | None,
    producer_config: Mapping[str, Any] | None,
    *,
    unsafe: bool,
    connection: ConnectionState,
) -> dict[str, Any]:
    """The main client's librdkafka config: defaults, the caller's keys (never weakening
    acks=all or idempotence unless ``unsafe``), logging and the connection callbacks."""
    if bootstrap_servers is None and not (producer_config or {}).get("bootstrap_servers"):
        bootstrap_servers = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    conf = build_producer_config(bootstrap_servers, producer_config)
    if not unsafe:
        refuse_owned(conf, PRODUCER_OWNED, where="producer_config")
    elif str(conf.get("acks")).lower() not in {"all", "-1"} and "enable.idempotence" not in (
        producer_config or {}
    ):
        conf["enable.idempotence"] = False  # librdkafka: idempotence requires acks=all
    conf.setdefault("statistics.interval.ms", STATS_INTERVAL_MS)
    with_logger(conf)  # librdkafka's own lines through Python logging, not stderr
    conf["error_cb"] = connection.on_error
    conf["stats_cb"] = connection.on_stats
    return conf


def new_client(conf: dict[str, Any]) -> Producer:
    try:
        return Producer(conf)
    except KafkaException as exc:
        raise ConfigurationError(
            f"invalid producer configuration: {exc.args[0].str() if exc.args else exc}"
        ) from exc


@dataclass(frozen=True, kw_only=True)
class LocalState:
    """What lives on local disk: the spool, and the write-ahead log in durable mode."""

    spool: Spool
    ledger: DurableLedger | None


def open_local_state(
    spool_path: str | os.PathLike[str] | None,
    owner: str,
    *,
    durability: str,
    with_id_header: bool,
    max_bytes: int,
    fsync: str,
    fsync_interval_ms: int,
) -> LocalState:
    """Open the spool and the log, and take over dead producers' logs; a failure closes what
    was opened (no client or thread exists yet)."""
    spool = Spool(spool_path, durable=durability == "spool")
    ledger = None
    try:
        if durability == "spool":
            ledger = DurableLedger(
                spool.path,
                owner,
                with_id_header=with_id_header,
                max_bytes=max_bytes,
                fsync=fsync,
                fsync_interval_ms=fsync_interval_ms,
            )
        spool.recover_inflight(owner)  # rows of an older release's durable mode
        adopt_dead_owners(spool, skip=owner)  # dead producers' records are sent again
    except BaseException:
        if ledger is not None:
            ledger.close()
        spool.close()
        raise
    return LocalState(spool=spool, ledger=ledger)


@dataclass(frozen=True, kw_only=True)
class Parts:
    """The parts that route, drain, watch and send, wired to each other."""

    writer: CompanionWriter
    drainer: SpoolDrainer
    retry_manager: RetryManager
    dlq: DeadLetterQueue
    dlq_watch: DlqWatch
    send: SendPath


@dataclass(frozen=True, kw_only=True)
class Shared:
    """What every part may hold: the facade's own state, built before the parts."""

    conf: dict[str, Any]
    retry_config: RetryConfig
    naming: TopicNaming
    companions: CompanionTopics
    local: LocalState
    tracker: T.MessageTracker
    health: HealthMonitor
    metrics: ProducerMetrics | None
    dedup: Deduplicator | None
    breaker: CircuitBreaker | None
    client: Callable[[], Producer]
    is_connected: Callable[[], bool]
    topics: Callable[[], list[str]]


def compose(s: Shared, o: Options) -> Parts:
    """Build the parts. The drainer needs the writer, whose callbacks need the drainer: the
    routing outcomes reach it late-bound."""
    drainer_box: list[SpoolDrainer] = []
    outcomes = RoutingOutcomes(
        dedup=s.dedup,
        metrics=s.metrics,
        health=s.health,
        spool_path=s.local.spool.path,
        on_spool_routed=lambda rec, status: drainer_box[0].on_routed(rec, status),
    )
    writer = CompanionWriter(
        conf=s.conf,
        retry_config=s.retry_config,
        naming=s.naming,
        companions=s.companions,
        spool=s.local.spool,
        tracker=s.tracker,
        is_connected=s.is_connected,
        on_routed=outcomes.on_routed,
        on_quarantined=outcomes.on_quarantined,
    )
    drainer_box.append(
        SpoolDrainer(
            spool=s.local.spool,
            client=s.client,
            tracker=s.tracker,
            submit_failure=writer.submit,
            breaker=s.breaker,
        )
    )
    dlq, dlq_watch = _dlq_parts(s, o, outcomes)
    return Parts(
        writer=writer,
        drainer=drainer_box[0],
        retry_manager=RetryManager(
            companions=s.companions,
            topics=s.topics,
            worker_group=o.worker_group,
            routed=lambda: s.tracker.counter("retried"),
        ),
        dlq=dlq,
        dlq_watch=dlq_watch,
        send=_send_path(s, writer, o.enable_tracing, o.rate_limiter, o.message_id_header),
    )


def _dlq_parts(
    s: Shared, o: Options, outcomes: RoutingOutcomes
) -> tuple[DeadLetterQueue, DlqWatch]:
    dlq = DeadLetterQueue(
        conf=s.conf,
        naming=s.naming,
        admin=s.companions.admin,
        alert_callback=outcomes.on_dlq_alert,
        watermarks=s.companions.watermarks,
    )
    watch = DlqWatch(
        dlq=dlq,
        companions=s.companions,
        naming=s.naming,
        topics=s.topics,
        max_size=o.dlq_max_size,
        check_interval_s=o.dlq_check_interval_s,
    )
    return dlq, watch


def _send_path(
    s: Shared,
    writer: CompanionWriter,
    enable_tracing: bool | None,
    rate_limiter: RateLimiter | None,
    message_id_header: bool,
) -> SendPath:
    #: OpenTelemetry send spans: on when a tracer provider is configured, unless switched off.
    tracing_on = tracing.OTEL_AVAILABLE and (
        enable_tracing is True or (enable_tracing is None and tracing.configured())
    )
    reports = DeliveryReports(
        tracker=s.tracker,
        metrics=s.metrics,
        breaker=s.breaker,
        submit_failure=writer.submit,
        with_id_header=message_id_header,
    )
    return SendPath(
        client=s.client,
        reports=reports,
        tracker=s.tracker,
        spool=s.local.spool,
        with_id_header=message_id_header,
        dedup=s.dedup,
        limiter=rate_limiter,
        breaker=s.breaker,
        metrics=s.metrics,
        tracing_on=tracing_on,
        ledger=s.local.ledger,
        submit_failure=writer.submit,
    )
