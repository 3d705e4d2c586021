"""DataGenerationOrchestrator: streams a scenario's records to Kafka, paced on a simulated clock.

``run_scenario("normal_traffic", duration_hours=1.0, speed=60)`` simulates one hour in one
minute. Records go to ``transactions``, ``user-events`` and ``product-updates`` (a prefix can
be set) in Avro single-object encoding (or JSON), through the reliable producer by default.
``system_degradation`` acts out real failures: oversized records (above the topic's
``max.message.bytes`` → ``.dlq``), records for a topic that is not provisioned
(``user-events-archive``; the broker refuses them until delivery times out → ``.retry``) and
duplicates (caught by dedup).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from kafka_reliable.avro import AvroSerializer
from kafka_reliable.config import build_producer_config, client_config
from kafka_reliable.datagen.generators import (
    PRODUCT_UPDATE,
    TRANSACTION,
    USER_EVENT,
)
from kafka_reliable.datagen.run import Run, print_summary
from kafka_reliable.datagen.scenarios import (
    get_scenario,
    iter_records,
    make_generator,
)
from kafka_reliable.datagen.senders import COUNT_KEYS, RawSender, ReliableSender
from kafka_reliable.serialization import JsonSerializer, Serializer

log = logging.getLogger(__name__)

#: Record kind -> default topic name (before the prefix).
DEFAULT_TOPICS: dict[str, str] = {
    TRANSACTION: "transactions",
    USER_EVENT: "user-events",
    PRODUCT_UPDATE: "product-updates",
}
#: A topic system_degradation writes to but never creates (broker auto-creation must be off).
UNPROVISIONED_TOPIC = "user-events-archive"
#: Producer settings under the caller's: failures surface within seconds, not librdkafka's 5
#: minutes.
DATAGEN_PRODUCER_DEFAULTS: dict[str, Any] = {
    "delivery_timeout_ms": 10_000,
    "request_timeout_ms": 5_000,
    "linger_ms": 10,
}
#: Seconds between progress-display refreshes.
PROGRESS_INTERVAL_S = 0.25
#: Bytes added above max.message.bytes to make a record oversized.
OVERSIZE_MARGIN_BYTES = 4096


def _check_args(serialization: str, start_ms: int | None) -> None:
    if serialization not in ("avro", "json"):
        raise ValueError(f"serialization must be 'avro' or 'json', got {serialization!r}")
    if start_ms is not None and (
        isinstance(start_ms, bool) or not isinstance(start_ms, int) or start_ms < 0
    ):
        raise ValueError(f"start_ms must be an epoch time in ms >= 0, got {start_ms!r}")


class DataGenerationOrchestrator:
    """Generates e-commerce traffic and streams it to Kafka through the reliable producer."""

    def __init__(
        self,
        *,
        use_reliable_producer: bool = True,
        redis_client: Any = None,
        bootstrap_servers: str | None = None,
        topic_prefix: str = "",
        serialization: str = "avro",
        registry_url: str | None = None,
        seed: int | None = None,
        start_ms: int | None = None,
        producer_config: Mapping[str, Any] | None = None,
        enable_deduplication: bool = True,
        partitions: int = 3,
        show_progress: bool = True,
        console: Console | None = None,
        transaction_schema_version: int = 1,
        **producer_kwargs: Any,
    ) -> None:
        _check_args(serialization, start_ms)
        self.topics = {kind: topic_prefix + name for kind, name in DEFAULT_TOPICS.items()}
        self.unprovisioned_topic = topic_prefix + UNPROVISIONED_TOPIC
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
        self.start_ms = start_ms
        self.serialization = serialization
        self.partitions = partitions
        self.transaction_schema_version = transaction_schema_version
        self.console = console or Console(stderr=True)
        self.show_progress = show_progress
        self._serializer = self._make_serializer(serialization, registry_url)
        conf = {**DATAGEN_PRODUCER_DEFAULTS, **(producer_config or {})}
        self._conf = build_producer_config(bootstrap_servers, conf)
        self._admin = AdminClient(client_config(self._conf))
        self.producer: Any = None
        self.sender: ReliableSender | RawSender
        if use_reliable_producer:
            self._make_reliable_sender(
                bootstrap_servers, conf, enable_deduplication, redis_client, producer_kwargs
            )
        else:
            self.sender = RawSender(
                bootstrap_servers=bootstrap_servers,
                producer_config=conf,
                serializer=self._serializer,
            )

    def _make_reliable_sender(
        self,
        bootstrap_servers: str | None,
        conf: dict[str, Any],
        enable_deduplication: bool,
        redis_client: Any,
        producer_kwargs: dict[str, Any],
    ) -> None:
        from kafka_reliable.producer import ReliableKafkaProducer

        self.producer = ReliableKafkaProducer(
            bootstrap_servers=bootstrap_servers,
            producer_config=conf,
            serializer=self._serializer,
            enable_deduplication=enable_deduplication,
            redis_client=redis_client,
            **producer_kwargs,
        )
        self.sender = ReliableSender(self.producer)

    def _make_serializer(self, serialization: str, registry_url: str | None) -> Serializer:
        if serialization == "json":
            return JsonSerializer()
        tx_schema = "transaction_v2" if self.transaction_schema_version == 2 else "transaction"
        schemas = {
            self.topics[TRANSACTION]: tx_schema,
            self.topics[USER_EVENT]: "user_event",
            self.topics[PRODUCT_UPDATE]: "product_update",
            self.unprovisioned_topic: "user_event",
        }
        return AvroSerializer(schemas=schemas, registry_url=registry_url)

    # ---- topics -----------------------------------------------------------------------------
    def ensure_topics(self, timeout_s: float = 30.0) -> list[str]:
        """Create the missing output topics; return the ones created."""
        existing = set(self._admin.list_topics(timeout=timeout_s).topics)
        wanted = [t for t in self.topics.values() if t not in existing]
        if not wanted:
            return []
        futures = self._admin.create_topics(
            [NewTopic(t, num_partitions=self.partitions, replication_factor=-1) for t in wanted]
        )
        created = []
        for topic, fut in futures.items():
            try:
                fut.result(timeout=timeout_s)
                created.append(topic)
            except KafkaException as exc:
                if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                    raise
        self._wait_for_leaders(wanted, timeout_s)
        return created

    def _wait_for_leaders(self, topics: list[str], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            md = self._admin.list_topics(timeout=5)
            if all(
                t in md.topics
                and md.topics[t].error is None
                and md.topics[t].partitions
                and all(p.leader >= 0 for p in md.topics[t].partitions.values())
                for t in topics
            ):
                return
            time.sleep(0.1)

    def max_message_bytes(self, topic: str) -> int:
        res = ConfigResource(ConfigResource.Type.TOPIC, topic)
        cfg = self._admin.describe_configs([res])[res].result(timeout=10)
        return int(cfg["max.message.bytes"].value)

    # ---- running ----------------------------------------------------------------------------
    def run_scenario(
        self,
        name: str,
        duration_hours: float = 1.0,
        speed: float = 1.0,
        *,
        max_records: int | None = None,
        flush_timeout_s: float = 60.0,
    ) -> dict[str, Any]:
        """Stream ``duration_hours`` of simulated traffic; ``speed`` simulated seconds per wall
        second (0 = as fast as possible). Returns the summary (also shown on the console)."""
        scenario = get_scenario(name)
        if duration_hours <= 0:
            raise ValueError(f"duration_hours must be > 0, got {duration_hours}")
        self.ensure_topics()
        if scenario.unwritable_every:
            self._warn_if_unprovisioned_exists()
        start_ms = self.start_ms if self.start_ms is not None else int(time.time() * 1000)
        duration_ms = int(duration_hours * 3_600_000)
        gen = make_generator(
            scenario,
            seed=self.seed,
            start_ms=start_ms,
            transaction_schema_version=self.transaction_schema_version,
        )
        run = Run(self, oversize_to=self._oversize_limit() if scenario.oversized_every else 0)
        before = self.sender.counts()
        t0 = time.monotonic()
        with self._progress() as progress:
            task = progress.add_task(name, total=duration_ms, counts="")
            last_draw = 0.0
            for rec in iter_records(scenario, gen, start_ms=start_ms, duration_ms=duration_ms):
                if max_records is not None and run.generated >= max_records:
                    break
                sim_ms = rec.timestamp_ms - start_ms
                self._pace(sim_ms, speed, t0, progress, task, run, before)
                run.send(rec)
                if time.monotonic() - last_draw >= PROGRESS_INTERVAL_S:
                    last_draw = time.monotonic()
                    self._draw(progress, task, min(sim_ms, duration_ms), run, before)
            progress.update(task, description=f"{name}: flushing")
            left = self.sender.flush(flush_timeout_s)
            self._draw(progress, task, duration_ms, run, before)
            progress.update(task, description=name)
        summary = self._summary(
            name, run, before, time.monotonic() - t0, left, start_ms, duration_hours, speed
        )
        if self.show_progress:
            print_summary(summary, self.console)
        return summary

    def _warn_if_unprovisioned_exists(self) -> None:
        if self.unprovisioned_topic in self._admin.list_topics(timeout=10).topics:
            log.warning(
                "%s exists, so the records meant to fail there will be delivered",
                self.unprovisioned_topic,
            )

    def _oversize_limit(self) -> int:
        try:
            return self.max_message_bytes(self.topics[TRANSACTION]) + OVERSIZE_MARGIN_BYTES
        except KafkaException as exc:
            log.warning(
                "cannot read max.message.bytes of %s (%s): assuming the broker default",
                self.topics[TRANSACTION],
                exc,
            )
            return 1_048_588 + OVERSIZE_MARGIN_BYTES

    def _pace(
        self,
        sim_ms: int,
        speed: float,
        t0: float,
        progress: Progress,
        task: Any,
        run: Run,
        before: dict[str, int],
    ) -> None:
        if speed <= 0:
            return
        while True:
            wait_s = sim_ms / 1000.0 / speed - (time.monotonic() - t0)
            if wait_s <= 0:
                return
            self._draw(progress, task, int((time.monotonic() - t0) * speed * 1000), run, before)
            time.sleep(min(wait_s, PROGRESS_INTERVAL_S))

    def _progress(self) -> Progress:
        return Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            console=self.console,
            disable=not self.show_progress,
            transient=False,
        )

    def _draw(
        self, progress: Progress, task: Any, sim_ms: int, run: Run, before: dict[str, int]
    ) -> None:
        if not self.show_progress:
            return
        now = _delta(self.sender.counts(), before)
        text = (
            f"gen {run.generated} · sent {now['sent']} · retry {now['retried']} · "
            f"dlq {now['dead_lettered']} · dup {now['duplicates']}"
        )
        progress.update(task, completed=sim_ms, counts=text)

    def _summary(
        self,
        name: str,
        run: Run,
        before: dict[str, int],
        elapsed_s: float,
        left: int,
        start_ms: int,
        duration_hours: float,
        speed: float,
    ) -> dict[str, Any]:
        counts = _delta(self.sender.counts(), before)
        return {
            "scenario": name,
            "producer": self.sender.name,
            "format": self.serialization,
            "seed": self.seed,
            "start_ms": start_ms,
            "duration_hours": duration_hours,
            "speed": speed,
            "generated": run.generated,
            "attempted": run.attempted,
            **counts,
            "undelivered": left,
            "injected": dict(run.injected),
            "by_topic": dict(run.by_topic),
            "fraud_transactions": run.fraud,
            "elapsed_s": round(elapsed_s, 3),
            "throughput_per_s": round(counts["sent"] / elapsed_s, 1) if elapsed_s > 0 else 0.0,
        }

    def close(self, timeout_s: float = 30.0) -> None:
        self.sender.close(timeout_s)

    def __enter__(self) -> DataGenerationOrchestrator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _delta(now: Mapping[str, int], before: Mapping[str, int]) -> dict[str, int]:
    return {k: now[k] - before.get(k, 0) for k in COUNT_KEYS}
