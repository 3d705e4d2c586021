"""The record filter of the pages, from query or form fields to a :class:`DlqFilter`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from kafka_reliable.console.paging import ConsoleInputError
from kafka_reliable.dlq.reader import DlqFilter
from kafka_reliable.dlq.timespec import parse_time

#: Form fields of the filter, in the order the page shows them.
FIELDS = ("error", "reason", "original_topic", "key", "message_id", "since", "until", "text")
#: Longest accepted value of one filter field.
MAX_FIELD_CHARS = 1000


@dataclass(frozen=True, kw_only=True)
class FilterForm:
    """The filter as typed (strings), kept to refill the form and build links."""

    values: dict[str, str]

    @classmethod
    def from_fields(cls, data: Mapping[str, str]) -> FilterForm:
        values = {}
        for name in FIELDS:
            v = str(data.get(name) or "").strip()
            if len(v) > MAX_FIELD_CHARS:
                raise ConsoleInputError(f"filter {name}: longer than {MAX_FIELD_CHARS} characters")
            if v:
                values[name] = v
        return cls(values=values)

    def get(self, name: str) -> str:
        return self.values.get(name, "")

    @property
    def empty(self) -> bool:
        return not self.values

    def query(self, **more: str | int | None) -> str:
        """The filter (and ``more``) as a query string."""
        items = {**self.values, **{k: str(v) for k, v in more.items() if v not in (None, "")}}
        return urlencode(items)

    def to_filter(self) -> DlqFilter | None:
        """The DlqFilter, None when empty; ConsoleInputError naming a bad field."""
        if self.empty:
            return None
        v = self.values
        errors = tuple(e.strip() for e in v.get("error", "").split(",") if e.strip())
        return DlqFilter(
            errors=errors,
            since_ms=_time(v.get("since"), "since"),
            until_ms=_time(v.get("until"), "until"),
            key=v.get("key"),
            reason=v.get("reason"),
            original_topic=v.get("original_topic"),
            message_id=v.get("message_id"),
            text=v.get("text"),
        )


def _time(text: str | None, name: str) -> int | None:
    if not text:
        return None
    try:
        return parse_time(text)
    except ValueError as exc:
        raise ConsoleInputError(f"filter {name}: {exc}") from None
