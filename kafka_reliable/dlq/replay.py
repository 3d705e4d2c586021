"""Replay: DLQ records back to their original topic (or ``to_topic``), resumable and bounded.

Progress lives in a replay consumer group: by default one per (DLQ topic, filter, target,
force), so running the same command again resumes where it stopped and replays nothing twice.
In transactional mode (default) each chunk of re-published records and the group's offsets
are committed in one Kafka transaction, so a crash or kill mid-replay neither loses nor
duplicates a record. Replayed records get a fresh attempt count, keep their message id and
carry ``kafka_reliable.replay.count`` + 1; records at the replay limit are refused unless forced.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import Producer

from kafka_reliable import headers as h
from kafka_reliable import tracing
from kafka_reliable.config import TopicNaming, client_config
from kafka_reliable.dlq.from_source import SourceReader
from kafka_reliable.dlq.model import DlqMessage
from kafka_reliable.dlq.reader import DlqError, Offsets, RangeReader
from kafka_reliable.dlq.replay_model import (
    DEFAULT_MAX_REPLAYS,  # noqa: F401
    MAX_LISTED_SKIPS,  # noqa: F401
    REPLAY_GROUP_PREFIX,
    ReplayOptions,
    ReplayResult,
    ReplayTargetError,
)
from kafka_reliable.dlq.sender import ChunkSender, Pending
from kafka_reliable.dlq.targets import (
    TargetCheck,
    replay_headers,
    replay_refusal,
    replay_target,
    topic_name_problem,
)
from kafka_reliable.dlq.timespec import now_ms
from kafka_reliable.errors import ConfigurationError

log = logging.getLogger(__name__)


# The options and the result live in replay_model; this module is their public path.
def default_group(dlq_topic: str, opts: ReplayOptions) -> str:
    """The replay group of this job: same DLQ, filter, target and force -> same group."""
    job: dict[str, Any] = {"f": opts.filter.identity(), "to": opts.to_topic, "force": opts.force}
    if opts.from_source:  # only then: earlier jobs keep their group (and their progress)
        job["from_source"] = True
    ident = json.dumps(job, sort_keys=True)
    return f"{REPLAY_GROUP_PREFIX}{dlq_topic}.{hashlib.sha1(ident.encode()).hexdigest()[:10]}"


class _Pacer:
    """At most ``rate`` records per second, sleeping in short steps so a stop is seen."""

    def __init__(self, rate_per_s: float | None, should_stop: Callable[[], bool]) -> None:
        self._rate = rate_per_s
        self._stop = should_stop
        self._t0 = time.monotonic()
        self._n = 0

    def wait(self) -> bool:
        """False when asked to stop while waiting."""
        if self._rate is not None:
            due = self._t0 + self._n / self._rate
            while (left := due - time.monotonic()) > 0:
                if self._stop():
                    return False
                time.sleep(min(left, 0.05))
        self._n += 1
        return True


class Replayer:
    """One replay run over one DLQ topic."""

    def __init__(
        self,
        conf: Mapping[str, Any],
        dlq_topic: str,
        opts: ReplayOptions,
        should_stop: Callable[[], bool] | None = None,
        progress: Callable[[ReplayResult], None] | None = None,
        *,
        naming: TopicNaming | None = None,
    ) -> None:
        if opts.to_topic is not None and opts.to_topic == dlq_topic:
            raise DlqError(f"refusing to replay {dlq_topic} into itself")
        self._conf = dict(conf)
        self._topic = dlq_topic
        self._opts = opts
        self._naming = naming or TopicNaming()
        self._stop = should_stop or (lambda: False)
        self._progress = progress or (lambda r: None)
        group = opts.group_id or default_group(dlq_topic, opts)
        self.result = ReplayResult(dlq_topic=dlq_topic, group_id=group, dry_run=opts.dry_run)
        self._producer: Producer | None = None
        self._sender: ChunkSender | None = None
        self._source: SourceReader | None = None

    # -- the run ------------------------------------------------------------------------
    def run(self) -> ReplayResult:
        if self._opts.from_source:
            with SourceReader(self._conf) as source:
                self._source = source
                return self._run()
        return self._run()

    def _run(self) -> ReplayResult:
        with Offsets(self._conf, group_id=self.result.group_id) as offsets:
            self._check = TargetCheck(lambda t: offsets.partitions(t) is not None)
            self._check_to_topic()
            if not self._opts.dry_run:
                self._producer = self._make_producer()
                self._sender = ChunkSender(
                    self._producer,
                    dlq_topic=self._topic,
                    transactional=self._opts.transactional,
                    group_metadata=offsets.consumer.consumer_group_metadata,
                    commit_offsets=lambda tps: offsets.consumer.commit(
                        offsets=tps, asynchronous=False
                    ),
                )
            try:
                self._loop(offsets)
            finally:
                if self._sender is not None:
                    self._sender.abort()
                if self._producer is not None:
                    self._producer.flush(10)
        log.info("replay of %s: %s", self._topic, self.result.to_json())
        return self.result

    def _check_to_topic(self) -> None:
        to = self._opts.to_topic
        problem = None if to is None else self._check.problem(to)
        if problem is not None:
            missing = topic_name_problem(to or "") is None
            hint = (
                " (create it first: this cluster may not create topics on first use)"
                if missing
                else ""
            )
            raise ReplayTargetError(f"cannot replay to {to!r}: {problem}{hint}", missing=missing)

    def _make_producer(self) -> Producer:
        pconf: dict[str, Any] = {
            **client_config(self._conf),
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
        }
        if self._opts.transactional:
            pconf["transactional.id"] = self.result.group_id
        p = Producer(pconf)
        if self._opts.transactional:
            p.init_transactions(30)  # fences and aborts an earlier run of this job
        return p

    def _ranges(self, offsets: Offsets) -> dict[int, tuple[int, int]]:
        wm = offsets.watermarks(self._topic)
        if not wm:
            raise DlqError(f"DLQ topic {self._topic} does not exist")
        committed = offsets.committed(self._topic, list(wm))
        ranges = {}
        for p, (lo, hi) in wm.items():
            c = committed.get(p)
            ranges[p] = (lo if c is None else min(max(c, lo), hi), hi)
        ranges = self._opts.filter.ranges(ranges)
        self.result.pending_at_start = sum(hi - start for start, hi in ranges.values())
        return ranges

    def _loop(self, offsets: Offsets) -> None:
        opts, res = self._opts, self.result
        positions: dict[int, int] = {}
        pacer = _Pacer(opts.rate_per_s, self._stop)
        deadline = None if opts.max_time_s is None else time.monotonic() + opts.max_time_s
        last_commit = time.monotonic()
        for msg in RangeReader(offsets.consumer, self._topic, self._ranges(offsets)):
            if (
                opts.max_messages is not None
                and res.replayed + len(self._sender or ()) >= opts.max_messages
            ):
                res.stopped = "max_messages"
                break
            if self._stop():
                res.stopped = "stopped"
                break
            if deadline is not None and time.monotonic() >= deadline:
                res.stopped = "max_time"
                break
            m = DlqMessage.from_record(msg)
            target = self._decide(m)
            if target is not None and self._source is not None:
                m, target = self._original(m, target)
            if target is not None and self._sender is not None:
                if not pacer.wait():
                    res.stopped = "stopped"
                    break
                self._sender.send(self._pending(m, target), self._produce)
            elif target is not None:
                res.replayed += 1
            positions[m.partition] = m.offset + 1
            res.scanned += 1
            if self._sender is not None and (
                len(self._sender) >= opts.chunk_size
                or time.monotonic() - last_commit >= opts.chunk_interval_s
            ):
                self._commit(positions)
                last_commit = time.monotonic()
            self._progress(res)
        if self._sender is not None and positions:
            self._commit(positions)
        self._progress(res)

    def _decide(self, m: DlqMessage) -> str | None:
        """The target topic of a selected record, or None (counted as skipped)."""
        opts, res = self._opts, self.result
        if not opts.filter.matches(m):
            res.skipped_filtered += 1
            return None
        if not opts.force and not m.replay_count_readable:
            res.skipped_loop_guard += 1
            raw = h.get(m.headers, h.REPLAY_COUNT) or b""
            res.skip(
                m, None, f"header {h.REPLAY_COUNT} is unreadable ({raw[:20]!r}); --force replays it"
            )
            return None
        if m.replay_count >= opts.max_replays and not opts.force:
            res.skipped_loop_guard += 1
            return None
        refusal = replay_refusal(m, to_topic=opts.to_topic, from_source=opts.from_source)
        if refusal is not None:
            res.skipped_unsendable += 1
            res.skip(m, None, refusal)
            return None
        try:
            target = replay_target(m, to_topic=opts.to_topic, naming=self._naming)
        except ConfigurationError as exc:
            res.skipped_bad_target += 1
            res.skip(m, None, str(exc))
            return None
        if not target:
            res.skipped_no_target += 1
            return None
        problem = self._check.problem(target)
        if problem is not None:
            res.skipped_bad_target += 1
            res.skip(m, target, problem)
            return None
        res.by_error_class[m.error_class or "(unknown)"] += 1
        res.by_reason[m.reason or "(none)"] += 1
        res.by_target[target] += 1
        return target

    def _original(self, m: DlqMessage, target: str) -> tuple[DlqMessage, str | None]:
        """``m`` carrying its original record re-read from the source (``--from-source``)."""
        assert self._source is not None
        got = self._source.original(m)
        if not isinstance(got, str):
            return got, target
        res = self.result
        res.skipped_unsendable += 1
        res.skip(m, target, got)
        for counter, k in (
            (res.by_target, target),
            (res.by_error_class, m.error_class or "(unknown)"),
            (res.by_reason, m.reason or "(none)"),
        ):
            counter[k] -= 1
            if counter[k] <= 0:
                del counter[k]
        return m, None

    # -- producing and committing ---------------------------------------------------------
    def _pending(self, m: DlqMessage, target: str) -> Pending:
        at_ms = now_ms()
        hdrs: list[tuple[str, str | bytes | None]] = [
            *replay_headers(m, target, naming=self._naming, now_ms=at_ms)
        ]
        if self._opts.audit_by is not None:
            hdrs.extend(
                h.redrive_headers(
                    by=self._opts.audit_by, at_ms=at_ms, source=m.coordinates, dlq_topic=self._topic
                )
            )
        return Pending(m=m, target=target, headers=hdrs)

    def _produce(self, entry: Pending) -> None:
        assert self._sender is not None
        with tracing.span(
            tracing.SPAN_REPLAY,
            headers=entry.m.headers,
            attributes={
                "messaging.destination.name": entry.target,
                "kafka_reliable.replay.count": (
                    entry.m.replay_count if entry.m.replay_count_readable else 0
                )
                + 1,
            },
        ):
            self._sender.produce(entry)

    def _commit(self, positions: Mapping[int, int]) -> None:
        assert self._sender is not None
        out = self._sender.commit(positions)
        res = self.result
        res.replayed += out.delivered
        for e, reason in out.skipped:
            res.skipped_bad_target += 1
            res.skip(e.m, e.target, reason)
            res.by_target[e.target] -= 1
            res.by_error_class[e.m.error_class or "(unknown)"] -= 1
            res.by_reason[e.m.reason or "(none)"] -= 1
        for counter in (res.by_target, res.by_error_class, res.by_reason):
            for k in [k for k, v in counter.items() if v <= 0]:
                del counter[k]
