"""A local multi-broker Apache Kafka (KRaft) cluster for fault tests, without Docker.

One dedicated controller (node 0) and N brokers (nodes 1..N) on loopback, each its own JVM
with a small heap, sharing the jars the single dev broker resolved with Maven. Brokers are
made for failure drills: each can be SIGKILLed, stopped, restarted, paused (SIGSTOP, a hung
broker) and resumed, one at a time. Topics default to replication factor ``min(3, N)`` with
``min.insync.replicas`` one less, internal topics alike.

Ports from ``base_port`` (default 19092, so it runs beside the dev broker on 9092): broker n
serves clients on ``base_port + n - 1`` and brokers on ``base_port + 10 + n - 1``; the
controller listens on ``base_port + 20``. With ``sasl=True`` the client listener is
SASL_PLAINTEXT / SCRAM-SHA-512 with the StandardAuthorizer (see :mod:`kafka_reliable.dev.sasl`).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafka_reliable.dev import sasl as S
from kafka_reliable.dev.broker import KAFKA_VERSION, DevBroker, DevBrokerError, default_home
from kafka_reliable.dev.cluster_nodes import (
    NodeSpec,
    check_ports_free,
    log4j2,
    node_pid,
    process_state,
    spawn,
    stop_process,
)
from kafka_reliable.dev.cluster_props import CONTROLLER_ID, node_props
from kafka_reliable.dev.ports import port_open

#: Default first client port of the dev cluster (9092 stays the single dev broker's).
DEFAULT_CLUSTER_PORT = 19092
#: Seconds ``start`` waits for every node to be up.
CLUSTER_START_TIMEOUT_S = 120.0
#: Most brokers a dev cluster runs (ports base..base+9 for clients, +10.. for inter-broker).
MAX_BROKERS = 9
#: Highest first port: the controller listens on ``base_port + 20``.
MAX_BASE_PORT = 65535 - 20


@dataclass(frozen=True, kw_only=True)
class DevCluster:
    """N brokers and one controller; see the module docstring for ports and layout."""

    brokers: int = 3
    base_port: int = DEFAULT_CLUSTER_PORT
    data_dir: Path | None = None
    heap_mb: int = 320
    controller_heap_mb: int = 192
    sasl: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.brokers <= MAX_BROKERS:
            raise DevBrokerError(f"--brokers must be 1..{MAX_BROKERS}, got {self.brokers}")
        if not 1 <= self.base_port <= MAX_BASE_PORT:
            raise DevBrokerError(
                f"--port must be 1..{MAX_BASE_PORT} (the cluster uses up to "
                f"port+20), got {self.base_port}"
            )

    # ---- layout -------------------------------------------------------------------------

    @property
    def home(self) -> Path:
        return self.data_dir or default_home() / f"dev-cluster-{self.base_port}"

    @property
    def replication_factor(self) -> int:
        return min(3, self.brokers)

    @property
    def min_insync_replicas(self) -> int:
        return max(1, self.replication_factor - 1)

    @property
    def controller_port(self) -> int:
        return self.base_port + 20

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"127.0.0.1:{n.port}" for n in self.broker_nodes())

    @property
    def internal_bootstrap(self) -> str:
        """PLAINTEXT listener of the brokers (super user); for the launcher and test setup."""
        return ",".join(f"127.0.0.1:{n.internal_port}" for n in self.broker_nodes())

    def client_config(self, user: str | None = None) -> dict[str, Any]:
        """librdkafka settings for a client of this cluster (SASL user when ``sasl``)."""
        conf: dict[str, Any] = {"bootstrap.servers": self.bootstrap_servers}
        if self.sasl:
            conf.update(S.client_settings(self.home, user or S.ADMIN_USER))
        return conf

    def node(self, node_id: int) -> NodeSpec:
        if node_id == CONTROLLER_ID:
            return NodeSpec(
                node_id=0,
                role="controller",
                port=self.controller_port,
                internal_port=None,
                home=self.home / "node-0",
            )
        if not 1 <= node_id <= self.brokers:
            raise DevBrokerError(
                f"no node {node_id}: brokers are 1..{self.brokers}, the controller is 0"
            )
        return NodeSpec(
            node_id=node_id,
            role="broker",
            port=self.base_port + node_id - 1,
            internal_port=self.base_port + 10 + node_id - 1,
            home=self.home / f"node-{node_id}",
        )

    def broker_nodes(self) -> list[NodeSpec]:
        return [self.node(i) for i in range(1, self.brokers + 1)]

    def nodes(self) -> list[NodeSpec]:
        return [self.node(CONTROLLER_ID), *self.broker_nodes()]

    # ---- config -------------------------------------------------------------------------

    def _props(self, n: NodeSpec) -> dict[str, str]:
        return node_props(
            n.node_id,
            n.role,
            n.port,
            n.internal_port,
            n.home,
            controller_port=self.controller_port,
            rf=self.replication_factor,
            isr=self.min_insync_replicas,
            sasl=self.sasl,
        )

    def _write_config(self, n: NodeSpec) -> None:
        (n.home / "data").mkdir(parents=True, exist_ok=True)
        n.config_file.write_text("".join(f"{k}={v}\n" for k, v in self._props(n).items()))
        (n.home / "log4j2.properties").write_text(log4j2())

    def _cluster_id(self) -> str:
        known = self.cluster_id()
        if known is not None:
            return known
        f = self.home / "cluster.json"
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        self.home.mkdir(parents=True, exist_ok=True)
        f.write_text(
            json.dumps(
                {
                    "cluster_id": cid,
                    "brokers": self.brokers,
                    "base_port": self.base_port,
                    "sasl": self.sasl,
                    "kafka_version": KAFKA_VERSION,
                }
            )
        )
        return cid

    def _format(self, n: NodeSpec, java: str, classpath: str) -> None:
        if (n.home / "data" / "meta.properties").exists():
            return
        cmd = [
            java,
            "-cp",
            classpath,
            "kafka.tools.StorageTool",
            "format",
            "--cluster-id=" + self._cluster_id(),
            "-c",
            str(n.config_file),
        ]
        if self.sasl and n.role == "controller":
            cmd += S.format_scram_args(self.home)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise DevBrokerError(
                f"formatting node {n.node_id} failed:\n"
                f"{S.scrub((proc.stdout + proc.stderr)[-3000:])}"
            )

    # ---- processes ----------------------------------------------------------------------

    def pid(self, node_id: int) -> int | None:
        return node_pid(self.node(node_id))

    def state(self, node_id: int) -> str:
        """``running``, ``paused`` (SIGSTOPped) or ``stopped``."""
        return process_state(self.pid(node_id))

    def start(self, timeout_s: float = CLUSTER_START_TIMEOUT_S) -> list[int]:
        """Start every node not running; return once all brokers are registered. Started ids.

        The ports of the nodes to start must be free (else DevBrokerError naming the port and
        the process holding it), and the cluster that answers must be this one (its cluster id).
        """
        self.check_ports_free([n for n in self.nodes() if self.pid(n.node_id) is None])
        started = [n.node_id for n in self.nodes() if self._launch(n)]
        self.wait_ready(timeout_s)
        if self.sasl:
            S.ensure_acls(self)
        return started

    def start_node(self, node_id: int, timeout_s: float = CLUSTER_START_TIMEOUT_S) -> bool:
        """(Re)start one node; False when it was already running. Waits until it is back."""
        n = self.node(node_id)
        if self.pid(node_id) is None:
            self.check_ports_free([n])
        launched = self._launch(n)
        self.wait_ready(timeout_s, nodes=[node_id])
        return launched

    def _launch(self, n: NodeSpec) -> bool:
        if self.pid(n.node_id) is not None:
            return False
        helper = DevBroker(port=self.base_port, data_dir=self.home)
        java, classpath = helper._java(), str(helper.ensure_jars() / "*")
        if self.sasl:
            S.ensure_credentials(self.home)
        self._write_config(n)
        self._format(n, java, classpath)
        heap = self.controller_heap_mb if n.role == "controller" else self.heap_mb
        spawn(n, java, classpath, heap)
        return True

    def wait_ready(
        self, timeout_s: float = CLUSTER_START_TIMEOUT_S, nodes: list[int] | None = None
    ) -> None:
        """Wait until the given nodes (default all) run and every running broker is registered."""
        want = nodes if nodes is not None else [n.node_id for n in self.nodes()]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            dead = [i for i in want if self.pid(i) is None]
            if dead:
                raise DevBrokerError(f"node {dead[0]} exited; log tail:\n{self.log_tail(dead[0])}")
            if self._ready(want):
                return
            time.sleep(0.3)
        raise DevBrokerError(
            f"the cluster at {self.bootstrap_servers} was not ready within {timeout_s:.0f} s"
        )

    def _ready(self, want: list[int]) -> bool:
        if CONTROLLER_ID in want and not port_open(self.controller_port):
            return False
        brokers = [i for i in want if i != CONTROLLER_ID]
        if not brokers:
            return True
        registered = self.registered_brokers(
            bootstrap=f"127.0.0.1:{self.node(brokers[0]).internal_port}"
        )
        return all(i in registered for i in brokers)

    def registered_brokers(self, bootstrap: str | None = None, timeout_s: float = 2.0) -> set[int]:
        """Broker ids the cluster metadata lists (empty when nothing answers); DevBrokerError when
        the cluster that answers is not this one (another cluster id: someone else's ports)."""
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        bootstrap = bootstrap or self.internal_bootstrap
        admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
        try:
            md = admin.list_topics(timeout=timeout_s)
        except KafkaException:
            return set()
        ours = self.cluster_id()
        if ours is not None and md.cluster_id and md.cluster_id != ours:
            raise DevBrokerError(
                f"{bootstrap} answers for another Kafka cluster (id {md.cluster_id}), "
                f"not the one in {self.home} (id {ours}): its ports are held by "
                "someone else"
            )
        return set(md.brokers)

    def cluster_id(self) -> str | None:
        """The id this cluster was formatted with (``cluster.json``); None before the first
        start."""
        try:
            return str(json.loads((self.home / "cluster.json").read_text())["cluster_id"])
        except (OSError, ValueError, KeyError):
            return None

    def check_ports_free(self, nodes: list[NodeSpec]) -> None:
        """DevBrokerError naming the first port of ``nodes`` another process listens on."""
        check_ports_free(nodes)

    def signal_node(self, node_id: int, sig: signal.Signals) -> int:
        """Send ``sig`` to one node (kill, pause, resume); return its pid."""
        pid = self.pid(node_id)
        if pid is None:
            raise DevBrokerError(f"node {node_id} is not running")
        os.kill(pid, sig)
        if sig == signal.SIGKILL:
            deadline = time.monotonic() + 10
            while DevBroker._alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
        return pid

    def stop_node(self, node_id: int, timeout_s: float = 40.0) -> bool:
        """Clean shutdown (SIGTERM, controlled shutdown); SIGKILL after ``timeout_s``."""
        pid = self.pid(node_id)
        if pid is None:
            self.node(node_id).pid_file.unlink(missing_ok=True)
            return False
        stop_process(pid, timeout_s)
        self.node(node_id).pid_file.unlink(missing_ok=True)
        return True

    def stop(self) -> list[int]:
        """Stop the brokers (all at once), then the controller; return the ids that were running."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=self.brokers) as pool:
            stopped = [
                n.node_id
                for n, was in zip(
                    self.broker_nodes(),
                    pool.map(lambda n: self.stop_node(n.node_id), self.broker_nodes()),
                    strict=True,
                )
                if was
            ]
        return stopped + ([CONTROLLER_ID] if self.stop_node(CONTROLLER_ID) else [])

    def status(self) -> dict[str, Any]:
        nodes = []
        for n in self.nodes():
            st = self.state(n.node_id)
            nodes.append(
                {
                    "node_id": n.node_id,
                    "role": n.role,
                    "port": n.port,
                    "pid": self.pid(n.node_id),
                    "running": st != "stopped",
                    "state": st,
                    "log_file": str(n.log_file),
                }
            )
        return {
            "bootstrap_servers": self.bootstrap_servers,
            "brokers": self.brokers,
            "sasl": self.sasl,
            "replication_factor": self.replication_factor,
            "min_insync_replicas": self.min_insync_replicas,
            "kafka_version": KAFKA_VERSION,
            "data_dir": str(self.home),
            "nodes": nodes,
        }

    def log_tail(self, node_id: int, lines: int = 30) -> str:
        try:
            text = self.node(node_id).log_file.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log file)"
        return S.scrub("\n".join(text.splitlines()[-lines:]))

    @classmethod
    def load(
        cls, base_port: int = DEFAULT_CLUSTER_PORT, data_dir: Path | None = None
    ) -> DevCluster | None:
        """The cluster a previous ``start`` created at this port / folder, if any."""
        home = data_dir or default_home() / f"dev-cluster-{base_port}"
        try:
            meta = json.loads((home / "cluster.json").read_text())
        except (OSError, ValueError):
            return None
        return cls(
            brokers=int(meta["brokers"]),
            base_port=int(meta["base_port"]),
            data_dir=data_dir,
            sasl=bool(meta.get("sasl")),
        )
