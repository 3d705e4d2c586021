"""Redrive and purge, as background jobs the pages follow; every action logged as one line.

A redrive is a :class:`~kafka_reliable.dlq.replay.Replayer` run (dry-run for the preview):
the same loop guard, rate limit, skips with reasons and resumable progress as ``kafka-reliable
dlq replay``, plus the audit headers ``kafka_reliable.redrive.by/.at/.from`` on every record.
A purge deletes exactly the prefix its preview showed (``delete_records`` up to those offsets).
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from kafka_reliable.console.cluster import Cluster
from kafka_reliable.console.filters import FIELDS
from kafka_reliable.console.paging import ConsoleInputError
from kafka_reliable.console.settings import ConsoleSettings
from kafka_reliable.dlq.maintenance import Cuts, DlqMaintenance
from kafka_reliable.dlq.reader import DlqError, DlqFilter
from kafka_reliable.dlq.replay import Replayer, ReplayOptions, ReplayResult
from kafka_reliable.dlq.targets import topic_name_problem
from kafka_reliable.errors import KafkaReliableError

log = logging.getLogger(__name__)
#: One line per action (who, what, on which topic, the outcome), at INFO whatever the CLI level.
audit_log = logging.getLogger("kafka_reliable.console.audit")
audit_log.setLevel(logging.INFO)

#: Jobs remembered (the oldest finished ones are dropped first).
MAX_JOBS = 200
#: Selected records one redrive may name.
MAX_SELECTED = 10_000


@dataclass(frozen=True, kw_only=True)
class RedriveRequest:
    """What to redrive: ``selected`` coordinates, or every record matching ``flt``."""

    topic: str
    selected: frozenset[tuple[int, int]] | None
    flt: DlqFilter | None
    to_topic: str | None
    rate_per_s: float | None
    max_replays: int
    by: str
    #: Resend the original re-read from its topic (headers-only DLQ records, e.g. share groups).
    from_source: bool = False
    #: The form fields that made this request (filter, target, rate), to post it again as a run.
    fields: tuple[tuple[str, str], ...] = ()

    def options(self, *, dry_run: bool) -> ReplayOptions:
        flt = dataclasses.replace(self.flt or DlqFilter(), coordinates=self.selected)
        return ReplayOptions(
            filter=flt,
            to_topic=self.to_topic,
            rate_per_s=self.rate_per_s,
            max_replays=self.max_replays,
            dry_run=dry_run,
            audit_by=self.by,
            from_source=self.from_source,
        )

    def describe(self) -> str:
        """One line: which records, of which DLQ, to where."""
        if self.selected is not None:
            what = f"{len(self.selected)} selected"
        else:
            shown = [f"{k}={v}" for k, v in self.fields if k in FIELDS]
            what = "all matching " + " ".join(shown) if shown else "all"
        to = self.to_topic or "original topics"
        source = " (originals re-read from their topics)" if self.from_source else ""
        return f"{what} of {self.topic} -> {to}{source}"


@dataclass(kw_only=True)
class Job:
    id: str
    kind: str  # preview | redrive
    request: RedriveRequest
    state: str = "running"  # running | done | failed | stopped
    result: ReplayResult | None = None
    error: str | None = None
    started_s: float = field(default_factory=time.time)
    finished_s: float | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    def progress(self) -> dict[str, Any]:
        r = self.result
        total = r.pending_at_start if r is not None else 0
        done = r.scanned if r is not None else 0
        return {
            "id": self.id,
            "kind": self.kind,
            "state": self.state,
            "error": self.error,
            "scanned": done,
            "total": total,
            "replayed": r.replayed if r is not None else 0,
            "percent": 100
            if self.state != "running"
            else (int(100 * done / total) if total else 0),
        }


def parse_selection(values: list[str]) -> frozenset[tuple[int, int]]:
    """``["0:12", "1:40"]`` -> coordinates; ConsoleInputError naming a bad one."""
    if len(values) > MAX_SELECTED:
        raise ConsoleInputError(
            f"at most {MAX_SELECTED} records can be selected, got {len(values)}"
        )
    out = set()
    for v in values:
        p, sep, o = v.partition(":")
        if not sep or not p.isdigit() or not o.isdigit():
            raise ConsoleInputError(f"bad record selection {v!r} (expected partition:offset)")
        out.add((int(p), int(o)))
    if not out:
        raise ConsoleInputError(
            "no record selected: tick records in the list, or redrive all matching"
        )
    return frozenset(out)


def check_target(cluster: Cluster, to_topic: str | None, dlq_topic: str) -> None:
    if to_topic is None:
        return
    problem = topic_name_problem(to_topic)
    if problem is None and to_topic == dlq_topic:
        problem = "it is the DLQ itself"
    if problem is None and not cluster.exists(to_topic):
        problem = f"topic {to_topic} does not exist (create it first)"
    if problem is not None:
        raise ConsoleInputError(f"cannot redrive to {to_topic!r}: {problem}")


class Jobs:
    """Redrive jobs of this console process, each on its own thread."""

    def __init__(self, settings: ConsoleSettings) -> None:
        self._settings = settings
        self._jobs: dict[str, Job] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def start(self, kind: str, req: RedriveRequest) -> Job:
        job = Job(id=f"{next(self._ids)}-{int(time.time())}", kind=kind, request=req)
        with self._lock:
            self._jobs[job.id] = job
            finished = [j.id for j in self._jobs.values() if j.state != "running"]
            for old in finished[: max(0, len(self._jobs) - MAX_JOBS)]:
                del self._jobs[old]
        thread = threading.Thread(
            target=self._run, args=(job,), name=f"console-{kind}-{job.id}", daemon=True
        )
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()
        return job

    def stop_all(self, timeout_s: float = 30.0) -> None:
        """Ask running jobs to stop (a redrive commits what it sent) and wait for them."""
        for job in list(self._jobs.values()):
            job.stop.set()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = [t for t in self._threads if t.is_alive()]

    def _run(self, job: Job) -> None:
        req, s = job.request, self._settings
        opts = req.options(dry_run=job.kind == "preview")

        def progress(r: ReplayResult) -> None:
            job.result = r

        try:
            replayer = Replayer(s.conf, req.topic, opts, job.stop.is_set, progress, naming=s.naming)
            job.result = replayer.result
            job.result = replayer.run()
            job.state = "stopped" if job.result.stopped == "stopped" else "done"
        except KafkaReliableError as exc:
            job.state, job.error = "failed", str(exc)
        except Exception as exc:  # noqa: BLE001 - the page gets one line, the log the traceback
            log.exception("console %s job %s failed", job.kind, job.id)
            job.state, job.error = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            job.finished_s = time.time()
            _audit(job)


def _audit(job: Job) -> None:
    r, req = job.result, job.request
    outcome = job.error or (
        f"replayed={r.replayed} scanned={r.scanned} loop_guard={r.skipped_loop_guard} "
        f"no_target={r.skipped_no_target} bad_target={r.skipped_bad_target} "
        f"unsendable={r.skipped_unsendable} "
        f"targets={dict(r.by_target)} stopped={r.stopped}"
        if r is not None
        else ""
    )
    verb = "redrive-preview" if job.kind == "preview" else "redrive"
    audit_log.info(
        "console %s by=%r %s state=%s %s", verb, req.by, req.describe(), job.state, outcome
    )


def purge_plan(settings: ConsoleSettings, topic: str, before_ms: int | None) -> Cuts:
    m = DlqMaintenance(settings.conf, timeout_s=settings.timeout_s)
    cuts = m.plan_clear(topic) if before_ms is None else m.plan_before(topic, before_ms)
    if not cuts:
        raise ConsoleInputError(f"topic {topic} does not exist")
    return cuts


def purge_run(settings: ConsoleSettings, topic: str, cuts: Cuts, by: str) -> int:
    """Delete ``[low, cut)`` of each partition as previewed; a cut beyond the current high
    watermark (the preview is from another topic incarnation) is refused."""
    m = DlqMaintenance(settings.conf, timeout_s=settings.timeout_s)
    wm = m.watermarks(topic)
    for p, (_lo, cut) in cuts.items():
        if p not in wm or cut > wm[p][1]:
            raise ConsoleInputError(
                f"purge of {topic}: partition {p} cut {cut} is beyond its records; preview again"
            )
    todo = {p: (wm[p][0], cut) for p, (_lo, cut) in cuts.items() if cut > wm[p][0]}
    try:
        deleted = m.delete(topic, todo)
    except DlqError as exc:
        audit_log.info("console purge by=%r topic=%s failed: %s", by, topic, exc)
        raise
    audit_log.info(
        "console purge by=%r topic=%s deleted=%d cuts=%s",
        by,
        topic,
        deleted,
        {p: c for p, (_lo, c) in todo.items()},
    )
    return deleted
