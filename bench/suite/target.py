"""Where and when the suite runs: the quiet-machine gate and the broker it measures.

The gate: figures are comparable only from a quiet machine, so the suite refuses to start
while the 1-minute load average is at or above ``QUIET_LOAD`` (``--force`` runs anyway and the
report says so; ``--wait-load S`` waits up to S seconds for the load to fall first).

The target: the single dev broker (``KAFKA_BOOTSTRAP_SERVERS``, RF 1) or, with ``--cluster``,
the 3-broker dev cluster of :mod:`kafka_reliable.dev.cluster` (RF 3, ``min.insync.replicas``
2), which the suite's children reach through the environment (``KAFKA_BOOTSTRAP_SERVERS``,
``BENCH_REPLICATION_FACTOR``, ``BENCH_MIN_INSYNC_REPLICAS``, ``BENCH_TARGET``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

#: The suite starts only below this 1-minute load average (issue 25: "load average < 0.5").
QUIET_LOAD = 0.5
#: Brokers of the cluster run (issue 25: RF 3, min.insync.replicas 2).
CLUSTER_BROKERS = 3


def load_refusal(load_1m: float, *, force: bool, threshold: float = QUIET_LOAD) -> str | None:
    """Why the suite must not start at this load, or None when it may."""
    if force or load_1m < threshold:
        return None
    return (
        f"the 1-minute load average is {load_1m:.2f} (>= {threshold}): the figures would measure "
        "the other work on this machine, not the library. Stop it and retry, wait with "
        "--wait-load SECONDS, or pass --force to run anyway (the report records the load)"
    )


def wait_for_quiet(
    max_wait_s: float,
    *,
    load: Callable[[], float] = lambda: os.getloadavg()[0],
    sleep: Callable[[float], None] = time.sleep,
    log: Callable[[str], None] = print,
) -> float:
    """Poll the load every 10 s until it is below ``QUIET_LOAD`` or ``max_wait_s`` passed."""
    waited = 0.0
    current = load()
    while current >= QUIET_LOAD and waited < max_wait_s:
        log(f"waiting for a quiet machine: load {current:.2f} (>= {QUIET_LOAD}), {waited:.0f} s")
        sleep(10.0)
        waited += 10.0
        current = load()
    return current


def use_cluster(log: Callable[[str], None]) -> dict[str, Any]:
    """Point this process and its children at the 3-broker dev cluster; start it when it is
    not running (``kafka-reliable dev-broker start --brokers 3``). Returns its facts."""
    from kafka_reliable.dev.cluster import DEFAULT_CLUSTER_PORT, DevCluster

    cluster = DevCluster.load(DEFAULT_CLUSTER_PORT) or DevCluster(brokers=CLUSTER_BROKERS)
    if cluster.brokers < CLUSTER_BROKERS:
        raise RuntimeError(
            f"the dev cluster at port {DEFAULT_CLUSTER_PORT} has {cluster.brokers} broker(s); "
            f"--cluster needs {CLUSTER_BROKERS}: kafka-reliable dev-broker stop --cluster, remove "
            f"{cluster.home}, then kafka-reliable dev-broker start --brokers {CLUSTER_BROKERS}"
        )
    started = cluster.start()
    if started:
        log(f"started dev cluster nodes {started} on {cluster.bootstrap_servers}")
    rf, isr = cluster.replication_factor, cluster.min_insync_replicas
    os.environ.update(
        KAFKA_BOOTSTRAP_SERVERS=cluster.bootstrap_servers,
        BENCH_REPLICATION_FACTOR=str(rf),
        BENCH_MIN_INSYNC_REPLICAS=str(isr),
        BENCH_TARGET=(
            f"dev cluster: {cluster.brokers} brokers + 1 controller on loopback "
            f"({cluster.bootstrap_servers}), topics RF {rf}, min.insync.replicas {isr}"
        ),
    )
    return {
        "bootstrap_servers": cluster.bootstrap_servers,
        "brokers": cluster.brokers,
        "replication_factor": rf,
        "min_insync_replicas": isr,
        "started_by_suite": bool(started),
    }


def stop_cluster_if_started(facts: dict[str, Any] | None, log: Callable[[str], None]) -> None:
    """Stop the dev cluster when this run started it (a cluster found running is left alone)."""
    if not facts or not facts.get("started_by_suite"):
        return
    from kafka_reliable.dev.cluster import DEFAULT_CLUSTER_PORT, DevCluster

    cluster = DevCluster.load(DEFAULT_CLUSTER_PORT)
    if cluster is not None:
        log(f"stopping the dev cluster this run started: nodes {cluster.stop()}")
