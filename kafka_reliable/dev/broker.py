"""A real single-node Apache Kafka (KRaft) for machines without Docker.

The broker's jars are resolved from Maven Central with ``mvn dependency:copy-dependencies``
into a cache folder once; later starts reuse them. The broker runs combined
broker+controller on loopback, in the background, with a pid file and a log file.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from kafka_reliable.dev.jvm import spawn_kafka
from kafka_reliable.errors import KafkaReliableError

#: The one Apache Kafka release used everywhere (dev broker, docker-compose, CI).
KAFKA_VERSION = "4.4.0"
#: log4j2 bridge shipped with Kafka 4.x distributions (slf4j 1.x binding).
LOG4J_VERSION = "2.24.3"
#: Default client port of the dev broker.
DEFAULT_PORT = 9092
#: Seconds ``start`` waits for a metadata answer before giving up.
START_TIMEOUT_S = 90.0

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.kafka-reliable</groupId>
  <artifactId>dev-broker</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>{kafka}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>{log4j}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>{log4j}</version></dependency>
  </dependencies>
</project>
"""

_LOG4J2 = """status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = WARN
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
logger.started.name = kafka.server.KafkaRaftServer
logger.started.level = INFO
"""


class DevBrokerError(KafkaReliableError):
    """The dev broker could not be set up, started or stopped."""


def default_home() -> Path:
    """Cache and data root: ``$KAFKA_RELIABLE_HOME`` or ``~/.cache/kafka-reliable``."""
    env = os.environ.get("KAFKA_RELIABLE_HOME")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "kafka-reliable"


@dataclass(frozen=True, kw_only=True)
class DevBroker:
    """One dev broker instance: where its jars, data, pid and log live, and its ports."""

    port: int = DEFAULT_PORT
    controller_port: int | None = None
    data_dir: Path | None = None
    cache_dir: Path | None = None
    heap_mb: int = 768

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def libs_dir(self) -> Path:
        return (self.cache_dir or default_home() / "jars") / f"kafka-{KAFKA_VERSION}" / "libs"

    @property
    def home(self) -> Path:
        return self.data_dir or default_home() / f"dev-broker-{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.home / "broker.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "broker.log"

    @property
    def config_file(self) -> Path:
        return self.home / "server.properties"

    # ---- jars -------------------------------------------------------------------------

    def ensure_jars(self) -> Path:
        """Resolve the broker's jars with Maven on first use; reuse them afterwards."""
        marker = self.libs_dir / ".complete"
        if marker.exists():
            return self.libs_dir
        if shutil.which("mvn") is None:
            raise DevBrokerError(
                "Maven ('mvn') is not on PATH; it is needed once to fetch the Apache Kafka "
                f"{KAFKA_VERSION} jars. Install Maven or set KAFKA_BOOTSTRAP_SERVERS "
                "to an existing cluster."
            )
        work = self.libs_dir.parent
        work.mkdir(parents=True, exist_ok=True)
        (work / "pom.xml").write_text(_POM.format(kafka=KAFKA_VERSION, log4j=LOG4J_VERSION))
        tmp = work / "libs.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        cmd = [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(work / "pom.xml"),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={tmp}",
            "-DincludeScope=runtime",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr)[-3000:]
            raise DevBrokerError(f"mvn could not resolve Apache Kafka {KAFKA_VERSION}:\n{tail}")
        shutil.rmtree(self.libs_dir, ignore_errors=True)
        tmp.rename(self.libs_dir)
        marker.write_text(KAFKA_VERSION)
        return self.libs_dir

    # ---- config -----------------------------------------------------------------------

    def _controller_port(self) -> int:
        return self.controller_port or self.port + 1

    def _write_config(self) -> None:
        data = self.home / "data"
        data.mkdir(parents=True, exist_ok=True)
        cport = self._controller_port()
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{cport}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{cport}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(data),
            "num.partitions": "1",
            "default.replication.factor": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "4",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "auto.create.topics.enable": "false",
            "group.initial.rebalance.delay.ms": "0",
            "log.retention.check.interval.ms": "10000",
            "delete.topic.enable": "true",
        }
        self.config_file.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        (self.home / "log4j2.properties").write_text(_LOG4J2)

    def _java(self) -> str:
        java_home = os.environ.get("JAVA_HOME")
        java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
        if not java or not Path(java).exists():
            raise DevBrokerError(
                "Java 17+ is needed for the dev broker and was not found (JAVA_HOME or PATH)."
            )
        return java

    def _format_storage(self, java: str, classpath: str) -> None:
        if (self.home / "data" / "meta.properties").exists():
            return
        cmd = [
            java,
            "-cp",
            classpath,
            "kafka.tools.StorageTool",
            "format",
            "--standalone",
            # "=" form: a base64 id may start with "-", which argparse would take for an option
            "--cluster-id=" + base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode(),
            "-c",
            str(self.config_file),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise DevBrokerError(
                f"formatting the broker storage failed:\n{(proc.stdout + proc.stderr)[-3000:]}"
            )

    # ---- process ----------------------------------------------------------------------

    def pid(self) -> int | None:
        """The pid of the broker this launcher started, if it is still that process."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            return None
        if "kafka.Kafka" not in cmdline or str(self.config_file) not in cmdline:
            return None
        return pid

    def is_running(self) -> bool:
        return self.pid() is not None

    def answers(self, timeout_s: float = 3.0) -> bool:
        """True when a metadata request from confluent-kafka succeeds."""
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.bootstrap_servers, "log_level": 0})
        try:
            admin.list_topics(timeout=timeout_s)
            return True
        except KafkaException:
            return False

    def start(self, timeout_s: float = START_TIMEOUT_S) -> bool:
        """Start the broker; return False when it was already running (a no-op)."""
        if self.is_running():
            self._wait_ready(timeout_s)
            return False
        java = self._java()
        classpath = str(self.ensure_jars() / "*")
        self.home.mkdir(parents=True, exist_ok=True)
        self._write_config()
        self._format_storage(java, classpath)
        proc = spawn_kafka(
            java=java,
            classpath=classpath,
            heap_mb=self.heap_mb,
            initial_heap_mb=min(self.heap_mb, 256),
            flags=("-XX:+UseG1GC", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true"),
            home=self.home,
            config_file=self.config_file,
            log_file=self.log_file,
            pid_file=self.pid_file,
        )
        self._wait_ready(timeout_s, proc)
        return True

    def _wait_ready(self, timeout_s: float, proc: subprocess.Popen[bytes] | None = None) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise DevBrokerError(
                    f"the broker exited with code {proc.returncode}; log tail:\n{self.log_tail()}"
                )
            if self.answers(timeout_s=2.0):
                return
            time.sleep(0.3)
        raise DevBrokerError(
            f"the broker did not answer on {self.bootstrap_servers} within {timeout_s:.0f} s; "
            f"log tail:\n{self.log_tail()}"
        )

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Stop the broker this launcher started; return False when none was running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self._alive(pid):
            time.sleep(0.2)
        if self._alive(pid):
            os.kill(pid, signal.SIGKILL)
            while self._alive(pid):
                time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)
        return True

    @staticmethod
    def _alive(pid: int) -> bool:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap our own child so it does not linger as a zombie
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split()[2]
        except (OSError, IndexError):
            return False
        return state != "Z"

    def status(self) -> dict[str, object]:
        pid = self.pid()
        return {
            "running": pid is not None,
            "answers": self.answers(timeout_s=2.0) if pid else False,
            "pid": pid,
            "bootstrap_servers": self.bootstrap_servers,
            "kafka_version": KAFKA_VERSION,
            "data_dir": str(self.home),
            "log_file": str(self.log_file),
            "jars_cached": (self.libs_dir / ".complete").exists(),
        }

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log file)"


if __name__ == "__main__":  # pragma: no cover - convenience for scripts
    b = DevBroker()
    print(b.start() and "started" or "already running", b.bootstrap_servers, file=sys.stderr)
