"""The ``/metrics`` HTTP endpoint: serves any registry (the producer's, the worker's, the
consumer's).

The collectors themselves live with their part: ``producer/metrics.py``, ``worker/metrics.py``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, start_http_server


@dataclass
class MetricsServer:
    """A running ``/metrics`` endpoint: ``port`` is the bound port (useful with port 0)."""

    server: Any
    thread: threading.Thread
    addr: str
    port: int

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.addr in ("0.0.0.0", "") else self.addr
        return f"http://{host}:{self.port}/metrics"

    def shutdown(self) -> None:
        """Stop serving and release the port."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_metrics_server(
    port: int, *, registry: CollectorRegistry | None = None, addr: str = "0.0.0.0"
) -> MetricsServer:
    """Serve ``registry`` (default: the global one) on ``http://addr:port/metrics`` in a daemon
    thread.

    ``port=0`` picks a free port; read it from the returned ``MetricsServer.port``. Call
    ``.shutdown()`` to stop it.
    """
    server, thread = start_http_server(
        port, addr=addr, registry=registry if registry is not None else REGISTRY
    )
    return MetricsServer(server=server, thread=thread, addr=addr, port=int(server.server_port))
