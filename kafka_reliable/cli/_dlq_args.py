"""Arguments of the ``kafka-reliable dlq`` verbs (registered by :mod:`kafka_reliable.cli.dlq`)."""

from __future__ import annotations

import argparse

from kafka_reliable.cli.common import topic_name
from kafka_reliable.dlq.replay import DEFAULT_MAX_REPLAYS

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


def group_arg(p: argparse.ArgumentParser) -> None:
    """``--group``, which every ``dlq`` verb takes."""
    p.add_argument(
        "--group",
        metavar="GROUP",
        help="a consumer group: TOPIC's DLQ of that group, TOPIC.GROUP.dlq (ReliableConsumer)",
    )


def filters(p: argparse.ArgumentParser) -> None:
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


def stats_args(p: argparse.ArgumentParser) -> None:
    """Arguments of ``dlq stats``."""
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


def list_args(p: argparse.ArgumentParser) -> None:
    """Arguments of ``dlq list``."""
    p.add_argument("topic", metavar="TOPIC", type=topic_name)
    p.add_argument(
        "--limit", type=int, default=50, help="at most this many records (default %(default)s)"
    )
    filters(p)
    p.add_argument("--json", action="store_true", help="one JSON object per line")


def show_args(p: argparse.ArgumentParser) -> None:
    """Arguments of ``dlq show``."""
    p.add_argument("topic", metavar="TOPIC", type=topic_name)
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--offset", metavar="P:O", help="partition:offset in the DLQ topic")
    where.add_argument(
        "--message-id", metavar="ID", help="kafka_reliable.message.id (or Karafka trace id)"
    )
    p.add_argument("--json", action="store_true", help="one JSON object")


def replay_args(p: argparse.ArgumentParser) -> None:
    """Arguments of ``dlq replay``."""
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
    filters(p)
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


def purge_args(p: argparse.ArgumentParser) -> None:
    """Arguments of ``dlq purge``."""
    p.add_argument("topic", metavar="TOPIC", type=topic_name)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--before", metavar="TIME", help="delete records stamped before TIME")
    what.add_argument(
        "--all", action="store_true", help="delete every record up to the high watermark"
    )
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--json", action="store_true", help="result as one JSON object")
