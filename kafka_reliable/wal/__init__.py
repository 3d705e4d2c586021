"""The durable send path's write-ahead log: records in flight on local disk (in the kernel
when the send call returns), settled in bulk, resent by a later producer only when their
owner is dead. See ``docs/reliability.md`` and ``docs/architecture.md``."""

from kafka_reliable.wal.frames import WalRecord
from kafka_reliable.wal.log import DEFAULT_MAX_BYTES, FSYNC_POLICIES, WriteAheadLog
from kafka_reliable.wal.owners import OwnerLog, inspect, take_over, wal_root

__all__ = [
    "DEFAULT_MAX_BYTES",
    "FSYNC_POLICIES",
    "OwnerLog",
    "WalRecord",
    "WriteAheadLog",
    "inspect",
    "take_over",
    "wal_root",
]
