"""``kafka-reliable spool``: look into the local spool, drain it to Kafka, deal with quarantine.

The spool holds records that could reach neither their topic nor a companion topic (cluster
down, or undelivered at close), and, quarantined, records Kafka can never take (too big for
every limit, an illegal topic). A producer drains it by itself when the cluster answers and
at its next start; these verbs let an operator see what is there, drain it without starting
the application, export what is quarantined and purge it once dealt with.
Reading verbs never create a spool file.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from kafka_reliable.cli.common import client_conf, connection_parent, positive_float
from kafka_reliable.spool import Spool, default_spool_path

#: Exit code when records are left in the spool after a drain (or quarantined ones exist).
EXIT_NOT_EMPTY = 1


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    spool = sub.add_parser("spool", help="inspect, drain, export and purge the local spool")
    verbs = spool.add_subparsers(dest="spool_verb", metavar="VERB", required=True)
    path_help = f"the spool file (default: {default_spool_path()})"
    status = verbs.add_parser("status", help="records in the spool, by topic and reason; quarantined ones")
    status.add_argument("--spool-path", type=Path, default=None, help=path_help)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=_status)
    drain = verbs.add_parser("drain", help="send spooled records to Kafka (oldest first) until empty",
                             parents=[connection_parent()])
    drain.add_argument("--spool-path", type=Path, default=None, help=path_help)
    drain.add_argument("--timeout-s", type=positive_float, default=120.0,
                       help="give up after this long (exit 1 when records are left)")
    drain.set_defaults(func=_drain)
    export = verbs.add_parser("export", help="write spool rows as JSON lines (bytes in base64)")
    export.add_argument("--spool-path", type=Path, default=None, help=path_help)
    export.add_argument("--quarantined", action="store_true", help="only the quarantined rows")
    export.add_argument("--output", "-o", type=Path, default=None, help="file to write (default: stdout)")
    export.set_defaults(func=_export)
    purge = verbs.add_parser("purge", help="delete quarantined rows (after exporting them)")
    purge.add_argument("--spool-path", type=Path, default=None, help=path_help)
    purge.add_argument("--quarantined", action="store_true", required=True,
                       help="delete the quarantined rows (required: the only rows purge deletes)")
    purge.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    purge.set_defaults(func=_purge)


def _open(path: Path | None) -> Spool:
    return Spool(path, create=False)


def _status(args: argparse.Namespace) -> int:
    spool = _open(args.spool_path)
    try:
        info = spool.summary()
        quarantined = spool.quarantined(limit=20)
    finally:
        spool.close()
    if args.json:
        print(json.dumps(info))
        return 0
    oldest = info["oldest_spooled_at_ms"]
    when = datetime.fromtimestamp(oldest / 1000, UTC).isoformat() if isinstance(oldest, int) else "-"
    console = Console()
    console.print(f"spool {info['path']}: {info['records']} records (oldest spooled {when}), "
                  f"{info['quarantined']} quarantined")
    if info["records"]:
        table = Table("topic", "records")
        for topic, n in sorted(info["by_topic"].items()):  # type: ignore[attr-defined]
            table.add_row(topic, str(n))
        console.print(table)
        console.print("reasons: " + ", ".join(f"{r} {n}" for r, n in info["by_reason"].items()))  # type: ignore[attr-defined]
    if quarantined:
        q = Table("row", "message id", "topic", "bytes", "why it can never be delivered", title="quarantined")
        for r in quarantined:
            q.add_row(str(r.row_id), r.message_id or "-", r.topic, str(r.size_bytes), r.quarantine_reason or "-")
        console.print(q)
        console.print("export them with `kafka-reliable spool export --quarantined`, then "
                      "`kafka-reliable spool purge --quarantined`")
    return 0


def _drain(args: argparse.Namespace) -> int:
    from kafka_reliable.producer import ReliableKafkaProducer

    _open(args.spool_path).close()  # a missing spool is an error, not a new empty file
    conf = client_conf(args)
    bootstrap = conf.pop("bootstrap.servers")
    deadline = time.monotonic() + args.timeout_s
    producer = ReliableKafkaProducer(bootstrap_servers=bootstrap, producer_config=conf,
                                     spool_path=args.spool_path, enable_metrics=False,
                                     maintenance_interval_s=3600.0)
    try:
        total = producer.spool.count(include_quarantined=False)
        quarantined_before = producer.spool.summary()["quarantined"]
        columns = (TextColumn("draining spool"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("drain", total=total)
            while producer.spool.count(include_quarantined=False) and time.monotonic() < deadline:
                producer.drain_spool(timeout_s=max(0.1, min(5.0, deadline - time.monotonic())))
                bar.update(task, completed=total - producer.spool.count(include_quarantined=False))
                if producer.spool.count(include_quarantined=False):
                    time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
        producer.flush(max(0.1, min(5.0, deadline - time.monotonic())))
        left = producer.spool.count(include_quarantined=False)
        quarantined = int(producer.spool.summary()["quarantined"]) - int(quarantined_before)  # type: ignore[call-overload]
    finally:
        producer.close(timeout=max(1.0, min(5.0, deadline - time.monotonic())))
    line = f"drained {total - left - quarantined} of {total} records"
    if left:
        line += f"; {left} left (cluster unreachable?)"
    if quarantined:
        line += f"; {quarantined} quarantined (see `kafka-reliable spool status`)"
    print(line)
    return EXIT_NOT_EMPTY if left else 0


def _export(args: argparse.Namespace) -> int:
    spool = _open(args.spool_path)
    try:
        if args.output is None:
            n = spool.export(sys.stdout, quarantined_only=args.quarantined)
        else:
            with args.output.open("w", encoding="utf-8") as out:
                n = spool.export(out, quarantined_only=args.quarantined)
    finally:
        spool.close()
    print(f"exported {n} rows" + (f" to {args.output}" if args.output else ""), file=sys.stderr)
    return 0


def _purge(args: argparse.Namespace) -> int:
    spool = _open(args.spool_path)
    try:
        n = spool.summary()["quarantined"]
        if n and not args.yes:
            if not sys.stdin.isatty():
                print("kafka-reliable: error: purge deletes records for good; pass --yes", file=sys.stderr)
                return 2
            if input(f"delete {n} quarantined records from {spool.path}? [y/N] ").strip().lower() != "y":
                print("nothing deleted")
                return 0
        deleted = spool.purge(quarantined_only=True)
    finally:
        spool.close()
    print(f"purged {deleted} quarantined records")
    return 0
