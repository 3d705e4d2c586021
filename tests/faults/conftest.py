"""Fixtures of the fault suite: a private 3-broker cluster, a private Redis, the results table.

Scenarios marked ``full_only`` run only with ``KAFKA_RELIABLE_FAULTS=all`` (``make test-faults``);
the others also run in ``make test``, at the quick sizes of ``scenario.sized``.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import _unavailable
from tests.faults.harness import HEADER, Tally, record
from tests.faults.scenario import FULL

_rows: list[Tally] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    keep, drop = [], []
    for item in items:
        if "tests/faults/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.faults)
            if item.get_closest_marker("full_only") and not FULL:
                drop.append(item)
                continue
        keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="package")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A private 1-controller + 3-broker cluster (RF 3, min ISR 2), started once for this
    package (one xdist group, so one worker); SIGKILLed after the package's last test."""
    from kafka_reliable.dev.cluster import DevCluster
    from tests.helpers.ports import reserve_ports

    env = os.environ.get("KAFKA_RELIABLE_FAULTS_PORT")
    block = None if env else reserve_ports(21)
    base = int(env) if env else block.base  # type: ignore[union-attr]
    c = DevCluster(brokers=3, base_port=base, data_dir=tmp_path_factory.mktemp("fault-cluster"))
    try:
        try:
            c.start()
        except Exception as exc:  # noqa: BLE001
            _unavailable(f"the fault suite needs the 3-broker dev cluster (Java + Maven): {exc}")
        yield c
    finally:
        for n in c.nodes():  # a half-started cluster too
            if c.pid(n.node_id):
                c.signal_node(n.node_id, signal.SIGCONT)
                c.signal_node(n.node_id, signal.SIGKILL)
        if block is not None:
            block.release()


@pytest.fixture
def healthy(cluster: object) -> object:
    """The cluster with every node running (a previous scenario may have left one down)."""
    for n in cluster.nodes():  # type: ignore[attr-defined]
        if cluster.state(n.node_id) == "paused":  # type: ignore[attr-defined]
            cluster.signal_node(n.node_id, signal.SIGCONT)  # type: ignore[attr-defined]
    cluster.start()  # type: ignore[attr-defined]
    return cluster


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[object]:
    """A redis-server of our own on a reserved port, so stopping and restarting it (the port
    is free meanwhile) disturbs nobody and nobody takes its port."""
    from kafka_reliable.dev.redis_server import DevRedis
    from tests.helpers.ports import reserve_ports

    block = reserve_ports(1)
    r = DevRedis(port=block.base, data_dir=tmp_path / "redis")
    try:
        try:
            r.start()
        except Exception as exc:  # noqa: BLE001
            _unavailable(f"fault tests need redis-server: {exc}")
        yield r
    finally:
        r.stop()
        block.release()


@pytest.fixture
def report() -> Iterator[list[Tally]]:
    """Append the scenario's Tally; it is printed at the end and merged into faults.json."""
    rows: list[Tally] = []
    yield rows
    for t in rows:
        if FULL:  # the file holds one consistent full run (docs/reliability.md quotes it)
            record(t)
        _rows.append(t)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """On an xdist worker: hand the rows to the controller, which prints the table."""
    out = getattr(session.config, "workeroutput", None)
    if out is not None:
        out["fault_rows"] = [asdict(t) for t in _rows]


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """On the xdist controller: the rows of a worker that ran fault scenarios."""
    _rows.extend(Tally(**row) for row in getattr(node, "workeroutput", {}).get("fault_rows", []))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _rows:
        return
    tr = terminalreporter
    tr.section("fault scenarios (sent / once / dup / retry / dlq / spool / LOST / refused)")
    tr.write_line(HEADER)
    for t in _rows:
        routed = " ".join(f"{k}={v}" for k, v in t.routed.items() if v)
        tr.write_line(t.row() + f"   {t.seconds:.0f} s" + (f"  [{routed}]" if routed else "") + (f"  {t.notes}" if t.notes else ""))
    tr.write_line("written to bench/results/faults.json" if FULL else
                  "(not written to bench/results/faults.json: only make test-faults writes it)")
