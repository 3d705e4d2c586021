"""``kafka-reliable spool``: look into the local spool and drain it to Kafka.

The spool holds records that could reach neither their topic nor a companion topic (cluster
down, or undelivered at close). A producer drains it by itself when the cluster answers and at
its next start; these verbs let an operator see what is there and drain it without starting
the application.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from kafka_reliable.cli.common import client_conf, connection_parent
from kafka_reliable.spool import Spool, default_spool_path

EXIT_NOT_EMPTY = 1


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    spool = sub.add_parser("spool", help="inspect and drain the local spool (records Kafka could not take)")
    verbs = spool.add_subparsers(dest="spool_verb", metavar="VERB", required=True)
    status = verbs.add_parser("status", help="records in the spool, by topic and reason")
    status.add_argument("--spool-path", type=Path, default=None, help=f"default: {default_spool_path()}")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=_status)
    drain = verbs.add_parser("drain", help="send spooled records to Kafka (oldest first) until empty",
                             parents=[connection_parent()])
    drain.add_argument("--spool-path", type=Path, default=None, help=f"default: {default_spool_path()}")
    drain.add_argument("--timeout-s", type=float, default=120.0, help="give up after this long (exit 1)")
    drain.set_defaults(func=_drain)


def _status(args: argparse.Namespace) -> int:
    spool = Spool(args.spool_path)
    try:
        info = spool.summary()
    finally:
        spool.close()
    if args.json:
        print(json.dumps(info))
        return 0
    oldest = info["oldest_spooled_at_ms"]
    when = datetime.fromtimestamp(oldest / 1000, UTC).isoformat() if isinstance(oldest, int) else "-"
    console = Console()
    console.print(f"spool {info['path']}: {info['records']} records (oldest spooled {when})")
    table = Table("topic", "records")
    for topic, n in sorted(info["by_topic"].items()):  # type: ignore[attr-defined]
        table.add_row(topic, str(n))
    if info["records"]:
        console.print(table)
        console.print("reasons: " + ", ".join(f"{r} {n}" for r, n in info["by_reason"].items()))  # type: ignore[attr-defined]
    return 0


def _drain(args: argparse.Namespace) -> int:
    from kafka_reliable.producer import ReliableKafkaProducer

    conf = client_conf(args)
    bootstrap = conf.pop("bootstrap.servers")
    producer = ReliableKafkaProducer(bootstrap_servers=bootstrap, producer_config=conf,
                                     spool_path=args.spool_path, enable_metrics=False)
    deadline = time.monotonic() + args.timeout_s
    try:
        total = producer.spool.count()
        with Progress(TextColumn("draining spool"), BarColumn(), MofNCompleteColumn()) as bar:
            task = bar.add_task("drain", total=total)
            while producer.spool.count() and time.monotonic() < deadline:
                producer.drain_spool()
                bar.update(task, completed=total - producer.spool.count())
                if producer.spool.count():
                    time.sleep(1.0)
        left = producer.spool.count()
    finally:
        producer.close()
    print(f"drained {total - left} of {total} records" + (f"; {left} left (cluster unreachable?)" if left else ""))
    return EXIT_NOT_EMPTY if left else 0
