"""``kafka-reliable generate``: stream a scenario of e-commerce traffic to Kafka.

Exit 0 when every record was delivered or routed (``.retry`` / ``.dlq`` / spool count as
routed), 1 when records were still undelivered at the end or the cluster could not be
reached (within ``--timeout-s``), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import re

from kafka_reliable.cli.common import (
    DEFAULT_CONNECT_TIMEOUT_S,
    bootstrap_servers,
    connect_admin,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    redis_url,
)
from kafka_reliable.config import redact_url
from kafka_reliable.datagen.scenarios import SCENARIOS
from kafka_reliable.logs import client_logger

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_HOURS = {"": 1.0, "h": 1.0, "m": 1 / 60, "s": 1 / 3600, "d": 24.0}


def parse_duration_hours(text: str) -> float:
    """``1.5`` (hours), ``90m``, ``30s``, ``2h``, ``1d`` -> hours."""
    m = _DURATION_RE.match(text)
    if not m or float(m.group(1)) <= 0:
        raise argparse.ArgumentTypeError(
            f"bad duration {text!r}: use hours (1.5) or 30s / 90m / 2h / 1d"
        )
    return float(m.group(1)) * _UNIT_HOURS[m.group(2)]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "generate",
        help="stream simulated e-commerce traffic (a scenario) to Kafka",
        epilog="exit codes: 0 all delivered or routed, "
        "1 undelivered records or cluster unreachable, "
        "2 bad arguments",
        description="Generate seeded e-commerce traffic "
        "(sessions, transactions, catalogue updates) and "
        "stream it through the reliable producer. Scenarios: "
        + "; ".join(f"{s.name}: {s.description}" for s in SCENARIOS.values()),
    )
    _traffic_args(p)
    _connection_args(p)
    _output_args(p)
    p.set_defaults(func=run)


def _traffic_args(p: argparse.ArgumentParser) -> None:
    """``--scenario``, ``--duration``, ``--speed``: what to simulate and how fast."""
    p.add_argument("--scenario", choices=sorted(SCENARIOS), default="normal_traffic")
    p.add_argument(
        "--duration",
        type=parse_duration_hours,
        default=parse_duration_hours("10m"),
        help="simulated time: hours (0.5) or 30s/10m/2h/1d (default 10m)",
    )
    p.add_argument(
        "--speed",
        type=non_negative_float,
        default=60.0,
        help="simulated seconds per wall second; 0 = as fast as possible (default 60)",
    )


def _connection_args(p: argparse.ArgumentParser) -> None:
    """Where the records go: cluster, Redis for deduplication, format and registry."""
    p.add_argument(
        "--bootstrap-servers",
        type=bootstrap_servers,
        default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092"),
    )
    p.add_argument(
        "--timeout-s",
        type=positive_float,
        default=DEFAULT_CONNECT_TIMEOUT_S,
        help="how long to wait for the cluster's first answer (default %(default)g); "
        "a cluster whose brokers all refuse is reported at once",
    )
    p.add_argument(
        "--redis-url",
        type=redis_url,
        default=os.environ.get("REDIS_URL"),
        help="Redis for deduplication (default $REDIS_URL; in-memory when unset)",
    )
    p.add_argument(
        "--format",
        choices=("avro", "json"),
        default="avro",
        help="avro: single-object encoding (Confluent framing with --registry-url)",
    )
    p.add_argument(
        "--registry-url", default=None, help="schema registry for the Confluent wire format"
    )


def _output_args(p: argparse.ArgumentParser) -> None:
    """Seed, start time, topics, limits and the producer to use."""
    p.add_argument(
        "--seed", type=int, default=None, help="same seed and --start-ms give the same records"
    )
    p.add_argument(
        "--start-ms",
        type=non_negative_int,
        default=None,
        help="simulated start time (epoch ms >= 0; default now)",
    )
    p.add_argument(
        "--topic-prefix", default="", help="prefix of transactions/user-events/product-updates"
    )
    p.add_argument(
        "--partitions",
        type=positive_int,
        default=3,
        help="partitions of topics created (default 3)",
    )
    p.add_argument(
        "--max-records", type=positive_int, default=None, help="stop after this many records"
    )
    p.add_argument(
        "--transaction-schema",
        type=int,
        choices=(1, 2),
        default=1,
        help="write transactions with schema v1 or v2 (v2 adds sales_channel, risk_score)",
    )
    p.add_argument(
        "--raw", action="store_true", help="plain confluent-kafka producer (no retry/DLQ/dedup)"
    )
    p.add_argument(
        "--no-dedup", action="store_true", help="reliable producer without deduplication"
    )
    p.add_argument(
        "--json", action="store_true", help="print the summary as JSON (no progress display)"
    )


def run(args: argparse.Namespace) -> int:
    from kafka_reliable.datagen.orchestrator import DataGenerationOrchestrator

    logger = client_logger()
    connect_admin({"bootstrap.servers": args.bootstrap_servers, "logger": logger}, args.timeout_s)
    redis_client = None
    if args.redis_url and not args.raw and not args.no_dedup:
        import redis

        redis_client = redis.Redis.from_url(args.redis_url)
    orch = DataGenerationOrchestrator(
        use_reliable_producer=not args.raw,
        redis_client=redis_client,
        bootstrap_servers=args.bootstrap_servers,
        topic_prefix=args.topic_prefix,
        serialization=args.format,
        registry_url=args.registry_url,
        seed=args.seed,
        start_ms=args.start_ms,
        enable_deduplication=not args.no_dedup,
        partitions=args.partitions,
        show_progress=not args.json,
        transaction_schema_version=args.transaction_schema,
        producer_config={"logger": logger},
    )
    try:
        summary = orch.run_scenario(
            args.scenario,
            duration_hours=args.duration,
            speed=args.speed,
            max_records=args.max_records,
        )
    finally:
        orch.close()
    if args.json:
        summary["redis_url"] = redact_url(args.redis_url) if redis_client is not None else None
        print(json.dumps(summary))
    return 1 if summary["undelivered"] else 0
