"""Loopback ports of the dev servers: free to bind, who holds one, does one answer."""

from __future__ import annotations

import socket


def port_free(port: int) -> bool:
    """Whether a server could bind ``port`` on loopback now (as the broker does)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def port_holder(port: int) -> str:
    """Who listens on ``port``: ``pid 123 (Kafka node, config /…/server.properties)`` or
    ``pid 123 (python3 …)``; ``another process`` when the system does not say."""
    import psutil

    try:
        pids = {
            c.pid
            for c in psutil.net_connections(kind="tcp")
            if c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN and c.pid
        }
    except (psutil.Error, OSError):
        pids = set()
    for pid in sorted(pids):
        try:
            cmd = psutil.Process(pid).cmdline()
        except psutil.Error:
            continue
        if "kafka.Kafka" in cmd:
            return f"pid {pid} (Kafka node, config {cmd[-1]})"
        return f"pid {pid} ({' '.join(cmd)[:80]})"
    return "another process"


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0
