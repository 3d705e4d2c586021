"""Broker faults under load on the 3-broker cluster (RF 3, min.insync.replicas 2, acks=all).

The producer survives every one of these faults, so LOST must be 0 and every copy of a
record must carry the one message id it was stamped with.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from tests.faults.harness import Tally, leader_of
from tests.faults.scenario import later, run_producer_scenario, sized

pytestmark = pytest.mark.faults


def _check(t: Tally) -> None:
    print("\n" + t.row())
    assert t.lost == 0, f"{t.scenario}: {t.lost} records LOST (e.g. seq {t.lost_sample}): {t}"
    assert t.unknown == 0 and t.id_mismatch == 0, t
    assert t.once + t.dup + t.dlq + t.spool + t.retry == t.sent, t


def test_leader_sigkilled_mid_run_and_restarted(healthy: Any, tmp_path: Path, report: list[Tally]) -> None:
    # Given records paced over the run (200,000 over ~20 s; make test: 20,000 over ~5 s); When
    # the leader of partition 0 is SIGKILLed at 25 % and restarted later (10 s; make test: 3 s)
    restart_s = sized(10, 3)

    def fault(topic: str) -> None:
        node = leader_of({"bootstrap.servers": healthy.bootstrap_servers}, topic)
        healthy.signal_node(node, signal.SIGKILL)
        later(restart_s, lambda: healthy.start_node(node))

    t = run_producer_scenario("leader_sigkill", healthy, tmp_path, records=int(sized(200_000, 20_000)),
                              duration_s=sized(20, 5), faults={0.25: fault})
    t.notes = f"leader of p0 SIGKILLed at 25 %, restarted {restart_s:.0f} s later"
    report.append(t)
    # Then nothing is lost
    _check(t)


@pytest.mark.full_only
def test_broker_paused_20s(healthy: Any, tmp_path: Path, report: list[Tally]) -> None:
    def fault(topic: str) -> None:
        node = leader_of({"bootstrap.servers": healthy.bootstrap_servers}, topic)
        healthy.signal_node(node, signal.SIGSTOP)
        later(20, lambda: healthy.signal_node(node, signal.SIGCONT))

    t = run_producer_scenario("leader_paused_20s", healthy, tmp_path, records=100_000, duration_s=30,
                              faults={0.2: fault})
    t.notes = "leader of p0 SIGSTOPped 20 s, then SIGCONT"
    report.append(t)
    _check(t)


@pytest.mark.full_only
def test_rolling_restart_under_load(healthy: Any, tmp_path: Path, report: list[Tally]) -> None:
    def fault(topic: str) -> None:
        for node in (1, 2, 3):
            healthy.stop_node(node)
            healthy.start_node(node)

    t = run_producer_scenario("rolling_restart", healthy, tmp_path, records=150_000, duration_s=45,
                              faults={0.05: fault})
    t.notes = "brokers 1, 2, 3 stopped cleanly and restarted one after another"
    report.append(t)
    _check(t)


@pytest.mark.full_only
def test_two_brokers_down_below_min_isr(healthy: Any, tmp_path: Path, report: list[Tally]) -> None:
    def fault(topic: str) -> None:
        leader = leader_of({"bootstrap.servers": healthy.bootstrap_servers}, topic)
        down = [n for n in (1, 2, 3) if n != leader]
        for node in down:
            healthy.signal_node(node, signal.SIGKILL)
        later(20, lambda: [healthy.start_node(n) for n in down])

    t = run_producer_scenario("two_brokers_down_20s", healthy, tmp_path, records=60_000, duration_s=30,
                              faults={0.2: fault},
                              producer_kwargs={"producer_config": {"delivery.timeout.ms": 15_000}})
    t.notes = "2 of 3 brokers SIGKILLed 20 s (ISR 1 < min 2); delivery.timeout 15 s so records go to .retry"
    report.append(t)
    _check(t)


@pytest.mark.full_only
def test_whole_cluster_stopped_30s(healthy: Any, tmp_path: Path, report: list[Tally]) -> None:
    def fault(topic: str) -> None:
        for node in (3, 2, 1, 0):
            healthy.signal_node(node, signal.SIGKILL)
        later(30, healthy.start)

    t = run_producer_scenario("whole_cluster_down_30s", healthy, tmp_path, records=60_000, duration_s=30,
                              faults={0.2: fault},
                              producer_kwargs={"producer_config": {"delivery.timeout.ms": 10_000}})
    t.notes = "controller + 3 brokers SIGKILLed 30 s; delivery.timeout 10 s so the spool engages"
    report.append(t)
    _check(t)
