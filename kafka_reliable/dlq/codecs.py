"""Header value decoders that never raise: a value, or None and an ``undecodable: …`` note.

Every dialect parser reads its headers through one :class:`HeaderReader`. Whatever the bytes
(random, wrong length, a 5,000-digit number, bad UTF-8, a negative offset), a read returns a
value or None; the reason a present header could not be read is kept as a note such as
``undecodable: __dlq.errors.offset: negative number -3``. Work and memory are bounded: numbers
longer than :data:`MAX_NUMBER_CHARS` are not parsed, texts are cut to a byte limit, and notes
quote at most :data:`NOTE_QUOTE_BYTES` bytes of the value.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from kafka_reliable import headers as h

RawHeaders = Sequence[tuple[str, bytes | None]]

#: Longest decimal text parsed (bounded work; ``headers.parse_decimal`` has the same bound).
MAX_NUMBER_CHARS = 64
#: Largest value of any number header (a Java long).
MAX_LONG = 2**63 - 1
#: Largest partition id Kafka allows (a Java int).
MAX_PARTITION = 2**31 - 1
#: Bound on plain texts (class names, group names, rule names), bytes of UTF-8.
MAX_TEXT_BYTES = 1024
#: Bytes of a value quoted in a note.
NOTE_QUOTE_BYTES = 24
#: Longest legal topic name.
MAX_TOPIC_CHARS = 249
#: Notes kept per record (a record with thousands of garbled headers keeps the first ones).
MAX_NOTES = 32

_TOPIC = re.compile(r"[a-zA-Z0-9._-]+")


def _quote(v: bytes) -> str:
    cut = v[:NOTE_QUOTE_BYTES]
    return repr(cut) + (f" (+{len(v) - len(cut)} bytes)" if len(v) > len(cut) else "")


def cut_text(v: bytes, limit: int) -> str:
    """``v`` as text, at most ``limit`` bytes of it (cut on a character boundary)."""
    text = v[: limit + 4].decode("utf-8", "replace")  # U+FFFD takes 3 bytes: measure again
    if len(v) <= limit and len(text.encode("utf-8", "replace")) <= limit:
        return text
    return h.truncate_utf8(text, limit).decode("utf-8", "replace")


def decimal(v: bytes) -> int | None:
    """``b"42"``, ``b" -7 "`` -> int; None for anything else, including over-long numbers."""
    s = v.strip()
    if len(s) > MAX_NUMBER_CHARS:
        return None
    body = s[1:] if s[:1] == b"-" else s
    if body and body.isdigit() and body.isascii():
        return int(s)
    return None


class HeaderReader:
    """Reads one record's headers; collects a note per present header it cannot decode."""

    def __init__(self, headers: RawHeaders) -> None:
        self.headers = headers
        self.notes: list[str] = []
        self.unreadable: list[str] = []

    def note(self, name: str, why: str) -> None:
        if name not in self.unreadable:
            self.unreadable.append(name)
        if len(self.notes) < MAX_NOTES:
            self.notes.append(f"undecodable: {name}: {why}")

    def raw(self, name: str) -> bytes | None:
        return h.get(self.headers, name)

    # -- texts ------------------------------------------------------------------------------
    def text(self, name: str, limit: int = MAX_TEXT_BYTES) -> str | None:
        """UTF-8 text cut to ``limit`` bytes; bad UTF-8 is shown with U+FFFD and noted."""
        v = self.raw(name)
        if v is None:
            return None
        try:
            v[: limit + 4].decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.start < limit:  # a cut multibyte character at the limit is not an error
                self.note(name, f"not UTF-8 at byte {exc.start} (shown with U+FFFD)")
        return cut_text(v, limit)

    def topic(self, name: str) -> str | None:
        """A topic name as text (bounded); one that is not a legal Kafka topic name is noted.

        It is kept, not dropped: a replay then skips the record and lists it with the reason
        (``illegal topic name …``), where a missing name would only be counted.
        """
        v = self.raw(name)
        if v is None:
            return None
        text = cut_text(v, MAX_TEXT_BYTES)
        if (
            not v.isascii()
            or len(v) > MAX_TOPIC_CHARS
            or not _TOPIC.fullmatch(text)
            or text in (".", "..")
        ):
            self.note(name, f"not a legal topic name: {_quote(v)}")
        return text

    # -- numbers ----------------------------------------------------------------------------
    def _checked(self, name: str, n: int, low: int, high: int | None, v: bytes) -> int | None:
        if n < low:
            self.note(name, f"negative number {n}" if n < 0 <= low else f"{n} is below {low}")
            return None
        if n > (MAX_LONG if high is None else high):
            self.note(name, f"{n} is above {MAX_LONG if high is None else high}: {_quote(v)}")
            return None
        return n

    def int_text(self, name: str, *, low: int = 0, high: int | None = None) -> int | None:
        """Decimal text (the contract of ours, Connect, Streams, Karafka, share groups)."""
        v = self.raw(name)
        if v is None:
            return None
        n = decimal(v)
        if n is None:
            why = (
                f"{len(v)}-byte value, too long for a number"
                if len(v) > MAX_NUMBER_CHARS
                else (f"not a decimal number: {_quote(v)}")
            )
            self.note(name, why)
            return None
        return self._checked(name, n, low, high, v)

    def int_text_first(self, name: str, *, low: int = 0, high: int | None = None) -> int | None:
        """Decimal text; a 4- or 8-byte big-endian number as fallback (older writers)."""
        v = self.raw(name)
        if v is None:
            return None
        n = decimal(v)
        if n is None and len(v) in (4, 8):
            n = int.from_bytes(v, "big", signed=True)
        if n is None:
            self.note(name, f"neither a decimal nor a 4/8-byte number: {_quote(v)}")
            return None
        return self._checked(name, n, low, high, v)

    def int_binary(
        self, name: str, size: int, *, low: int = 0, high: int | None = None
    ) -> int | None:
        """A ``size``-byte big-endian number (Java ``ByteBuffer``); decimal text as fallback."""
        v = self.raw(name)
        if v is None:
            return None
        n = int.from_bytes(v, "big", signed=True) if len(v) == size else decimal(v)
        if n is None and 0 < len(v) <= 8:
            n = int.from_bytes(v, "big", signed=True)
        if n is None:
            self.note(name, f"{len(v)} bytes where a {size}-byte number was expected: {_quote(v)}")
            return None
        return self._checked(name, n, low, high, v)
