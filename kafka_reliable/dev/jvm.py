"""Start one Apache Kafka JVM (broker, controller or combined node) detached from this process:
the command line, its log file and its pid file. Shared by the dev broker and the dev cluster."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path


def spawn_kafka(
    *,
    java: str,
    classpath: str,
    heap_mb: int,
    initial_heap_mb: int,
    flags: Sequence[str],
    home: Path,
    config_file: Path,
    log_file: Path,
    pid_file: Path,
) -> subprocess.Popen[bytes]:
    """``kafka.Kafka <config>`` in its own session (it outlives the CLI), output to ``log_file``,
    its pid written to ``pid_file``."""
    cmd = [
        java,
        f"-Xmx{heap_mb}m",
        f"-Xms{initial_heap_mb}m",
        *flags,
        f"-Dlog4j2.configurationFile={home / 'log4j2.properties'}",
        "-cp",
        classpath,
        "kafka.Kafka",
        str(config_file),
    ]
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    pid_file.write_text(str(proc.pid))
    return proc
