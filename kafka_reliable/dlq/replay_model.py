"""What a DLQ replay is asked to do (``ReplayOptions``) and what it did (``ReplayResult``).

:mod:`kafka_reliable.dlq.replay` runs it and re-exports every name here.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from kafka_reliable.dlq.model import DlqMessage
from kafka_reliable.dlq.reader import DlqError, DlqFilter
from kafka_reliable.dlq.targets import SkippedRecord

#: Default limit of ``kafka_reliable.replay.count``: a record replayed this often is refused.
DEFAULT_MAX_REPLAYS = 3
#: Group id prefix of replay progress.
REPLAY_GROUP_PREFIX = "kafka-reliable-replay."
#: At most this many skipped records are listed in a result (all are counted).
MAX_LISTED_SKIPS = 1000


@dataclass(frozen=True, kw_only=True)
class ReplayOptions:
    """What to replay and how fast. ``rate_per_s`` None = as fast as the cluster takes it."""

    max_messages: int | None = None
    rate_per_s: float | None = None
    to_topic: str | None = None
    filter: DlqFilter = field(default_factory=DlqFilter)
    dry_run: bool = False
    force: bool = False
    max_replays: int = DEFAULT_MAX_REPLAYS
    group_id: str | None = None
    transactional: bool = True
    max_time_s: float | None = None
    chunk_size: int = 100
    chunk_interval_s: float = 1.0
    #: Resend the original record re-read from its topic (``SourceReader``), not the DLQ copy.
    from_source: bool = False
    #: Who redrives (e.g. the console and its user): when set, every replayed record carries
    #: the audit headers ``kafka_reliable.redrive.by`` / ``.at`` / ``.from``.
    audit_by: str | None = None

    def __post_init__(self) -> None:
        if self.max_messages is not None and self.max_messages < 0:
            raise DlqError(f"max_messages must be >= 0, got {self.max_messages}")
        if self.rate_per_s is not None and self.rate_per_s <= 0:
            raise DlqError(f"rate must be > 0 records/s, got {self.rate_per_s}")
        if self.chunk_size < 1:
            raise DlqError(f"chunk_size must be >= 1, got {self.chunk_size}")


@dataclass(kw_only=True)
class ReplayResult:
    """What a replay did (or, with ``dry_run``, would do).

    ``skipped`` lists (up to :data:`MAX_LISTED_SKIPS`) the records that could not be replayed
    for a reason of their own: a target that is illegal, missing or refused the record, or an
    unreadable replay count. Progress moved past them; they stay in the DLQ.
    """

    dlq_topic: str
    group_id: str
    dry_run: bool
    replayed: int = 0
    scanned: int = 0
    pending_at_start: int = 0
    skipped_filtered: int = 0
    skipped_loop_guard: int = 0
    skipped_no_target: int = 0
    skipped_bad_target: int = 0
    #: Records that cannot be resent as they are (headers-only, undecodable, not retained, ...).
    skipped_unsendable: int = 0
    skipped: list[SkippedRecord] = field(default_factory=list)
    by_error_class: Counter[str] = field(default_factory=Counter)
    by_reason: Counter[str] = field(default_factory=Counter)
    by_target: Counter[str] = field(default_factory=Counter)
    stopped: str = "end"  # end | max_messages | max_time | stopped

    @property
    def refused(self) -> int:
        return self.skipped_loop_guard + self.skipped_no_target + self.skipped_unsendable

    @property
    def partial(self) -> bool:
        """Some records could not be delivered to their target and were skipped."""
        return self.skipped_bad_target > 0

    def skip(self, m: DlqMessage, target: str | None, reason: str) -> None:
        if len(self.skipped) < MAX_LISTED_SKIPS:
            self.skipped.append(
                SkippedRecord(
                    partition=m.partition,
                    offset=m.offset,
                    message_id=m.message_id,
                    target=target,
                    reason=reason,
                )
            )

    def to_json(self) -> dict[str, Any]:
        return {
            "dlq_topic": self.dlq_topic,
            "group_id": self.group_id,
            "dry_run": self.dry_run,
            "replayed": self.replayed,
            "scanned": self.scanned,
            "pending_at_start": self.pending_at_start,
            "skipped_filtered": self.skipped_filtered,
            "skipped_loop_guard": self.skipped_loop_guard,
            "skipped_no_target": self.skipped_no_target,
            "skipped_bad_target": self.skipped_bad_target,
            "skipped_unsendable": self.skipped_unsendable,
            "partial": self.partial,
            "skipped": [r.to_json() for r in self.skipped],
            "stopped": self.stopped,
            "by_error_class": dict(self.by_error_class.most_common()),
            "by_reason": dict(self.by_reason.most_common()),
            "by_target": dict(self.by_target),
        }


class ReplayTargetError(DlqError):
    """``to_topic`` can never take a record: illegal name (``missing`` False) or no such topic."""

    def __init__(self, message: str, *, missing: bool) -> None:
        super().__init__(message)
        self.missing = missing
