"""What every dedup backend shares: the policy names, the counters and the stats shape."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Literal, Protocol, runtime_checkable

from kafka_reliable.dedup.keys import KeyFn, derive_key
from kafka_reliable.errors import ConfigurationError

OnUnavailable = Literal["fail_open", "fail_closed"]

#: Accepted values of ``on_unavailable``.
POLICIES: frozenset[str] = frozenset({"fail_open", "fail_closed"})

#: Default lifetime of a dedup claim.
DEFAULT_TTL_S = 3600.0

#: Default bound of the in-memory backend (entries).
DEFAULT_MAX_ENTRIES = 1_000_000


@runtime_checkable
class Deduplicator(Protocol):
    """What the producer calls. ``check`` claims keys; ``True`` means first seen: send it."""

    backend: str
    available: bool

    def key_for(self, topic: str, key: bytes | None, value: bytes) -> bytes: ...

    def check(self, keys: Sequence[bytes]) -> list[bool]: ...

    def check_chunks(self, chunks: Iterable[Sequence[bytes]]) -> Iterator[list[bool]]: ...

    def release(self, keys: Sequence[bytes]) -> None: ...

    def stats(self) -> dict[str, Any]: ...


def validate(*, ttl_s: float, on_unavailable: str = "fail_open", max_entries: int = 1) -> None:
    if not ttl_s > 0:
        raise ConfigurationError(f"dedup ttl_s must be > 0, got {ttl_s!r}")
    if on_unavailable not in POLICIES:
        raise ConfigurationError(
            f"dedup on_unavailable must be one of {sorted(POLICIES)}, got {on_unavailable!r}"
        )
    if max_entries < 1:
        raise ConfigurationError(f"dedup max_entries must be >= 1, got {max_entries!r}")


class DedupBase:
    """Counters (thread-safe) and key derivation, shared by the backends."""

    backend: str = ""
    available: bool = True

    def __init__(self, *, key_fn: KeyFn | None) -> None:
        self.key_fn = key_fn
        self._stats_lock = threading.Lock()
        self._checks = 0
        self._duplicates = 0
        self._unavailable = 0

    def key_for(self, topic: str, key: bytes | None, value: bytes) -> bytes:
        """The dedup key of a record: the caller's ``key_fn`` if given, else the content key."""
        return derive_key(topic, key, value, self.key_fn)

    def _record(self, *, checks: int, duplicates: int = 0, unavailable: int = 0) -> None:
        with self._stats_lock:
            self._checks += checks
            self._duplicates += duplicates
            self._unavailable += unavailable

    def stats(self) -> dict[str, Any]:
        """The feature document's ``deduplication_stats``.

        ``checks``: keys checked; ``duplicates``: keys found already claimed;
        ``unavailable``: keys that could not be verified because the backend did not answer.
        """
        with self._stats_lock:
            checks, dups, unavailable = self._checks, self._duplicates, self._unavailable
        return {
            "checks": checks,
            "duplicates": dups,
            "duplicate_rate": dups / checks if checks else 0.0,
            "backend": self.backend,
            "unavailable": unavailable,
        }
