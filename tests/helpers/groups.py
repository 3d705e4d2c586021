"""How the suite is spread over pytest-xdist workers (``make test``: ``-n N --dist loadgroup``).

A session-scoped fixture runs once *per worker*, so every test that shares an expensive
fixture must run on the same worker: such tests form one xdist group.

- A test with ``@pytest.mark.xdist_group("name")`` is in group ``name``.
- Else a test using a session- or package-scoped fixture defined under ``tests/`` (a private
  cluster or broker), other than ``SHARED_FIXTURES``, is in the group named after it; such a
  test is also marked ``slow``.
- Else a test using a module-scoped fixture defined under ``tests/`` is grouped with its module.
- Every other test is distributed on its own.

On the workers the items are ordered: the private-cluster groups first (their JVMs start
while the rest runs), the unit tier next (a failing unit test shows within seconds), then the
slow tests (the longest first is what keeps the workers evenly busy), then the rest.
"""

from __future__ import annotations

import os

import pytest

__all__ = ["SHARED_FIXTURES", "group_of", "join_group", "order_for_workers"]

#: Session fixtures every test may use on any worker (one per worker is cheap).
SHARED_FIXTURES = frozenset({"kafka_bootstrap", "admin", "redis_url", "otel_exporter"})
_PRIVATE = pytest.StashKey[bool]()


def group_of(item: pytest.Item) -> tuple[str, bool] | None:
    """``(group, private)`` of ``item``, or None; ``private``: it shares a session fixture."""
    mark = item.get_closest_marker("xdist_group")
    if mark is not None:
        return str(mark.args[0] if mark.args else mark.kwargs.get("name", "default")), False
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return None
    module_group = None
    for name in sorted(info.name2fixturedefs):
        fd = info.name2fixturedefs[name][-1]
        if not fd.baseid or name in SHARED_FIXTURES:  # pytest's or a plugin's, or shared
            continue
        if fd.scope in ("session", "package"):
            return name, True
        if fd.scope == "module":
            module_group = item.nodeid.split("::")[0].rsplit("/", 1)[-1].removesuffix(".py")
    return (module_group, False) if module_group else None


def join_group(item: pytest.Item, group: str, *, private: bool) -> None:
    """Put ``item`` in xdist group ``group``: loadgroup reads it from the node id's ``@group``
    suffix. xdist writes ``_nodeid``, which pytest >= 9.2 no longer reads (the id lives in
    ``_id``: pytest-xdist#1386, groups silently ignored), so the suffix is set here."""
    item.stash[_PRIVATE] = private
    nodeid = f"{item.nodeid}@{group}"
    if hasattr(item, "_id"):
        from _pytest.nodeid import NodeId

        item._id = NodeId.parse(nodeid)
    else:
        item._nodeid = nodeid  # type: ignore[attr-defined]


def order_for_workers(items: list[pytest.Item]) -> None:
    """Private-cluster groups first (their JVMs start while the rest runs), then the unit tier
    (a failing unit test shows within seconds), then slow tests, then the rest (stable)."""

    def rank(item: pytest.Item) -> int:
        if item.stash.get(_PRIVATE, False):
            return 0
        if "tests/unit/" in str(item.fspath).replace(os.sep, "/"):
            return 1
        return 2 if item.get_closest_marker("slow") is not None else 3

    items.sort(key=rank)
