"""``kafka-reliable console``: a small web app over the DLQ tools (docs/console.md).

Server-rendered pages (FastAPI + Jinja2, a little plain JavaScript): an overview of every DLQ,
retry topic and the spool; record lists with filters, read from the watermarks inward; record
details decoded per dialect; redrive (dry-run first, audit headers) and purge. Loopback by
default; read-only without a token. Needs the ``console`` extra (fastapi, uvicorn, jinja2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kafka_reliable.console.settings import ConsoleSettings

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["ConsoleSettings", "create_app"]


def create_app(settings: ConsoleSettings) -> FastAPI:
    """The ASGI app (FastAPI); imported lazily so the library works without the extra."""
    from kafka_reliable.console.app import create_app as _create

    return _create(settings)
