"""``kafka-reliable retry-worker``: the standalone retry worker.

Also ``python -m kafka_reliable.worker``.

Options, signals and exit codes live in :mod:`kafka_reliable.worker.launch`; this module only
registers the verb.
"""

from __future__ import annotations

import argparse

from kafka_reliable.worker.launch import add_arguments, run

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "retry-worker",
        help="republish <topic>.retry records when due (never early, never lost)",
        description="Republish <topic>.retry records when due (never early, never lost). "
        "Exit codes: 0 stopped, 1 could not start (no broker answered within "
        "--startup-timeout-s) or fatal error, 2 usage error.",
    )
    add_arguments(p)
    p.set_defaults(func=run)
