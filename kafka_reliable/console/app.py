"""The console's ASGI app: FastAPI, server-rendered Jinja2 pages, errors as pages.

Any error becomes a page (or, for ``.json`` paths, a JSON object) with one clear line: input
the console cannot use -> 400, missing rights -> 401/403, the cluster failing -> 502,
anything else -> 500 with the details in the console's own log, never in the response.
"""

from __future__ import annotations

import getpass
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException

from kafka_reliable import __version__
from kafka_reliable.console.actions import Jobs
from kafka_reliable.console.auth import Auth, Refused
from kafka_reliable.console.cluster import Cluster
from kafka_reliable.console.paging import ConsoleInputError
from kafka_reliable.console.settings import ConsoleSettings
from kafka_reliable.errors import KafkaReliableError

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))


def _iso(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


templates.env.filters["iso"] = _iso
templates.env.filters["thousands"] = lambda n: f"{n:,}" if isinstance(n, int) else n


def operator() -> str:
    """Who this console acts as, for the audit header: ``console:<user>@<host>``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"console:{user}@{socket.gethostname()}"


def render(request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    app = request.app
    auth: Auth = app.state.auth
    base = {
        "request": request,
        "read_only": not auth.enabled,
        "logged_in": auth.session(request) is not None,
        "csrf": auth.csrf(request),
        "version": __version__,
    }
    return templates.TemplateResponse(request, name, {**base, **ctx}, status_code=status)


def error_response(request: Request, status: int, message: str) -> Response:
    if request.url.path.endswith(".json"):
        return JSONResponse({"error": message}, status_code=status)
    return render(request, "error.html", status=status, message=message, status_code=status)


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(ConsoleInputError)
    async def _input(request: Request, exc: ConsoleInputError) -> Response:
        return error_response(request, 400, str(exc))

    @app.exception_handler(Refused)
    async def _refused(request: Request, exc: Refused) -> Response:
        return error_response(request, exc.status, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ())[1:]) or "request"
        return error_response(request, 400, f"bad {where}: {first.get('msg', 'invalid value')}")

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        text = "no such page" if exc.status_code == 404 else str(exc.detail)
        return error_response(request, exc.status_code, text)

    @app.exception_handler(KafkaReliableError)
    async def _ours(request: Request, exc: KafkaReliableError) -> Response:
        return error_response(request, 502, str(exc))

    @app.exception_handler(KafkaException)
    async def _kafka(request: Request, exc: KafkaException) -> Response:
        err: Any = exc.args[0] if exc.args else None
        text = f"{err.name()}: {err.str()}" if hasattr(err, "str") else "Kafka error"
        return error_response(request, 502, f"Kafka: {text}")

    @app.exception_handler(Exception)
    async def _other(request: Request, exc: Exception) -> Response:
        log.exception("console: %s %s failed", request.method, request.url.path)
        return error_response(
            request,
            500,
            f"internal error ({type(exc).__name__}); the details are in the console's log",
        )


def create_app(settings: ConsoleSettings) -> FastAPI:
    """The console app over the cluster ``settings.conf`` names."""
    from kafka_reliable.console import pages, posts

    cluster = Cluster(settings.conf, timeout_s=settings.timeout_s)
    jobs = Jobs(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        jobs.stop_all()  # a redrive stopped at shutdown has committed what it sent
        cluster.close()

    app = FastAPI(
        title="kafka-reliable console",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.cluster = cluster
    app.state.auth = Auth(settings.token)
    app.state.jobs = jobs
    app.state.operator = operator()
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(pages.router)
    app.include_router(posts.router)
    _install_handlers(app)
    return app
