"""DLQ tools: stats, list, show, replay, purge and max size, for every DLQ dialect."""

from __future__ import annotations

from kafka_reliable.dlq.decode import DecodedRecord, decode_message, decode_record
from kafka_reliable.dlq.dialects import DlqContext
from kafka_reliable.dlq.maintenance import DlqMaintenance
from kafka_reliable.dlq.model import DlqMessage
from kafka_reliable.dlq.queue import DeadLetterQueue, Resolved, make_filter
from kafka_reliable.dlq.reader import DlqError, DlqFilter
from kafka_reliable.dlq.replay import ReplayOptions, ReplayResult, ReplayTargetError
from kafka_reliable.dlq.targets import SkippedRecord
from kafka_reliable.dlq.timespec import parse_time

__all__ = [
    "DeadLetterQueue",
    "DecodedRecord",
    "DlqContext",
    "DlqError",
    "DlqFilter",
    "DlqMaintenance",
    "DlqMessage",
    "ReplayOptions",
    "ReplayResult",
    "ReplayTargetError",
    "Resolved",
    "SkippedRecord",
    "decode_message",
    "decode_record",
    "make_filter",
    "parse_time",
]
