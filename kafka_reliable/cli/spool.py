"""``kafka-reliable spool``: look into the local spool, drain it to Kafka, deal with quarantine.

One place for everything kept on local disk: records in flight in producers' write-ahead
logs (``<spool>.inflight/``: owner alive, or dead and waiting to be sent again), records
spooled because they could reach neither their topic nor a companion topic, and, quarantined,
records Kafka can never take. A producer drains the spool by itself when the cluster answers
and takes over dead producers' logs at its start; these verbs let an operator see what is
there, drain it without starting the application (taking over dead producers' logs first,
never a live one's), export it and purge what is quarantined once dealt with.
Reading verbs never create a spool file.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from kafka_reliable.cli.common import client_conf, connection_parent, positive_float
from kafka_reliable.record import OutgoingRecord
from kafka_reliable.spool import Spool, default_spool_path
from kafka_reliable.wal import OwnerLog, inspect, wal_root

#: Exit code when records are left in the spool after a drain (or quarantined ones exist).
EXIT_NOT_EMPTY = 1
#: Exit code when a destructive verb was refused for want of ``--yes`` (as ``dlq purge``).
EXIT_NOT_CONFIRMED = 4


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    spool = sub.add_parser("spool", help="inspect, drain, export and purge the local spool")
    verbs = spool.add_subparsers(dest="spool_verb", metavar="VERB", required=True)
    path_help = f"the spool file (default: {default_spool_path()})"
    status = verbs.add_parser(
        "status", help="records in the spool, by topic and reason; quarantined ones"
    )
    status.add_argument("--spool-path", type=Path, default=None, help=path_help)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=_status)
    drain = verbs.add_parser(
        "drain",
        help="send spooled records to Kafka (oldest first) until empty",
        parents=[connection_parent()],
    )
    drain.add_argument("--spool-path", type=Path, default=None, help=path_help)
    drain.add_argument(
        "--timeout-s",
        type=positive_float,
        default=120.0,
        help="give up after this long (exit 1 when records are left)",
    )
    drain.set_defaults(func=_drain)
    export = verbs.add_parser("export", help="write spool rows as JSON lines (bytes in base64)")
    export.add_argument("--spool-path", type=Path, default=None, help=path_help)
    export.add_argument("--quarantined", action="store_true", help="only the quarantined rows")
    export.add_argument(
        "--output", "-o", type=Path, default=None, help="file to write (default: stdout)"
    )
    export.set_defaults(func=_export)
    purge = verbs.add_parser("purge", help="delete quarantined rows (after exporting them)")
    purge.add_argument("--spool-path", type=Path, default=None, help=path_help)
    purge.add_argument(
        "--quarantined",
        action="store_true",
        required=True,
        help="delete the quarantined rows (required: the only rows purge deletes)",
    )
    purge.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    purge.set_defaults(func=_purge)


def _open(path: Path | None) -> Spool:
    return Spool(path, create=False)


def _in_flight(path: Path) -> tuple[dict[str, object], list[OwnerLog]]:
    """Producers' write-ahead logs beside the spool: records in flight per owner."""
    owners = inspect(wal_root(path))
    info = {
        "records": sum(len(o.records) for o in owners),
        "of_dead_owners": sum(len(o.records) for o in owners if not o.alive),
        "owners": [
            {
                "owner": o.owner,
                "pid": o.pid,
                "alive": o.alive,
                "records": len(o.records),
                "bytes": o.bytes_on_disk,
                "problems": o.problems,
            }
            for o in owners
        ],
    }
    return info, owners


def _status(args: argparse.Namespace) -> int:
    spool = _open(args.spool_path)
    try:
        info = spool.summary()
        quarantined = spool.quarantined(limit=20)
    finally:
        spool.close()
    in_flight, owners = _in_flight(spool.path)
    info["write_ahead_log"] = in_flight
    if args.json:
        print(json.dumps(info))
        return 0
    oldest = info["oldest_spooled_at_ms"]
    when = (
        datetime.fromtimestamp(oldest / 1000, UTC).isoformat() if isinstance(oldest, int) else "-"
    )
    console = Console()
    console.print(
        f"spool {info['path']}: {info['records']} records (oldest spooled {when}), "
        f"{info['quarantined']} quarantined"
    )
    if info["records"]:
        table = Table("topic", "records")
        for topic, n in sorted(info["by_topic"].items()):  # type: ignore[attr-defined]
            table.add_row(topic, str(n))
        console.print(table)
        console.print("reasons: " + ", ".join(f"{r} {n}" for r, n in info["by_reason"].items()))  # type: ignore[attr-defined]
    if quarantined:
        _print_quarantined(console, quarantined)
    _print_owners(console, owners)
    return 0


def _print_quarantined(console: Console, quarantined: list[OutgoingRecord]) -> None:
    q = Table(
        "row",
        "message id",
        "topic",
        "bytes",
        "why it can never be delivered",
        title="quarantined",
    )
    for r in quarantined:
        q.add_row(
            str(r.row_id),
            r.message_id or "-",
            r.topic,
            str(r.size_bytes),
            r.quarantine_reason or "-",
        )
    console.print(q)
    console.print(
        "export them with `kafka-reliable spool export --quarantined`, then "
        "`kafka-reliable spool purge --quarantined`"
    )


def _print_owners(console: Console, owners: list[OwnerLog]) -> None:
    if not owners:
        console.print("in flight: none (no producer's write-ahead log holds records)")
        return
    t = Table(
        "owner",
        "pid",
        "state",
        "records in flight",
        "bytes",
        "problems",
        title="in flight (write-ahead logs)",
    )
    for o in owners:
        state = "alive" if o.alive else "dead: sent again by the next producer or `spool drain`"
        t.add_row(
            o.owner,
            str(o.pid or "-"),
            state,
            str(len(o.records)),
            str(o.bytes_on_disk),
            "; ".join(o.problems) or "-",
        )
    console.print(t)


def _drain(args: argparse.Namespace) -> int:
    from kafka_reliable.producer import ReliableKafkaProducer

    _open(args.spool_path).close()  # a missing spool is an error, not a new empty file
    conf = client_conf(args)
    bootstrap = conf.pop("bootstrap.servers")
    deadline = time.monotonic() + args.timeout_s
    # The drain's own producer keeps no log (it sends rows that are on disk already); opening
    # it moves dead producers' in-flight records into the spool, never a live producer's.
    producer = ReliableKafkaProducer(
        bootstrap_servers=bootstrap,
        producer_config=conf,
        spool_path=args.spool_path,
        enable_metrics=False,
        maintenance_interval_s=3600.0,
        durability="memory",
    )
    try:
        missing = _missing_topics(producer, bootstrap, conf)
        total = producer.spool.count(include_quarantined=False)
        quarantined_before = producer.spool.summary()["quarantined"]
        columns = (
            TextColumn("draining spool"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
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
    print(_drain_line(total, left, quarantined, missing))
    return EXIT_NOT_EMPTY if left else 0


def _drain_line(total: int, left: int, quarantined: int, missing: set[str]) -> str:
    line = f"drained {total - left - quarantined} of {total} records"
    if left and missing:
        line += (
            f"; {left} left: topic(s) {', '.join(sorted(missing))} "
            "do not exist on the cluster and are "
            "not created by a drain "
            "(create them, e.g. `kafka-reliable topics ensure`, and drain again)"
        )
    elif left:
        line += f"; {left} left (the cluster did not acknowledge them within --timeout-s)"
    if quarantined:
        line += f"; {quarantined} quarantined (see `kafka-reliable spool status`)"
    return line


def _missing_topics(producer: object, bootstrap: str, conf: dict[str, Any]) -> set[str]:
    """Topics of spooled rows that the cluster does not have (a drain cannot deliver those)."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    wanted = set(producer.spool.summary()["by_topic"])  # type: ignore[attr-defined]
    if not wanted:
        return set()
    try:
        md = AdminClient({"bootstrap.servers": bootstrap, **conf}).list_topics(timeout=5)
    except KafkaException:
        return set()
    return wanted - set(md.topics)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False


def _export(args: argparse.Namespace) -> int:
    path = args.spool_path or default_spool_path()
    if args.output is not None and any(
        _same_file(args.output, Path(f"{path}{sfx}")) for sfx in ("", "-wal", "-shm")
    ):
        print(
            f"kafka-reliable: error: --output {args.output} is the spool itself; "
            "choose another file",
            file=sys.stderr,
        )
        return 2
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
                print(
                    "kafka-reliable: error: refusing: stdin is not a terminal "
                    "and purge deletes records "
                    "for good; pass --yes",
                    file=sys.stderr,
                )
                return EXIT_NOT_CONFIRMED
            if (
                input(f"delete {n} quarantined records from {spool.path}? [y/N] ").strip().lower()
                != "y"
            ):
                print("nothing deleted")
                return 0
        deleted = spool.purge(quarantined_only=True)
    finally:
        spool.close()
    print(f"purged {deleted} quarantined records")
    return 0
