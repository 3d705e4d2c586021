"""``kafka-reliable dlq``: stats, list, show, replay and purge DLQ topics of any dialect."""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from confluent_kafka import KafkaException
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.prompt import Confirm

from kafka_reliable.cli import _dlq_render as render
from kafka_reliable.cli.common import (
    DEFAULT_CONNECT_TIMEOUT_S,
    ClusterUnreachableError,
    client_conf,
    connect_admin,
    connection_parent,
    topic_name,
)
from kafka_reliable.dlq import (
    DeadLetterQueue,
    DlqError,
    DlqFilter,
    ReplayOptions,
    ReplayResult,
    ReplayTargetError,
    Resolved,
    parse_time,
)
from kafka_reliable.dlq.reader import Offsets
from kafka_reliable.dlq.replay import DEFAULT_MAX_REPLAYS
from kafka_reliable.errors import ConfigurationError
from kafka_reliable.logs import flush_repeats

EXIT_OK = 0
#: Kafka or operational failure (broker unreachable, delete or replay failed).
EXIT_FAILURE = 1
#: Bad arguments (unknown option, bad TIME, bad P:O).
EXIT_USAGE = 2
#: The DLQ topic, the record or the --to-topic target does not exist.
EXIT_NOT_FOUND = 3
#: Not confirmed: declined at the prompt, or stdin is not a terminal and --yes is missing.
EXIT_NOT_CONFIRMED = 4
#: Replay finished but refused records (loop guard, no original topic).
EXIT_REFUSED = 5
#: Partial replay: records whose target is illegal, missing or refused them were skipped (listed).
EXIT_PARTIAL = 6
#: Interrupted (Ctrl-C / SIGTERM); a replay resumes where it stopped when run again.
EXIT_INTERRUPTED = 130

EPILOG = """\
TOPIC is a source topic or a DLQ topic name. For a source topic the DLQ is looked up as
orders.dlq first, then the names other tools use: orders-dlt, orders.DLT, orders-dlq (the
one used is said on stderr and in --json "resolved"). With --group G it is the consumer
group's DLQ orders.G.dlq (a ReliableConsumer's). Any DLQ topic name works as is (orders.dlq,
a Spring orders-dlt, a Connect dlq-orders, a share group's dlq.orders, ...). Records written
by kafka-reliable, Spring Kafka, Kafka Connect, Kafka Streams, Karafka, Kafka share groups
(KIP-1191) and Schema Registry DLQ rule actions are understood; others are listed as raw. A
header that cannot be decoded is noted ("undecodable: ...") and the record still listed.
TIME is ISO-8601 (2024-05-01T12:00:00Z; no offset = UTC), an age (30m, 2h, 7d, 1w) or epoch ms.
--since/--until compare the failure time when the writer recorded one (kafka-reliable), else
the DLQ record's timestamp; Kafka Connect keeps the ORIGINAL record's timestamp there and
writes no failure time, so for its records they filter on the original timestamp.

exit codes:
  0    success
  1    Kafka or operational failure
  2    usage error (bad option, TIME or P:O)
  3    not found: the DLQ topic, the record, or the --to-topic target
  4    not confirmed (answered no, or stdin is not a terminal and --yes is missing)
  5    replay done, but some records were refused (loop guard: --force; no target: --to-topic;
       cannot be resent as is: headers-only share-group records (--from-source), undecodable
       or Schema Registry non-READ records (--to-topic), originals no longer retained)
  6    partial replay: records whose target is illegal, missing or refused them were skipped
       (listed with partition:offset, message id, target and reason; progress moved past them)
  130  interrupted; run the same replay again to resume
"""


def _filters(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--error",
        action="append",
        default=[],
        metavar="NAME",
        help="error class (full or simple name) or error code; repeatable",
    )
    p.add_argument(
        "--since",
        metavar="TIME",
        help="failed at or after TIME "
        "(failure time; for Kafka Connect records: original timestamp)",
    )
    p.add_argument(
        "--until",
        metavar="TIME",
        help="failed before TIME (failure time; for Kafka Connect records: original timestamp)",
    )
    p.add_argument("--key", help="record key (UTF-8) equals KEY")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    dlq = sub.add_parser(
        "dlq",
        help="inspect, replay and purge dead letter queues",
        epilog=EPILOG,
        formatter_class=fmt,
        description="Inspect, replay and purge dead letter queues.",
    )
    verbs = dlq.add_subparsers(dest="dlq_command", metavar="VERB", required=True)
    common = connection_parent()

    def verb(
        name: str, help_: str, func: Callable[[argparse.Namespace], int]
    ) -> argparse.ArgumentParser:
        p = verbs.add_parser(
            name,
            help=help_,
            description=help_,
            parents=[common],
            epilog=EPILOG,
            formatter_class=fmt,
        )
        p.set_defaults(func=lambda a: _run(func, a))
        p.add_argument(
            "--group",
            metavar="GROUP",
            help="a consumer group: TOPIC's DLQ of that group, TOPIC.GROUP.dlq (ReliableConsumer)",
        )
        return p

    p = verb("stats", "sizes, source topics, error classes and ages of one DLQ or of all", _stats)
    p.add_argument(
        "topic",
        nargs="?",
        metavar="TOPIC",
        type=topic_name,
        help="one DLQ (default: every *.dlq / *-dlt / *.DLT topic)",
    )
    p.add_argument(
        "--scan-limit", type=int, default=100_000, help="records read per DLQ for breakdowns"
    )
    p.add_argument("--json", action="store_true", help="one JSON object")

    p = verb("list", "list DLQ records with their error context (oldest first)", _list)
    p.add_argument("topic", metavar="TOPIC", type=topic_name)
    p.add_argument(
        "--limit", type=int, default=50, help="at most this many records (default %(default)s)"
    )
    _filters(p)
    p.add_argument("--json", action="store_true", help="one JSON object per line")

    p = verb("show", "one DLQ record in full: headers, error, stack trace, value", _show)
    p.add_argument("topic", metavar="TOPIC", type=topic_name)
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--offset", metavar="P:O", help="partition:offset in the DLQ topic")
    where.add_argument(
        "--message-id", metavar="ID", help="kafka_reliable.message.id (or Karafka trace id)"
    )
    p.add_argument("--json", action="store_true", help="one JSON object")

    p = verb(
        "replay",
        "re-publish DLQ records to their original topic, or a consumer group's record to the "
        "group's retry topic, due now (resumable, rate-limited)",
        _replay,
    )
    p.add_argument("topic", metavar="TOPIC", type=topic_name)
    p.add_argument("--max-messages", type=int, help="replay at most this many records in this run")
    p.add_argument("--rate", type=float, help="at most this many records per second (> 0)")
    p.add_argument(
        "--to-topic", help="target topic instead of the original topic (or the group's retry topic)"
    )
    p.add_argument(
        "--from-source",
        action="store_true",
        help="resend the original record re-read from its topic/partition/offset (if still "
        "retained) instead of the DLQ copy; needed for headers-only share-group records",
    )
    _filters(p)
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="show what would be replayed, with a histogram of failure reasons",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help=f"replay records replayed {DEFAULT_MAX_REPLAYS}+ times already",
    )
    p.add_argument(
        "--max-replays",
        type=int,
        default=DEFAULT_MAX_REPLAYS,
        help="loop guard limit (default %(default)s)",
    )
    p.add_argument(
        "--progress-group",
        metavar="ID",
        help="replay progress group (default: derived from topic, filters and target)",
    )
    p.add_argument(
        "--at-least-once",
        action="store_true",
        help="no transactions (a crash may replay a chunk twice)",
    )
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--json", action="store_true", help="result as one JSON object")

    p = verb(
        "purge", "delete DLQ records (Kafka delete_records): all, or those before TIME", _purge
    )
    p.add_argument("topic", metavar="TOPIC", type=topic_name)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--before", metavar="TIME", help="delete records stamped before TIME")
    what.add_argument(
        "--all", action="store_true", help="delete every record up to the high watermark"
    )
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--json", action="store_true", help="result as one JSON object")


# ---- plumbing ----------------------------------------------------------------------------


class _Usage(Exception):
    pass


#: (option, attribute, smallest value allowed): numbers a verb refuses below the bound.
_BOUNDS = (
    ("--limit", "limit", 1),
    ("--scan-limit", "scan_limit", 0),
    ("--max-messages", "max_messages", 1),
    ("--max-replays", "max_replays", 0),
)


def _check_bounds(args: argparse.Namespace) -> None:
    for option, attr, low in _BOUNDS:
        value = getattr(args, attr, None)
        if value is not None and value < low:
            raise _Usage(f"{option} must be >= {low}, got {value}")
    rate = getattr(args, "rate", None)
    if rate is not None and not 0 < rate < float("inf"):
        raise _Usage(f"--rate must be a number of records per second > 0, got {rate}")
    if getattr(args, "group", None) == "":
        raise _Usage("--group must not be empty")


def _run(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    try:
        _check_bounds(args)
        return func(args)
    except _Usage as exc:
        _err(f"error: {exc}")
        return EXIT_USAGE
    except ReplayTargetError as exc:
        _err(f"error: {exc}")
        return EXIT_NOT_FOUND if exc.missing else EXIT_USAGE
    except (DlqError, KafkaException, ClusterUnreachableError) as exc:
        _err(f"error: {exc}")
        return EXIT_FAILURE


def _err(text: str) -> None:
    """One line on stderr (never wrapped), after librdkafka's repeat counts (the error stays
    last)."""
    flush_repeats()
    print(f"kafka-reliable dlq: {text}", file=sys.stderr, flush=True)


def _dlq(args: argparse.Namespace) -> DeadLetterQueue:
    try:
        conf = client_conf(args)
    except ConfigurationError as exc:
        raise _Usage(str(exc)) from exc
    # one bounded first contact: an unreachable cluster or a protocol mismatch is one line at once
    admin = connect_admin(conf, DEFAULT_CONNECT_TIMEOUT_S)
    return DeadLetterQueue(
        conf=conf, admin=admin, max_replays=getattr(args, "max_replays", DEFAULT_MAX_REPLAYS)
    )


def _time(text: str | None, option: str) -> int | None:
    if text is None:
        return None
    try:
        return parse_time(text)
    except ValueError as exc:
        raise _Usage(f"{option}: {exc}") from None


def _filter(args: argparse.Namespace) -> DlqFilter:
    return DlqFilter(
        errors=tuple(args.error),
        since_ms=_time(args.since, "--since"),
        until_ms=_time(args.until, "--until"),
        key=args.key,
    )


def _resolve(d: DeadLetterQueue, args: argparse.Namespace) -> Resolved | None:
    """The DLQ topic of ``args.topic`` (and ``--group``); says on stderr which one it used."""
    try:
        r = d.resolve(args.topic, args.group)
    except ConfigurationError as exc:
        raise _Usage(str(exc)) from None
    if not r.exists:
        _err(r.missing)
        return None
    if r.note:
        _err(r.note)
    return r


def _confirm(args: argparse.Namespace, question: str) -> bool:
    if args.yes:
        return True
    if not sys.stdin.isatty():
        _err("refusing: stdin is not a terminal; pass --yes to confirm")
        return False
    return Confirm.ask(question, console=Console(stderr=True), default=False)


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, default=str), flush=True)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    )


@contextmanager
def _stop_on_signals() -> Iterator[Callable[[], bool]]:
    """SIGINT/SIGTERM ask the operation to stop at the next safe point."""
    flag: list[int] = []
    handler = lambda signum, frame: flag.append(signum)  # noqa: E731
    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield lambda: bool(flag)
    finally:
        for s, h in old.items():
            signal.signal(s, h)


# ---- verbs ---------------------------------------------------------------------------------


def _stats(args: argparse.Namespace) -> int:
    if args.topic is None and args.group is not None:
        raise _Usage("--group needs TOPIC (the source topic of the consumer group's DLQ)")
    d = _dlq(args)
    r = None
    if args.topic is not None and (r := _resolve(d, args)) is None:
        return EXIT_NOT_FOUND
    stats = d.stats(None if r is None else r.dlq_topic, scan_limit=args.scan_limit)
    if args.json:
        _print_json({**stats, "resolved": None if r is None else r.to_json()})
    else:
        render.stats_tables(Console(), stats)
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    flt = _filter(args)
    d = _dlq(args)
    r = _resolve(d, args)
    if r is None:
        return EXIT_NOT_FOUND
    messages = d.reader.list_messages(
        r.dlq_topic, limit=args.limit, flt=flt if flt != DlqFilter() else None
    )
    if args.json:
        for m in messages:
            _print_json(m.to_json())
    else:
        render.list_table(Console(), r.dlq_topic, messages)
    timed = flt.since_ms is not None or flt.until_ms is not None
    render.list_notes(Console(stderr=True, soft_wrap=True), messages, time_filtered=timed)
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    if args.offset is not None:
        p, sep, o = args.offset.partition(":")
        if not sep or not p.isdigit() or not o.isdigit():
            raise _Usage(f"--offset wants PARTITION:OFFSET, got {args.offset!r}")
    d = _dlq(args)
    r = _resolve(d, args)
    if r is None:
        return EXIT_NOT_FOUND
    name = r.dlq_topic
    if args.offset is not None:
        m = d.reader.show(name, partition=int(p), offset=int(o))
    else:
        m = d.reader.find(name, args.message_id)
    if m is None:
        _err(f"no record {args.offset or args.message_id} in {name}")
        return EXIT_NOT_FOUND
    if args.json:
        _print_json(m.to_json())
    else:
        render.show_message(Console(), m)
    return EXIT_OK


def _replay(args: argparse.Namespace) -> int:
    opts = ReplayOptions(
        max_messages=args.max_messages,
        rate_per_s=args.rate,
        to_topic=args.to_topic,
        filter=_filter(args),
        force=args.force,
        max_replays=args.max_replays,
        group_id=args.progress_group,
        transactional=not args.at_least_once,
        from_source=args.from_source,
    )
    d = _dlq(args)
    r = _resolve(d, args)
    if r is None:
        return EXIT_NOT_FOUND
    name, out = r.dlq_topic, Console()
    if args.dry_run or not args.yes:
        plan = d.replay(name, dataclasses.replace(opts, dry_run=True))
        if args.dry_run:
            if args.json:
                _print_json({**plan.to_json(), "resolved": r.to_json()})
            else:
                render.replay_summary(out, plan, dry_run=True)
            return _replay_code(plan)
        render.replay_summary(Console(stderr=True), plan, dry_run=True)
        if plan.replayed == 0:
            return _replay_code(plan)
        target = args.to_topic or (
            ", ".join(plan.by_target) if len(plan.by_target) <= 3 else "their original topics"
        )
        if not _confirm(args, f"Replay {plan.replayed} records from {name} to {target}?"):
            return EXIT_NOT_CONFIRMED
    result = _run_replay(d, name, opts)
    if args.json:
        _print_json({**result.to_json(), "resolved": r.to_json()})
    else:
        render.replay_summary(out, result, dry_run=False)
    if result.stopped == "stopped":
        _err(f"interrupted after {result.replayed} records; run the same command again to resume")
        return EXIT_INTERRUPTED
    return _replay_code(result)


def _replay_code(result: ReplayResult) -> int:
    if result.partial:
        return EXIT_PARTIAL
    return EXIT_REFUSED if result.refused else EXIT_OK


def _run_replay(d: DeadLetterQueue, name: str, opts: ReplayOptions) -> ReplayResult:
    with _stop_on_signals() as stop, _progress() as bar:
        task = bar.add_task(f"replaying {name}", total=opts.max_messages)

        def progress(r: ReplayResult) -> None:
            total = (
                r.pending_at_start
                if opts.max_messages is None
                else min(opts.max_messages, r.pending_at_start)
            )
            bar.update(task, completed=r.replayed, total=total)

        return d.replay(name, opts, should_stop=stop, progress=progress)


def _purge(args: argparse.Namespace) -> int:
    before_ms = _time(args.before, "--before")
    d = _dlq(args)
    r = _resolve(d, args)
    if r is None:
        return EXIT_NOT_FOUND
    name, m = r.dlq_topic, d.maintenance
    cuts = m.plan_clear(name) if args.all else m.plan_before(name, before_ms or 0)
    with Offsets(d.conf) as o:
        high = {p: hi for p, (_lo, hi) in o.watermarks(name).items()}
    total = render.cuts_table(Console(stderr=True), name, cuts, high)
    deleted = 0
    if total and _confirm(args, f"Delete {total} records from {name}? This cannot be undone"):
        with _progress() as bar:
            task = bar.add_task(f"purging {name}", total=total)
            deleted = m.delete(name, cuts, progress=lambda n: bar.advance(task, n))
    elif total:
        return EXIT_NOT_CONFIRMED
    if args.json:
        _print_json({"dlq_topic": name, "deleted": deleted, "resolved": r.to_json()})
    else:
        Console().print(f"{name}: deleted {deleted} records")
    return EXIT_OK
