"""What the console is started with: the cluster, the token, optional spool and limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafka_reliable.config import DEFAULT_WORKER_GROUP, TopicNaming, redact

#: Records on one page of the record list unless the page asks for another size.
DEFAULT_PAGE_SIZE = 50
#: At most this many records are read for one page of a filtered list; the page then offers
#: to continue from where the scan stopped.
DEFAULT_SCAN_BUDGET = 20_000


@dataclass(frozen=True, kw_only=True)
class ConsoleSettings:
    """The console's configuration. ``conf`` and ``token`` never appear on a page or in a log."""

    conf: dict[str, Any] = field(repr=False)
    token: str | None = field(default=None, repr=False)
    naming: TopicNaming = field(default_factory=TopicNaming)
    worker_group: str = DEFAULT_WORKER_GROUP
    spool_path: Path | None = None
    dlq_max_size: int | None = None
    schema_registry_url: str | None = field(default=None, repr=False)
    page_size: int = DEFAULT_PAGE_SIZE
    scan_budget: int = DEFAULT_SCAN_BUDGET
    timeout_s: float = 10.0

    @property
    def read_only(self) -> bool:
        return not self.token

    def safe_conf(self) -> dict[str, Any]:
        """The client settings with secrets masked (for logs)."""
        return redact({k: v for k, v in self.conf.items() if k != "logger"})
