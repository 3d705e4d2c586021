"""The one registry policy of every part: the registry the caller passes, else prometheus-client's
global one; one set of collectors per (registry, part), so two producers, consumers or workers
on one registry share their collectors instead of failing on a duplicate registration; label
values bounded per label (``BoundedLabel``)."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from prometheus_client import REGISTRY, CollectorRegistry

T = TypeVar("T")

_shared: weakref.WeakKeyDictionary[CollectorRegistry, dict[str, Any]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def registry_or_default(registry: CollectorRegistry | None) -> CollectorRegistry:
    """``registry``, or prometheus-client's global one (what ``start_metrics_server`` serves)."""
    return registry if registry is not None else REGISTRY


def per_registry(
    registry: CollectorRegistry, part: str, build: Callable[[CollectorRegistry], T]
) -> T:
    """The collectors of ``part`` on ``registry``: built (and registered) by ``build`` once."""
    with _lock:
        parts = _shared.setdefault(registry, {})
        if part not in parts:
            parts[part] = build(registry)
        return parts[part]


#: The label value that stands for every value past a label's bound.
OTHER = "_other"


class BoundedLabel:
    """Label values seen so far; past ``limit`` distinct values, new ones become ``_other``
    (a label fed with topics or error classes cannot grow a registry without bound)."""

    __slots__ = ("_seen", "_limit")

    def __init__(self, limit: int) -> None:
        self._seen: set[str] = set()
        self._limit = limit

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) >= self._limit:
            return OTHER
        self._seen.add(value)
        return value
