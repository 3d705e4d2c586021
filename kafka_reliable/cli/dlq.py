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

from kafka_reliable.cli import _dlq_args as _args
from kafka_reliable.cli import _dlq_render as render
from kafka_reliable.cli.common import (
    DEFAULT_CONNECT_TIMEOUT_S,
    ClusterUnreachableError,
    client_conf,
    connect_admin,
    connection_parent,
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


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    dlq = sub.add_parser(
        "dlq",
        help="inspect, replay and purge dead letter queues",
        epilog=_args.EPILOG,
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
            epilog=_args.EPILOG,
            formatter_class=fmt,
        )
        p.set_defaults(func=lambda a: _run(func, a))
        _args.group_arg(p)
        return p

    p = verb("stats", "sizes, source topics, error classes and ages of one DLQ or of all", _stats)
    _args.stats_args(p)

    p = verb("list", "list DLQ records with their error context (oldest first)", _list)
    _args.list_args(p)

    p = verb("show", "one DLQ record in full: headers, error, stack trace, value", _show)
    _args.show_args(p)

    p = verb(
        "replay",
        "re-publish DLQ records to their original topic, or a consumer group's record to the "
        "group's retry topic, due now (resumable, rate-limited)",
        _replay,
    )
    _args.replay_args(p)

    p = verb(
        "purge", "delete DLQ records (Kafka delete_records): all, or those before TIME", _purge
    )
    _args.purge_args(p)


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
