"""Entry point of ``kafka-reliable``: finds the verb modules of this package and runs one."""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence

import kafka_reliable.cli as cli_pkg
from kafka_reliable import __version__
from kafka_reliable.errors import KafkaReliableError

#: Exit code for a usage or input error (argparse uses 2 as well).
EXIT_USAGE = 2
#: Exit code for an operational failure (broker unreachable, operation refused, …).
EXIT_FAILURE = 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kafka-reliable",
        description="Reliable producing to Apache Kafka: retry worker, DLQ tools, topics, health, "
        "data generator and a local dev broker.",
    )
    parser.add_argument("--version", action="version", version=f"kafka-reliable {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(cli_pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name in {"main", "common"}:
            continue
        module = importlib.import_module(f"{cli_pkg.__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        code = args.func(args)
    except KafkaReliableError as exc:
        print(f"kafka-reliable: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("kafka-reliable: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
