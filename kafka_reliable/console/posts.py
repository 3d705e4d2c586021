"""The mutating requests: login/logout, redrive (preview, run, stop) and purge (preview, run).

Each one needs the token's session and its CSRF token (:meth:`Auth.require`), except login.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from kafka_reliable.console.actions import (
    RedriveRequest,
    audit_log,
    check_target,
    parse_selection,
    purge_plan,
    purge_run,
)
from kafka_reliable.console.app import render
from kafka_reliable.console.auth import SESSION_COOKIE
from kafka_reliable.console.filters import FIELDS, FilterForm
from kafka_reliable.console.pages import checked_topic, safe_next
from kafka_reliable.console.paging import ConsoleInputError, parse_cursor
from kafka_reliable.dlq.replay import DEFAULT_MAX_REPLAYS
from kafka_reliable.dlq.timespec import parse_time

router = APIRouter()

#: Highest accepted redrive rate (records/s); empty means as fast as the cluster takes them.
MAX_RATE_PER_S = 1_000_000.0


async def _form(request: Request) -> tuple[dict[str, str], list[str]]:
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    return fields, [v for v in form.getlist("sel") if isinstance(v, str)]


async def _authorized(request: Request) -> tuple[dict[str, str], list[str]]:
    fields, sel = await _form(request)
    request.app.state.auth.require(request, fields.get("csrf"))
    return fields, sel


@router.post("/login")
async def login(request: Request) -> Response:
    fields, _ = await _form(request)
    auth = request.app.state.auth
    sid = auth.login(fields.get("token", ""))
    nxt = safe_next(fields.get("next", "/"))
    if sid is None:
        audit_log.info(
            "console login refused from %s", request.client.host if request.client else "?"
        )
        msg = (
            "this console is read-only (no token configured)" if not auth.enabled else "wrong token"
        )
        return render(
            request,
            "login.html",
            status=401 if auth.enabled else 403,
            next=nxt,
            failed=True,
            message=msg,
        )
    audit_log.info("console login from %s", request.client.host if request.client else "?")
    resp = RedirectResponse(nxt, status_code=303)
    resp.set_cookie(SESSION_COOKIE, sid, httponly=True, samesite="strict", path="/")
    return resp


@router.post("/logout")
async def logout(request: Request) -> Response:
    await _authorized(request)
    request.app.state.auth.logout(request)
    resp = RedirectResponse("/", status_code=303)
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp


def _rate(text: str | None) -> float | None:
    if not text:
        return None
    try:
        rate = float(text)
    except ValueError:
        raise ConsoleInputError(
            f"rate must be a number of records per second, got {text!r}"
        ) from None
    if not 0 < rate <= MAX_RATE_PER_S:
        raise ConsoleInputError(f"rate must be > 0 and <= {MAX_RATE_PER_S:g} records/s, got {text}")
    return rate


def _max_replays(text: str | None) -> int:
    if not text:
        return DEFAULT_MAX_REPLAYS
    if not text.isdigit() or not 1 <= int(text) <= 1000:
        raise ConsoleInputError(f"loop guard (max replays) must be 1..1000, got {text!r}")
    return int(text)


def redrive_request(
    request: Request, topic: str, fields: dict[str, str], sel: list[str]
) -> RedriveRequest:
    cluster = request.app.state.cluster
    checked_topic(cluster, topic)
    mode = fields.get("mode", "selected")
    if mode not in ("selected", "filter"):
        raise ConsoleInputError(f"mode must be selected or filter, got {mode!r}")
    to_topic = (fields.get("to_topic") or "").strip() or None
    check_target(cluster, to_topic, topic)
    selected = parse_selection(sel) if mode == "selected" else None
    return RedriveRequest(
        topic=topic,
        selected=selected,
        flt=FilterForm.from_fields(fields).to_filter(),
        to_topic=to_topic,
        rate_per_s=_rate(fields.get("rate")),
        max_replays=_max_replays(fields.get("max_replays")),
        by=request.app.state.operator,
        from_source=fields.get("from_source") == "on",
        fields=tuple(
            (k, fields[k])
            for k in (*FIELDS, "to_topic", "rate", "max_replays", "mode", "from_source")
            if fields.get(k)
        )
        + tuple(("sel", v) for v in sel),
    )


@router.post("/dlq/{topic}/redrive")
async def redrive(request: Request, topic: str) -> Response:
    fields, sel = await _authorized(request)
    step = fields.get("step", "preview")
    if step not in ("preview", "run"):
        raise ConsoleInputError(f"step must be preview or run, got {step!r}")
    req = redrive_request(request, topic, fields, sel)
    job = request.app.state.jobs.start(step if step == "preview" else "redrive", req)
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)


@router.post("/jobs/{job_id}/stop")
async def stop_job(request: Request, job_id: str) -> Response:
    await _authorized(request)
    job = request.app.state.jobs.get(job_id)
    if job is None:
        raise ConsoleInputError(f"no job {job_id!r}")
    job.stop.set()
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)


@router.post("/dlq/{topic}/purge")
async def purge(request: Request, topic: str) -> Response:
    fields, _ = await _authorized(request)
    settings = request.app.state.settings
    checked_topic(request.app.state.cluster, topic)
    before_text = (fields.get("before") or "").strip()
    try:
        before_ms = parse_time(before_text) if before_text else None
    except ValueError as exc:
        raise ConsoleInputError(f"before: {exc}") from None
    if fields.get("step", "preview") == "preview":
        cuts = purge_plan(settings, topic, before_ms)
        count = sum(cut - lo for lo, cut in cuts.values())
        cursor = ",".join(f"{p}:{cut}" for p, (_lo, cut) in sorted(cuts.items()))
        return render(
            request,
            "purge.html",
            topic=topic,
            cuts=cuts,
            count=count,
            cursor=cursor,
            before=before_text,
            done=None,
        )
    cuts_in = parse_cursor(fields.get("cuts"))
    if not cuts_in:
        raise ConsoleInputError("purge run without the previewed cuts: preview first")
    deleted = purge_run(
        settings, topic, {p: (0, c) for p, c in cuts_in.items()}, request.app.state.operator
    )
    return render(
        request,
        "purge.html",
        topic=topic,
        cuts={},
        count=0,
        cursor="",
        before=before_text,
        done=deleted,
    )
