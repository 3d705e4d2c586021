"""A record on its way: the one shape shared by the send path, the companion writer, the
spool, the spool drainer and replay.

Bytes are kept exactly as they will be (or were) produced; the failure fields say why the
record is being routed when it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Headers = list[tuple[str, bytes | None]]


@dataclass(slots=True)
class OutgoingRecord:
    """One record to send (again): where it goes, its bytes, and what went wrong so far."""

    message_id: str | None
    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers = field(default_factory=list)
    #: The record's create time (epoch ms); kept when the record is sent again.
    timestamp_ms: int | None = None
    error_code: str = ""
    error_message: str = ""
    fatal: bool = False
    #: Spool row id, for a record read back from the spool.
    row_id: int | None = None
    #: Why the record was spooled; why it was quarantined (never deliverable), when it was.
    spool_reason: str | None = None
    quarantine_reason: str | None = None

    def failed(self, error_code: str, error_message: str, fatal: bool = False) -> OutgoingRecord:
        """This record with the failure that sends it to routing (returns self)."""
        self.error_code, self.error_message, self.fatal = error_code, error_message, fatal
        return self

    @property
    def size_bytes(self) -> int:
        """Key + value + header bytes: what counts against ``max.message.bytes``."""
        return (
            len(self.value or b"")
            + len(self.key or b"")
            + sum(len(k) + len(v or b"") for k, v in self.headers)
        )
