"""Entry point of ``kafka-reliable``: finds the verb modules of this package and runs one."""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
import traceback
from collections.abc import Sequence
from typing import Any, NoReturn

import kafka_reliable.cli as cli_pkg
from kafka_reliable import __version__
from kafka_reliable.config import redact_text
from kafka_reliable.errors import InputError, KafkaReliableError
from kafka_reliable.logs import LIBRDKAFKA_LOGGER, client_logger, flush_repeats

#: Exit code for a usage or input error (argparse uses 2 as well).
EXIT_USAGE = 2
#: Exit code for an operational failure (broker unreachable, operation refused, …).
EXIT_FAILURE = 1
#: Log level by verbosity (-q -q … -v -v).
_LEVELS = {
    -2: logging.CRITICAL,
    -1: logging.ERROR,
    0: logging.WARNING,
    1: logging.INFO,
    2: logging.DEBUG,
}

_EPILOG = """\
exit codes: 0 success, 1 operational failure (cluster unreachable, operation refused),
2 usage error (bad argument or configuration); some verbs add their own (see COMMAND --help).
librdkafka's log lines go through Python logging, repeated lines counted rather than shown,
one level quieter than ours: default warnings (librdkafka: errors), -v info (librdkafka:
warnings), -vv debug, -q errors only (none of librdkafka's), -qq nothing but the final error."""


class _Parser(argparse.ArgumentParser):
    """argparse, except that a usage error never echoes a secret (``key=value``, ``key:value``,
    ``key value``: argparse repeats unrecognized arguments)."""

    def error(self, message: str) -> NoReturn:
        super().error(redact_text(message))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="kafka-reliable",
        description="Reliable producing to Apache Kafka: retry worker, DLQ tools, topics, health, "
        "data generator and a local dev broker.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"kafka-reliable {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)"
    )
    parser.add_argument(
        "-q", "--quiet", action="count", default=0, help="less log output (-qq: none)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(cli_pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name in {"main", "common"}:
            continue
        module = importlib.import_module(f"{cli_pkg.__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def _level(verbosity: int) -> int:
    return _LEVELS[max(-2, min(2, verbosity))]


def setup_logging(verbosity: int) -> None:
    """Levels from ``-v``/``-q``: ours, and librdkafka's one step quieter (its connection
    errors are in the verb's own one-line error already); its lines go through the dedup filter."""
    level = _level(verbosity)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(level)
    client_logger(LIBRDKAFKA_LOGGER).setLevel(_level(verbosity - 1))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    verbosity = args.verbose - args.quiet
    setup_logging(verbosity)
    code, error = _run(args, verbosity)
    flush_repeats()  # repeat counts first, so the error stays the last line
    if error is not None:
        print(f"kafka-reliable: error: {error}", file=sys.stderr)
    return code


def _run(args: argparse.Namespace, verbosity: int) -> tuple[int, str | None]:
    try:
        return int(args.func(args) or 0), None
    except InputError as exc:
        return EXIT_USAGE, str(exc)
    except KafkaReliableError as exc:
        return EXIT_FAILURE, str(exc)
    except KeyboardInterrupt:
        return 130, "interrupted"
    except Exception as exc:  # noqa: BLE001 - one line for the user; the traceback with -vv
        if verbosity >= 2:
            traceback.print_exc()
        return EXIT_FAILURE, f"{_describe(exc)} (run with -vv for the traceback)"


def _describe(exc: BaseException) -> str:
    """``KafkaException`` prints its KafkaError's repr; show the error's own text instead."""
    err: Any = exc.args[0] if exc.args else None
    if hasattr(err, "str") and hasattr(err, "name"):
        return f"Kafka: {err.name()}: {err.str()}"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
