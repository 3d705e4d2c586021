"""A local Redis Cluster for development and tests: N masters from Debian's ``redis-server``,
joined by ``redis-cli --cluster create``, no replicas.

Ports are found by binding (client and cluster-bus port of each node, below the ephemeral
range so an outgoing connection cannot take one between our check and the server's bind);
they are written to ``cluster.json`` in the data dir, which every verb reads. Node data
(``nodes.conf``, logs, pid files) lives under ``$KAFKA_RELIABLE_HOME/dev-redis-cluster``.
``kill``/``restart`` of one node are for fault tests: a restarted node reads its
``nodes.conf`` and rejoins with its slots.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafka_reliable.dev.broker import default_home
from kafka_reliable.dev.redis_server import DevRedisError

#: First port tried for the cluster's nodes.
FIRST_PORT = 17100

#: Milliseconds after which the cluster marks a silent master failed (short: a dev cluster).
NODE_TIMEOUT_MS = 2000


def _free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(n: int, first: int = FIRST_PORT, last: int = 32000) -> list[int]:
    """``n`` ports of the loopback interface nobody is bound to, scanning from ``first``."""
    found = [p for p in range(first, last) if _free(p)][:n] if n else []
    if len(found) < n:
        raise DevRedisError(
            f"no {n} free ports between {first} and {last} for the dev Redis Cluster"
        )
    return found


def _exe(name: str) -> str:
    exe = shutil.which(name)
    if exe is None:
        raise DevRedisError(
            f"{name} is not installed (Debian: apt-get install redis-server, "
            "or scripts/install-redis.sh)"
        )
    return exe


def _client(port: int, timeout_s: float = 1.0) -> Any:
    import redis

    return redis.Redis(
        host="127.0.0.1", port=port, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
    )


def _state(port: int) -> str | None:
    """The node's ``cluster_state`` (``ok``/``fail``), or None when it does not answer."""
    import redis

    try:
        info = _client(port).execute_command("CLUSTER", "INFO")
    except (redis.RedisError, OSError):
        return None
    text = info.decode() if isinstance(info, bytes) else str(info)
    for line in text.splitlines():
        if line.startswith("cluster_state:"):
            return line.split(":", 1)[1].strip()
    return None


@dataclass(frozen=True, kw_only=True)
class DevRedisCluster:
    """``start()`` / ``stop()`` / ``status()`` of the dev cluster in ``data_dir``."""

    masters: int = 3
    data_dir: Path | None = None
    node_timeout_ms: int = NODE_TIMEOUT_MS

    @property
    def home(self) -> Path:
        return self.data_dir or default_home() / "dev-redis-cluster"

    @property
    def state_file(self) -> Path:
        return self.home / "cluster.json"

    def ports(self) -> list[int]:
        """Client ports of the nodes (from ``cluster.json``; empty when never started)."""
        try:
            return [int(p) for p in json.loads(self.state_file.read_text())["ports"]]
        except (OSError, ValueError, KeyError, TypeError):
            return []

    def _bus_ports(self) -> list[int]:
        try:
            return [int(p) for p in json.loads(self.state_file.read_text())["bus_ports"]]
        except (OSError, ValueError, KeyError, TypeError):
            return []

    @property
    def url(self) -> str:
        """``redis+cluster://127.0.0.1:p1,127.0.0.1:p2,…/0`` (the dedup backend's cluster URL)."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports()) + "/0"

    def running(self) -> bool:
        ports = self.ports()
        return bool(ports) and all(_state(p) == "ok" for p in ports)

    def start(self, timeout_s: float = 30.0) -> bool:
        """Start and join the nodes; False when this data dir's cluster already answers ok."""
        if self.masters < 3:
            raise DevRedisError(f"a Redis Cluster needs at least 3 masters, got {self.masters}")
        if self.running():
            return False
        self.stop()
        server, cli = _exe("redis-server"), _exe("redis-cli")
        found = free_ports(2 * self.masters)
        ports, bus = found[: self.masters], found[self.masters :]
        self.home.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps({"ports": ports, "bus_ports": bus}))
        for i in range(self.masters):
            self._launch(server, i, ports[i], bus[i])
        self._wait(
            lambda: all(_state(p) is not None for p in ports), timeout_s, "the nodes to answer"
        )
        nodes = [f"127.0.0.1:{p}" for p in ports]
        done = subprocess.run(
            [cli, "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
        if done.returncode != 0:
            self.stop()
            raise DevRedisError(
                f"redis-cli --cluster create failed: {done.stdout[-300:]}{done.stderr[-300:]}"
            )
        self._wait(self.running, timeout_s, "cluster_state:ok on every node")
        return True

    def _launch(self, server: str, i: int, port: int, bus_port: int) -> None:
        node = self.home / f"node-{i}"
        node.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                server,
                "--port",
                str(port),
                "--cluster-port",
                str(bus_port),
                "--bind",
                "127.0.0.1",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                str(self.node_timeout_ms),
                "--daemonize",
                "yes",
                "--pidfile",
                str(node / "redis.pid"),
                "--dir",
                str(node),
                "--logfile",
                str(node / "redis.log"),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            check=True,
            capture_output=True,
        )

    def _wait(self, ready: Any, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if ready():
                return
            time.sleep(0.1)
        raise DevRedisError(f"dev Redis Cluster: timed out waiting for {what}; logs in {self.home}")

    def pid(self, node: int) -> int | None:
        """The pid of node ``node`` (0-based), if it runs."""
        try:
            pid = int((self.home / f"node-{node}" / "redis.pid").read_text().strip())
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if b"redis-server" in cmd else None

    def kill(self, node: int) -> None:
        """SIGKILL one node (a master dies without a goodbye)."""
        pid = self.pid(node)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            self._gone(pid, 10.0)

    def restart(self, node: int, timeout_s: float = 30.0) -> None:
        """Start a stopped node again on its ports; wait until the cluster is ok everywhere."""
        ports, bus = self.ports(), self._bus_ports()
        if self.pid(node) is None:
            self._launch(_exe("redis-server"), node, ports[node], bus[node])
        self._wait(self.running, timeout_s, "cluster_state:ok after the restart")

    def stop(self, timeout_s: float = 10.0) -> bool:
        """Stop every node and forget the cluster (its data is not kept); False if none ran."""
        pids = [
            p
            for p in (self.pid(i) for i in range(len(self.ports()) or self.masters))
            if p is not None
        ]
        for pid in pids:
            os.kill(pid, signal.SIGTERM)
        for pid in pids:
            self._gone(pid, timeout_s)
        if self.home.exists():
            for node in self.home.glob("node-*"):
                shutil.rmtree(node, ignore_errors=True)
            self.state_file.unlink(missing_ok=True)
        return bool(pids)

    @staticmethod
    def _gone(pid: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if b"redis-server" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                    return  # gone, or a zombie nobody has reaped yet
            except OSError:
                return
            time.sleep(0.05)

    def status(self) -> dict[str, Any]:
        """Each node's port, pid and ``cluster_state``; ``running`` when all say ok."""
        ports = self.ports()
        nodes = [
            {"node": i, "port": p, "pid": self.pid(i), "cluster_state": _state(p)}
            for i, p in enumerate(ports)
        ]
        return {
            "running": bool(nodes) and all(n["cluster_state"] == "ok" for n in nodes),
            "url": self.url if ports else None,
            "data_dir": str(self.home),
            "nodes": nodes,
        }
