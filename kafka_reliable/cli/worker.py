"""``kafka-reliable retry-worker``: the standalone retry worker (also ``python -m kafka_reliable.worker``)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from kafka_reliable.errors import KafkaReliableError
from kafka_reliable.worker import RetryWorker
from kafka_reliable.worker.settings import DEFAULT_GROUP, from_values

#: Environment variable with the log level of ``python -m kafka_reliable.worker`` (default INFO).
LOG_LEVEL_ENV = "KAFKA_RELIABLE_LOG_LEVEL"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The worker's options. Unset options fall back to environment variables, then defaults."""
    p.add_argument("--bootstrap-servers", help="Kafka bootstrap servers (env KAFKA_BOOTSTRAP_SERVERS)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--topics", help="comma-separated SOURCE topics; the worker consumes <topic>.retry")
    src.add_argument("--pattern", help="regex over source topic names; consumes every matching <topic>.retry")
    p.add_argument("--group", help=f"consumer group (default {DEFAULT_GROUP})")
    p.add_argument("--max-pending", type=int, help="look-ahead bound: records held in memory (default 10000)")
    p.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on this port")
    p.add_argument("--transactional", action="store_true", default=None,
                   help="republish and commit offsets in one Kafka transaction (exactly-once hops)")
    p.add_argument("--max-retries", type=int, help="RetryConfig.max_retries (default 3)")
    p.add_argument("--initial-delay-ms", type=int, help="RetryConfig.initial_delay_ms (default 100)")
    p.add_argument("--max-delay-ms", type=int, help="RetryConfig.max_delay_ms (default 30000)")
    p.add_argument("--backoff-multiplier", type=float, help="RetryConfig.backoff_multiplier (default 2.0)")
    p.add_argument("--jitter", action=argparse.BooleanOptionalAction, default=None,
                   help="RetryConfig.jitter (default on)")
    p.add_argument("--kafka-config", action="append", default=[], metavar="KEY=VALUE",
                   help="librdkafka setting (SASL, TLS, tuning), repeatable; prefix producer./consumer. "
                   "for one client only (env KAFKA_RELIABLE_KAFKA_<KEY>)")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("retry-worker", help="republish <topic>.retry records when due (never early, never lost)")
    add_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the worker from the options and the environment; run it until SIGTERM/SIGINT."""
    values = vars(args)
    level = logging.getLevelName(os.environ.get(LOG_LEVEL_ENV, "INFO").upper())
    if isinstance(level, int) and logging.getLogger().getEffectiveLevel() > level:
        logging.getLogger("kafka_reliable").setLevel(level)  # state changes are INFO lines
    worker = RetryWorker(config=from_values(values))
    _install_signal_handlers(worker)
    return worker.run()


def _install_signal_handlers(worker: RetryWorker) -> None:
    """First SIGTERM/SIGINT: graceful stop. A second one: exit at once."""

    def handle(signum: int, _frame: FrameType | None) -> None:
        if worker.stopping:
            os._exit(128 + signum)
        logging.getLogger(__name__).info("signal %s: stopping", signal.Signals(signum).name)
        worker.stop()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m kafka_reliable.worker``: the same as ``kafka-reliable retry-worker``."""
    parser = argparse.ArgumentParser(prog="python -m kafka_reliable.worker",
                                     description="The kafka-reliable retry worker.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get(LOG_LEVEL_ENV, "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return run(args)
    except KafkaReliableError as exc:
        print(f"retry-worker: error: {exc}", file=sys.stderr)
        return 1
