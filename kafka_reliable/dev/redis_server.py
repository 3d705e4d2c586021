"""A local ``redis-server`` on loopback for development and tests (Debian's package)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from kafka_reliable.dev.broker import default_home
from kafka_reliable.errors import KafkaReliableError

#: Default port of the dev Redis.
DEFAULT_REDIS_PORT = 6379


class DevRedisError(KafkaReliableError):
    """The dev Redis could not be started or stopped."""


@dataclass(frozen=True, kw_only=True)
class DevRedis:
    port: int = DEFAULT_REDIS_PORT
    data_dir: Path | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def home(self) -> Path:
        return self.data_dir or default_home() / f"dev-redis-{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.home / "redis.pid"

    def answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis.from_url(self.url, socket_timeout=1.0).ping())
        except redis.RedisError:
            return False

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if b"redis-server" in cmd else None

    def start(self, timeout_s: float = 15.0) -> bool:
        """Start redis-server; False when one already answers on the port."""
        if self.answers():
            return False
        exe = shutil.which("redis-server")
        if exe is None:
            raise DevRedisError(
                "redis-server is not installed (Debian: apt-get install redis-server); "
                "or set REDIS_URL to an existing Redis."
            )
        self.home.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                exe,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--daemonize",
                "yes",
                "--pidfile",
                str(self.pid_file),
                "--dir",
                str(self.home),
                "--logfile",
                str(self.home / "redis.log"),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            check=True,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.answers():
                return True
            time.sleep(0.1)
        raise DevRedisError(
            f"redis-server did not answer on port {self.port}; see {self.home / 'redis.log'}"
        )

    def stop(self, timeout_s: float = 10.0) -> bool:
        pid = self.pid()
        if pid is None:
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            time.sleep(0.05)
        return True
