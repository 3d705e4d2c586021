"""The read-only pages: overview, records, record, job progress, export, login."""

from __future__ import annotations

import json
from collections.abc import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

from kafka_reliable.console import overview, record_view, samples
from kafka_reliable.console.actions import audit_log
from kafka_reliable.console.app import render
from kafka_reliable.console.cluster import Cluster
from kafka_reliable.console.filters import FilterForm
from kafka_reliable.console.paging import ConsoleInputError, read_page
from kafka_reliable.console.settings import ConsoleSettings
from kafka_reliable.dlq.model import DlqMessage
from kafka_reliable.dlq.reader import DlqReader, RangeReader
from kafka_reliable.dlq.targets import topic_name_problem

router = APIRouter()


def _ctx(request: Request) -> tuple[ConsoleSettings, Cluster]:
    return request.app.state.settings, request.app.state.cluster


def checked_topic(cluster: Cluster, topic: str) -> str:
    """``topic`` when it is a legal name of an existing topic, else ConsoleInputError."""
    problem = topic_name_problem(topic)
    if problem is not None:
        raise ConsoleInputError(problem)
    if not cluster.exists(topic):
        raise ConsoleInputError(f"topic {topic} does not exist")
    return topic


def _int(text: str | None, name: str, default: int, lo: int, hi: int) -> int:
    if text in (None, ""):
        return default
    try:
        value = int(str(text))
    except ValueError:
        raise ConsoleInputError(f"{name} must be a whole number, got {text!r}") from None
    if not lo <= value <= hi:
        raise ConsoleInputError(f"{name} must be in {lo}..{hi}, got {value}")
    return value


def safe_next(target: str) -> str:
    """A local path to go to after login (never another site)."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


@router.get("/", response_class=HTMLResponse)
def overview_page(request: Request, q: str = "") -> Response:
    settings, cluster = _ctx(request)
    dlqs = overview.find_dlqs(cluster, settings, q)
    retries = overview.find_retry_topics(cluster, settings, q)
    return render(
        request,
        "overview.html",
        dlqs=dlqs,
        retries=retries,
        q=q,
        spool=overview.spool_summary(settings.spool_path),
        bootstrap=settings.conf.get("bootstrap.servers", ""),
    )


@router.get("/fragments/dlq/{topic}", response_class=HTMLResponse)
def dlq_fragment(request: Request, topic: str) -> Response:
    _settings, cluster = _ctx(request)
    sample = samples.sample_dlq(cluster, checked_topic(cluster, topic))
    return render(request, "_dlq_sample.html", s=sample)


@router.get("/fragments/retry/{topic}", response_class=HTMLResponse)
def retry_fragment(request: Request, topic: str, group: str) -> Response:
    _settings, cluster = _ctx(request)
    head = samples.retry_head(cluster, checked_topic(cluster, topic), group)
    return render(request, "_retry_head.html", r=head)


@router.get("/dlq/{topic}", response_class=HTMLResponse)
def records_page(request: Request, topic: str) -> Response:
    settings, cluster = _ctx(request)
    checked_topic(cluster, topic)
    qp = request.query_params
    form = FilterForm.from_fields(qp)
    order = qp.get("order") or "newest"
    if order not in ("newest", "oldest"):
        raise ConsoleInputError(f"order must be newest or oldest, got {order!r}")
    size = _int(qp.get("size"), "page size", settings.page_size, 1, 500)
    page = read_page(
        cluster,
        topic,
        flt=form.to_filter(),
        newest_first=order == "newest",
        cursor=qp.get("after"),
        size=size,
        scan_budget=settings.scan_budget,
    )
    return render(
        request,
        "records.html",
        topic=topic,
        page=page,
        form=form,
        order=order,
        size=size,
        cursor=qp.get("after") or "",
    )


@router.get("/dlq/{topic}/record/{partition}/{offset}", response_class=HTMLResponse)
def record_page(request: Request, topic: str, partition: str, offset: str) -> Response:
    settings, cluster = _ctx(request)
    checked_topic(cluster, topic)
    p = _int(partition, "partition", 0, 0, 1 << 31)
    o = _int(offset, "offset", 0, 0, 1 << 62)
    m = _read_one(cluster, topic, p, o)
    view = record_view.build(m, settings.schema_registry_url)
    return render(
        request,
        "record.html",
        topic=topic,
        v=view,
        m=m,
        key_query=FilterForm(values={"key": m.key_text() or ""}).query()
        if m.key is not None
        else None,
    )


def _read_one(cluster: Cluster, topic: str, partition: int, offset: int) -> DlqMessage:
    wm = cluster.watermarks([topic]).get(topic, {})
    if partition not in wm:
        raise ConsoleInputError(f"topic {topic} has no partition {partition}")
    lo, hi = wm[partition]
    if not lo <= offset < hi:
        raise ConsoleInputError(
            f"offset {offset} is out of range: partition {partition} of {topic} "
            f"holds offsets {lo}..{hi - 1}"
            if hi > lo
            else f"offset {offset} is out of range: partition {partition} of {topic} is empty"
        )
    with cluster.reading() as consumer:
        for msg in RangeReader(consumer, topic, {partition: (offset, offset + 1)}):
            return DlqMessage.from_record(msg)
    raise ConsoleInputError(f"record {partition}:{offset} of {topic} is no longer there")


@router.get("/dlq/{topic}/export.jsonl")
def export(request: Request, topic: str) -> Response:
    settings, cluster = _ctx(request)
    checked_topic(cluster, topic)
    flt = FilterForm.from_fields(request.query_params).to_filter()
    audit_log.info(
        "console export by=%r topic=%s filter=%s",
        request.app.state.operator,
        topic,
        flt.identity() if flt else {},
    )

    def lines() -> Iterator[str]:
        for m in DlqReader(settings.conf, timeout_s=settings.timeout_s).iter_messages(topic, flt):
            yield json.dumps(m.to_json(), ensure_ascii=False) + "\n"

    headers = {"Content-Disposition": f'attachment; filename="{topic}.jsonl"'}
    return StreamingResponse(lines(), media_type="application/x-ndjson", headers=headers)


@router.get("/jobs/{job_id}.json")
def job_json(request: Request, job_id: str) -> Response:
    job = request.app.state.jobs.get(job_id)
    if job is None:
        raise ConsoleInputError(f"no job {job_id!r}")
    return JSONResponse(job.progress())


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, job_id: str) -> Response:
    job = request.app.state.jobs.get(job_id)
    if job is None:
        raise ConsoleInputError(f"no job {job_id!r} (jobs are kept while the console runs)")
    return render(request, "job.html", job=job, req=job.request, r=job.result)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> Response:
    return render(request, "login.html", next=safe_next(next), failed=False)


@router.get("/healthz")
def healthz() -> Response:
    return JSONResponse({"status": "ok"})
