"""Running the worker as a process: its options, signals, exit codes.

Shared by ``kafka-reliable retry-worker`` (the CLI registers the verb with ``add_arguments`` and
``run``) and ``python -m kafka_reliable.worker`` (``main``). Exit codes: 0 after a graceful stop,
1 when the worker could not start or stopped on a fatal error, 2 for a usage or configuration
error.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
from collections.abc import Sequence
from types import FrameType
from typing import NoReturn

from kafka_reliable.config import redact_text
from kafka_reliable.errors import InputError, KafkaReliableError
from kafka_reliable.logs import LIBRDKAFKA_LOGGER, client_logger, flush_repeats
from kafka_reliable.worker.settings import DEFAULT_GROUP, DEFAULT_STARTUP_TIMEOUT_S, from_values
from kafka_reliable.worker.worker import RetryWorker

#: Environment variable with the log level of the worker's own lines (default INFO).
LOG_LEVEL_ENV = "KAFKA_RELIABLE_LOG_LEVEL"
EXIT_FAILURE, EXIT_USAGE = 1, 2

TOPICS_HELP = (
    "comma-separated SOURCE topics; the worker consumes <topic>.retry. A name that already ends in "
    "a companion suffix (orders.retry, orders.dlq) is refused (exit 2): name the source topic"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The worker's options. Unset options fall back to environment variables, then defaults."""
    p.add_argument(
        "--bootstrap-servers", help="Kafka bootstrap servers (env KAFKA_BOOTSTRAP_SERVERS)"
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--topics", help=TOPICS_HELP)
    src.add_argument(
        "--pattern",
        help="regex over source topic names; consumes every matching <topic>.retry "
        "(creates nothing)",
    )
    p.add_argument("--group", help=f"consumer group, not empty (default {DEFAULT_GROUP})")
    p.add_argument(
        "--create-topics",
        action="store_true",
        default=None,
        help="create <topic>.retry and <topic>.dlq even for a source topic that does not exist "
        "(default: companions are created only for existing source topics)",
    )
    p.add_argument(
        "--startup-timeout-s",
        type=float,
        help="give up (exit 1) when no broker answers within this "
        f"time at start (default {DEFAULT_STARTUP_TIMEOUT_S:g})",
    )
    p.add_argument(
        "--max-pending", type=int, help="look-ahead bound: records held in memory (default 10000)"
    )
    p.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on this port")
    p.add_argument(
        "--transactional",
        action="store_true",
        default=None,
        help="republish and commit offsets in one Kafka transaction (exactly-once hops)",
    )
    _retry_arguments(p)
    p.add_argument(
        "--kafka-config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="librdkafka setting (SASL, TLS, tuning), repeatable; prefix producer./consumer. "
        "for one client only (env KAFKA_RELIABLE_KAFKA_<KEY>); unknown keys are refused",
    )


def _retry_arguments(p: argparse.ArgumentParser) -> None:
    """The ``RetryConfig`` options."""
    p.add_argument("--max-retries", type=int, help="RetryConfig.max_retries (default 3)")
    p.add_argument(
        "--initial-delay-ms", type=int, help="RetryConfig.initial_delay_ms (default 100)"
    )
    p.add_argument("--max-delay-ms", type=int, help="RetryConfig.max_delay_ms (default 30000)")
    p.add_argument(
        "--backoff-multiplier", type=float, help="RetryConfig.backoff_multiplier (default 2.0)"
    )
    p.add_argument(
        "--jitter",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="RetryConfig.jitter (default on)",
    )


def run(args: argparse.Namespace) -> int:
    """Build the worker from the options and the environment; run it until SIGTERM/SIGINT.

    Raises ConfigurationError (an InputError) for bad options, WorkerError when it cannot start.
    """
    level = logging.getLevelName(os.environ.get(LOG_LEVEL_ENV, "INFO").upper())
    if isinstance(level, int) and logging.getLogger().getEffectiveLevel() > level:
        logging.getLogger("kafka_reliable").setLevel(level)  # state changes are INFO lines
    worker = RetryWorker(config=from_values(vars(args)))
    _install_signal_handlers(worker)
    _freeze_startup_objects()
    return worker.run()


def _freeze_startup_objects() -> None:
    """This process runs the worker alone: what start-up made (modules, classes, functions, ~30,000
    objects) leaves the collector's full collections, which rescanned it all and paused the worker
    for 10-40 ms on a busy 2-core machine (lateness p99). The library itself never touches
    ``gc``."""
    gc.collect()
    gc.freeze()


def _install_signal_handlers(worker: RetryWorker) -> None:
    """First SIGTERM/SIGINT: graceful stop. A second one: exit at once."""

    def handle(signum: int, _frame: FrameType | None) -> None:
        if worker.stopping:
            os._exit(128 + signum)
        logging.getLogger(__name__).info("signal %s: stopping", signal.Signals(signum).name)
        worker.stop()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


class _Parser(argparse.ArgumentParser):
    """A usage error never echoes a secret, whatever its separator (``config.redact_text``)."""

    def error(self, message: str) -> NoReturn:
        super().error(redact_text(message))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m kafka_reliable.worker``: the same as ``kafka-reliable retry-worker``."""
    parser = _Parser(
        prog="python -m kafka_reliable.worker",
        description="The kafka-reliable retry worker. Exit codes: 0 stopped, "
        "1 could not start or fatal error, 2 usage error.",
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=os.environ.get(LOG_LEVEL_ENV, "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    client_logger(LIBRDKAFKA_LOGGER)
    try:
        code, error = run(args), None
    except InputError as exc:
        code, error = EXIT_USAGE, str(exc)
    except KafkaReliableError as exc:
        code, error = EXIT_FAILURE, str(exc)
    flush_repeats()
    if error is not None:
        print(f"retry-worker: error: {error}", file=sys.stderr)
    return code
