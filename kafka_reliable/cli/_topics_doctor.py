"""``kafka-reliable topics doctor``: flag topic settings that can lose or stall records.

Exit 0 nothing found, 1 a finding (or the cluster could not be reached), 2 bad arguments,
3 a source topic given does not exist.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console
from rich.table import Table

from kafka_reliable.cli.common import (
    DEFAULT_CONNECT_TIMEOUT_S,
    client_conf,
    connect_admin,
    connection_parent,
    positive_float,
    suffix,
)
from kafka_reliable.config import TopicNaming
from kafka_reliable.dlq.timespec import parse_duration_ms
from kafka_reliable.errors import ConfigurationError
from kafka_reliable.topics_doctor import CHECKS, DEFAULT_NOTICE_MS, examine

EXIT_FINDING = 1
EXIT_NOT_FOUND = 3

_HELP = (
    "flag what can lose or stall records: replication factor 1, min.insync.replicas, companion "
    "topics missing or with fewer partitions, DLQ retention, max.message.bytes, compaction"
)


def _duration(text: str) -> int:
    try:
        return parse_duration_ms(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_verb(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = verbs.add_parser(
        "doctor",
        help=_HELP,
        description=_HELP.capitalize() + ".",
        parents=[connection_parent()],
        epilog="exit codes: 0 nothing found, 1 a finding or the cluster unreachable, "
        "2 bad arguments, 3 a source topic does not exist",
    )
    p.add_argument(
        "topics",
        nargs="*",
        metavar="TOPIC",
        help="source topic(s) (default: every topic with a .retry or .dlq companion)",
    )
    p.add_argument(
        "--notice-within",
        type=_duration,
        default=DEFAULT_NOTICE_MS,
        metavar="DURATION",
        help="time to notice a dead letter; a shorter DLQ retention is a finding (default 7d)",
    )
    p.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=CHECKS,
        metavar="CHECK",
        help=f"leave a check out (repeatable): {', '.join(CHECKS)}",
    )
    p.add_argument("--retry-suffix", type=suffix, default=".retry")
    p.add_argument("--dlq-suffix", type=suffix, default=".dlq")
    p.add_argument(
        "--timeout-s",
        type=positive_float,
        default=DEFAULT_CONNECT_TIMEOUT_S,
        help="how long to wait for each answer of the cluster (default %(default)g)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.set_defaults(func=_doctor)


def _doctor(args: argparse.Namespace) -> int:
    if args.retry_suffix == args.dlq_suffix:
        raise ConfigurationError(f"--retry-suffix and --dlq-suffix are both {args.dlq_suffix!r}")
    naming = TopicNaming(retry_suffix=args.retry_suffix, dlq_suffix=args.dlq_suffix)
    for topic in args.topics:
        if (source := naming.source_of(topic)) is not None:
            raise ConfigurationError(
                f"{topic} is itself a companion topic (of {source}); name the source topic"
            )
    conf = client_conf(args)
    admin = connect_admin(conf, args.timeout_s)
    report = examine(
        admin,
        args.topics or None,
        naming,
        timeout_s=args.timeout_s,
        notice_ms=args.notice_within,
        skip=args.skip,
    )
    findings = report["findings"]
    if args.json:
        print(
            json.dumps(
                {
                    "sources": report["sources"],
                    "missing": report["missing"],
                    "findings": [f.to_json() for f in findings],
                    "ok": not findings,
                }
            )
        )
    else:
        _table(report)
    if report["missing"]:
        return EXIT_NOT_FOUND
    return EXIT_FINDING if findings else 0


def _table(report: dict[str, Any]) -> None:
    console = Console()
    for name in report["missing"]:
        console.print(f"{name}: topic not found", markup=False, highlight=False)
    findings = report["findings"]
    if not findings:
        console.print(
            f"no findings for {len(report['sources'])} source topic(s): "
            f"{', '.join(report['sources']) or '(none with companions)'}",
            markup=False,
        )
        return
    t = Table(title=f"topics doctor: {len(findings)} finding(s)", title_justify="left")
    for col in ("source", "topic", "check", "finding"):
        t.add_column(col, overflow="fold")
    for f in findings:
        t.add_row(f.source, f.topic, f.check, f.message)
    console.print(t)
