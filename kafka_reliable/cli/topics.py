"""``kafka-reliable topics``: create and inspect the companion topics ``.retry`` / ``.dlq``.

Exit 0 done, 1 the cluster could not be reached or refused, 2 bad arguments, 3 a source
topic does not exist.
"""

from __future__ import annotations

import argparse
import json

from confluent_kafka import KafkaException
from rich.console import Console
from rich.table import Table

from kafka_reliable.cli import _topics_doctor
from kafka_reliable.cli.common import (
    DEFAULT_CONNECT_TIMEOUT_S,
    client_conf,
    connect_admin,
    connection_parent,
    kafka_message,
    positive_float,
    suffix,
    topic_name,
)
from kafka_reliable.config import DEFAULT_DLQ_RETENTION_MS, TopicNaming
from kafka_reliable.errors import ConfigurationError, KafkaReliableError
from kafka_reliable.topics import CompanionTopics

EXIT_NOT_FOUND = 3


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    topics = sub.add_parser(
        "topics",
        help="create and inspect companion topics (.retry, .dlq)",
        epilog="exit codes: 0 done, 1 cluster unreachable or refused, 2 bad arguments, "
        "3 a source topic does not exist",
    )
    verbs = topics.add_subparsers(dest="topics_verb", metavar="VERB", required=True)
    for name, helptext, func in (
        (
            "ensure",
            "create TOPIC.retry and TOPIC.dlq with TOPIC's partition count (no-op when present)",
            _ensure,
        ),
        ("status", "record counts of TOPIC and its companion topics", _status),
    ):
        p = verbs.add_parser(name, help=helptext, parents=[connection_parent()])
        p.add_argument(
            "topics", nargs="+", metavar="TOPIC", type=topic_name, help="source topic(s)"
        )
        p.add_argument("--retry-suffix", type=suffix, default=".retry")
        p.add_argument("--dlq-suffix", type=suffix, default=".dlq")
        p.add_argument(
            "--dlq-retention-ms",
            type=int,
            default=DEFAULT_DLQ_RETENTION_MS,
            help="retention of a new .dlq topic (default 14 days)",
        )
        p.add_argument(
            "--timeout-s",
            type=positive_float,
            default=DEFAULT_CONNECT_TIMEOUT_S,
            help="how long to wait for each answer of the cluster (default %(default)g); "
            "a cluster whose brokers all refuse is reported at once",
        )
        p.add_argument("--json", action="store_true", help="one JSON object per topic")
        p.set_defaults(func=func)
    _topics_doctor.add_verb(
        verbs
    )  # dialects helper: the doctor verb lives in cli/_topics_doctor.py


def _naming(args: argparse.Namespace) -> TopicNaming:
    if args.retry_suffix == args.dlq_suffix:
        raise ConfigurationError(
            f"--retry-suffix and --dlq-suffix are both {args.dlq_suffix!r}: retry and DLQ "
            "records would share one topic"
        )
    naming = TopicNaming(
        retry_suffix=args.retry_suffix,
        dlq_suffix=args.dlq_suffix,
        dlq_retention_ms=args.dlq_retention_ms,
    )
    for topic in args.topics:
        source = naming.source_of(topic)
        if source is not None:
            raise ConfigurationError(
                f"{topic} is itself a companion topic (of {source}); name the source topic"
            )
    return naming


def _companions(args: argparse.Namespace) -> CompanionTopics:
    """Checks every argument first, then connects (bounded by --timeout-s)."""
    naming = _naming(args)
    conf = client_conf(args)
    return CompanionTopics(conf, naming, admin=connect_admin(conf, args.timeout_s))


def _ensure(args: argparse.Namespace) -> int:
    ct = _companions(args)
    code = 0
    for topic in args.topics:
        n = ct.partitions(topic, args.timeout_s)
        if n is None:
            print(
                json.dumps({"topic": topic, "error": "not found"})
                if args.json
                else f"{topic}: topic not found"
            )
            code = EXIT_NOT_FOUND
            continue
        try:
            retry, dlq = ct.ensure(topic, args.timeout_s)
        except KafkaException as exc:
            raise KafkaReliableError(
                f"{topic}: could not create companion topics: {kafka_message(exc)}"
            ) from None
        if args.json:
            print(
                json.dumps(
                    {"topic": topic, "partitions": n, "retry_topic": retry, "dlq_topic": dlq}
                )
            )
        else:
            print(f"{topic}: {retry} and {dlq} ready ({n} partitions)")
    return code


def _status(args: argparse.Namespace) -> int:
    ct = _companions(args)
    rows = []
    for topic in args.topics:
        row: dict[str, object] = {"topic": topic}
        for kind, name in (
            ("records", topic),
            ("retry", ct.naming.retry_topic(topic)),
            ("dlq", ct.naming.dlq_topic(topic)),
        ):
            marks = ct.watermarks(name, args.timeout_s)
            row[kind] = sum(hi - lo for lo, hi in marks.values()) if marks else None
            if kind == "records":
                row["partitions"] = len(marks) if marks else None
        rows.append(row)
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    table = Table(title="topics and companion topics (records from watermarks)")
    for col in ("topic", "partitions", "records", "retry", "dlq"):
        table.add_column(col, justify="left" if col == "topic" else "right")
    for row in rows:
        table.add_row(
            *(
                "-" if row[c] is None else str(row[c])
                for c in ("topic", "partitions", "records", "retry", "dlq")
            )
        )
    Console().print(table)
    return 0
