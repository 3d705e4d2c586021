"""One node of the dev cluster: its files and ports, and its JVM process."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from kafka_reliable.dev.broker import DevBroker, DevBrokerError
from kafka_reliable.dev.jvm import spawn_kafka
from kafka_reliable.dev.ports import port_free, port_holder

_JVM_FLAGS = [
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:ActiveProcessorCount=2",
    "-Xss512k",
    "-XX:MaxMetaspaceSize=128m",
    "-Djava.awt.headless=true",
]


@dataclass(frozen=True, kw_only=True)
class NodeSpec:
    node_id: int
    role: str  # "broker" | "controller"
    port: int  # client port (brokers) or controller port
    internal_port: int | None
    home: Path

    @property
    def config_file(self) -> Path:
        return self.home / "server.properties"

    @property
    def pid_file(self) -> Path:
        return self.home / "node.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "node.log"


def node_pid(n: NodeSpec) -> int | None:
    """The pid of the node's JVM, None when it does not run (or the pid file is stale)."""
    try:
        pid = int(n.pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (OSError, ValueError):
        return None
    if (
        "kafka.Kafka" not in cmdline
        or str(n.config_file) not in cmdline
        or not DevBroker._alive(pid)
    ):
        return None
    return pid


def process_state(pid: int | None) -> str:
    """``running``, ``paused`` (SIGSTOPped) or ``stopped``."""
    if pid is None:
        return "stopped"
    try:
        st = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "stopped"
    return "paused" if st in {"T", "t"} else "running"


def spawn(n: NodeSpec, java: str, classpath: str, heap: int) -> None:
    """Start the node's JVM with ``heap`` MB; return once it has exec'd java."""
    proc = spawn_kafka(
        java=java,
        classpath=classpath,
        heap_mb=heap,
        initial_heap_mb=min(heap, 128),
        flags=_JVM_FLAGS,
        home=n.home,
        config_file=n.config_file,
        log_file=n.log_file,
        pid_file=n.pid_file,
    )
    deadline = time.monotonic() + 10
    while node_pid(n) is None and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)  # until the child has exec'd java (its cmdline names the config)


def stop_process(pid: int, timeout_s: float) -> None:
    """SIGTERM (after SIGCONT: a paused node cannot shut down); SIGKILL after ``timeout_s``."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGCONT)  # a paused node cannot shut down
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and DevBroker._alive(pid):
        time.sleep(0.1)
    if DevBroker._alive(pid):
        os.kill(pid, signal.SIGKILL)
        while DevBroker._alive(pid):
            time.sleep(0.05)


def check_ports_free(nodes: list[NodeSpec]) -> None:
    """DevBrokerError naming the first port of ``nodes`` another process listens on."""
    for n in nodes:
        for kind, port in (
            ("client" if n.role == "broker" else "controller", n.port),
            ("inter-broker", n.internal_port),
        ):
            if port is not None and not port_free(port):
                raise DevBrokerError(
                    f"port {port} (node {n.node_id}'s {kind} port) is in use by "
                    f"{port_holder(port)}: pick another --port or stop that process"
                )


def log4j2() -> str:
    from kafka_reliable.dev.broker import _LOG4J2

    return _LOG4J2
