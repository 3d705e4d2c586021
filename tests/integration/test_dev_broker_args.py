"""``kafka-reliable dev-broker``: every bad argument refused in one line, and a cluster that
cannot be ours refused before anything starts.

A table of argv -> exit code and a piece of the one-line error (no cluster is started: each
case is refused before a JVM would be launched). Then two checks on real sockets and the real
test broker: ports held by another process, and a cluster that answers with another id.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from kafka_reliable.dev.broker import DevBrokerError
from kafka_reliable.dev.cluster import DevCluster
from tests.conftest import _unavailable
from tests.helpers.cli import ROOT
from tests.helpers.ports import reserve_ports

#: (name, argv after "dev-broker", exit code, piece of the last stderr line);
#: "{dir}" is an empty folder
CASES = [
    (
        "brokers-0",
        ("start", "--brokers", "0"),
        2,
        "argument --brokers: the broker count must be 1..9, got 0",
    ),
    (
        "brokers-100",
        ("start", "--brokers", "100", "--data-dir", "{dir}"),
        2,
        "must be 1..9, got 100",
    ),
    (
        "brokers-word",
        ("status", "--brokers", "three"),
        2,
        "argument --brokers: 'three' is not an integer",
    ),
    (
        "port-70000",
        ("start", "--port", "70000"),
        2,
        "argument --port: a port must be 1..65535, got 70000",
    ),
    (
        "port-negative",
        ("status", "--port", "-5"),
        2,
        "argument --port: a port must be 1..65535, got -5",
    ),
    (
        "controller-port-0",
        ("status", "--controller-port", "0"),
        2,
        "argument --controller-port: a port must be",
    ),
    (
        "cluster-port-too-high",
        ("start", "--cluster", "--port", "65530", "--data-dir", "{dir}"),
        2,
        "--port must be 1..65515 (the cluster uses up to port+20), got 65530",
    ),
    (
        "node-negative",
        ("status", "--node", "-1"),
        2,
        "argument --node: a node id (0 = controller) must be 0..9",
    ),
    (
        "node-not-in-cluster",
        ("status", "--node", "9", "--data-dir", "{dir}"),
        2,
        "no node 9: brokers are 1..3, the controller is 0",
    ),
    ("kill-without-node", ("kill", "--cluster"), 2, "kill needs --node N"),
    ("pause-single-broker", ("pause",), 2, "pause needs --node N"),
    (
        "status-no-cluster",
        ("status", "--cluster", "--data-dir", "{dir}"),
        3,
        "no dev cluster in {dir}",
    ),
    (
        "status-node-no-cluster",
        ("status", "--node", "2", "--data-dir", "{dir}"),
        3,
        "no dev cluster in {dir}",
    ),
    (
        "kill-no-cluster",
        ("kill", "--node", "1", "--data-dir", "{dir}"),
        1,
        "no dev cluster in {dir}",
    ),
]


def run_cli(*argv: str, home: Path, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    """The CLI as its own process with its own ``KAFKA_RELIABLE_HOME``: a case that was not
    refused could start nothing in the machine's default dev folders (no jars there either)."""
    env = {**os.environ, "KAFKA_RELIABLE_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "kafka_reliable", *argv],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=env,
    )


@pytest.mark.parametrize(("name", "argv", "code", "says"), CASES, ids=[c[0] for c in CASES])
def test_bad_dev_broker_arguments_get_one_line(
    name: str, argv: tuple[str, ...], code: int, says: str, tmp_path: Path
) -> None:
    # When
    p = run_cli("dev-broker", *(a.format(dir=tmp_path) for a in argv), home=tmp_path / "home")
    # Then: the exit code, one error line naming what was wrong, no table, nothing started
    lines = p.stderr.strip().splitlines()
    assert p.returncode == code, p.stdout + p.stderr
    assert lines and says.format(dir=tmp_path) in lines[-1], p.stderr
    assert "Traceback" not in p.stderr and "node 0" not in p.stdout
    assert not list(tmp_path.rglob("*.pid"))


def test_start_refuses_ports_another_process_holds(tmp_path: Path) -> None:
    # Given: a block of ports, the second one (node 1's inter-broker port is base+10) held by us
    block = reserve_ports(21)
    holder = socket.socket()
    holder.setsockopt(
        socket.SOL_SOCKET, socket.SO_REUSEADDR, 1
    )  # as a server does (TIME_WAIT is no holder)
    try:
        holder.bind(("127.0.0.1", block.base + 10))
        holder.listen(1)
        # When
        p = run_cli(
            "dev-broker",
            "start",
            "--brokers",
            "1",
            "--port",
            str(block.base),
            "--data-dir",
            str(tmp_path),
            home=tmp_path / "home",
        )
    finally:
        holder.close()
        block.release()
    # Then: one line naming the port and its holder (this process); nothing was launched
    assert p.returncode == 1, p.stdout + p.stderr
    last = p.stderr.strip().splitlines()[-1]
    assert (
        f"port {block.base + 10} (node 1's inter-broker port) is in use by pid {os.getpid()}"
        in last
    )
    assert "started" not in p.stdout and not list(tmp_path.rglob("node.pid"))


def test_a_cluster_answering_with_another_id_is_not_ours(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # Given: a dev cluster folder formatted with its own id, whose inter-broker port of node 1 is
    # where the test broker (another cluster) answers
    host, port = kafka_bootstrap.rsplit(":", 1)
    if host not in ("127.0.0.1", "localhost") or int(port) < 11:
        _unavailable("this test needs the test broker on loopback")  # fails under CI=true
    c = DevCluster(brokers=1, base_port=int(port) - 10, data_dir=tmp_path)
    (tmp_path / "cluster.json").write_text(
        json.dumps(
            {
                "cluster_id": "not-the-test-brokers-id",
                "brokers": 1,
                "base_port": c.base_port,
                "sasl": False,
            }
        )
    )
    # When / Then: the readiness check refuses it, naming both ids
    with pytest.raises(
        DevBrokerError, match="answers for another Kafka cluster .* not-the-test-brokers-id"
    ):
        c.registered_brokers(bootstrap=kafka_bootstrap)
