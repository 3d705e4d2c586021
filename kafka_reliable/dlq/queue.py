"""``DeadLetterQueue``: the DLQ tools as one object, usable with or without a producer."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from confluent_kafka.admin import AdminClient

from kafka_reliable.config import TopicNaming, client_config
from kafka_reliable.dlq import dialects, share_group
from kafka_reliable.dlq.maintenance import (
    DEFAULT_EXPIRY_MARGIN_MS,
    Alert,
    AlertCallback,
    DlqMaintenance,
    WatermarkReader,
)
from kafka_reliable.dlq.model import DlqMessage
from kafka_reliable.dlq.reader import DlqError, DlqFilter, DlqReader
from kafka_reliable.dlq.replay import DEFAULT_MAX_REPLAYS, Replayer, ReplayOptions, ReplayResult
from kafka_reliable.dlq.stats import DEFAULT_SCAN_LIMIT, merge, topic_stats
from kafka_reliable.dlq.timespec import parse_time

log = logging.getLogger(__name__)

#: Topic names that say "dead letters" (``orders-dlt``, ``dlq-foo``, ``payments.DLT``, …).
DLQ_NAME = re.compile(
    r"(^|[._-])(dlq|dlt|dead[._-]?letters?|deadletter(queue)?|errors?|failed|poison)([._-]|$)", re.I
)

#: Foreign DLQ names of a source topic, tried after ours: Spring's ``-dlt`` / ``.DLT``, ``-dlq``.
FOREIGN_SUFFIXES = ("-dlt", ".DLT", "-dlq")

TimeLike = int | str | datetime | None


@dataclass(frozen=True, kw_only=True)
class Resolved:
    """Which DLQ topic a name given by a user means, and how it was found.

    ``how``: ``given`` (the DLQ topic itself), ``ours`` (``<source>.dlq``), ``foreign``
    (``<source>-dlt``, ``.DLT`` or ``-dlq``) or ``group`` (``<source>.<group>.dlq``).
    """

    requested: str
    dlq_topic: str
    how: str
    exists: bool
    tried: tuple[str, ...]

    @property
    def note(self) -> str | None:
        """One line saying which DLQ topic was used for a source name (None for a DLQ name)."""
        if self.how == "given" or not self.exists:
            return None
        why = {
            "ours": "",
            "group": "",
            "foreign": f" (no {self.tried[0]}; found a DLQ written by another tool)",
        }
        return f"{self.requested}: using DLQ topic {self.dlq_topic}{why[self.how]}"

    @property
    def missing(self) -> str:
        """One line for a DLQ that does not exist."""
        if len(self.tried) > 1:
            return f"no DLQ topic for {self.requested} (tried {', '.join(self.tried)})"
        return f"DLQ topic {self.dlq_topic} does not exist"

    def to_json(self) -> dict[str, Any]:
        return {"requested": self.requested, "dlq_topic": self.dlq_topic, "how": self.how}


def _to_ms(value: TimeLike) -> int | None:
    if value is None or isinstance(value, int):
        return value
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    return parse_time(value)


def make_filter(
    *,
    errors: Iterable[str] | str | None = None,
    since: TimeLike = None,
    until: TimeLike = None,
    key: str | None = None,
    reason: str | None = None,
) -> DlqFilter:
    """A DlqFilter from friendly arguments (times as epoch ms, ISO-8601, ``2h`` or datetime)."""
    errs = (errors,) if isinstance(errors, str) else tuple(errors or ())
    return DlqFilter(
        errors=errs, since_ms=_to_ms(since), until_ms=_to_ms(until), key=key, reason=reason
    )


class DeadLetterQueue:
    """Inspect, replay, purge and bound DLQ topics of any dialect.

    ``watermarks``: an optional shared watermark reader (``topic -> {partition: (low, high)}``)
    used by the size and expiry checks instead of a consumer per call.

    Methods take a source topic (``"transactions"`` means ``transactions.dlq``) or a DLQ topic
    name: one ending in the DLQ suffix is used as is; an existing topic without it (a foreign
    DLQ such as ``orders-dlt``) is used when its name or its records say it is a DLQ.
    """

    def __init__(
        self,
        *,
        bootstrap_servers: str | Iterable[str] | None = None,
        conf: Mapping[str, Any] | None = None,
        naming: TopicNaming | None = None,
        alert_callback: AlertCallback | None = None,
        max_replays: int = DEFAULT_MAX_REPLAYS,
        admin: AdminClient | None = None,
        timeout_s: float = 10.0,
        watermarks: WatermarkReader | None = None,
    ) -> None:
        cfg = client_config(conf or {})
        if bootstrap_servers is not None:
            cfg["bootstrap.servers"] = (
                bootstrap_servers
                if isinstance(bootstrap_servers, str)
                else ",".join(bootstrap_servers)
            )
        cfg.setdefault("bootstrap.servers", "localhost:9092")
        self.conf = cfg
        self.naming = naming or TopicNaming()
        self.max_replays = max_replays
        self._timeout_s = timeout_s
        self._admin = admin
        self.reader = DlqReader(cfg, timeout_s=timeout_s)
        self.maintenance = DlqMaintenance(
            cfg, admin=admin, alert_callback=alert_callback, watermarks=watermarks
        )
        self._foreign: set[str] = set()
        #: The result of the last replay through this object (``skipped`` lists what was not
        #: replayed).
        self.last_replay: ReplayResult | None = None

    @property
    def admin(self) -> AdminClient:
        if self._admin is None:
            self._admin = AdminClient(self.conf)
        return self._admin

    @property
    def trimmed_total(self) -> int:
        """Records trimmed by ``enforce_max_size`` through this object."""
        return self.maintenance.trimmed_total

    # -- topics -----------------------------------------------------------------------------
    def topic_names(self) -> set[str]:
        return set(self.admin.list_topics(timeout=self._timeout_s).topics)

    def dlq_topic(self, topic: str, group: str | None = None) -> str:
        """The DLQ topic meant by ``topic`` (see :meth:`resolve`)."""
        return self.resolve(topic, group).dlq_topic

    def resolve(self, topic: str, group: str | None = None) -> Resolved:
        """The DLQ topic meant by ``topic``: with ``group``, that consumer group's DLQ of the
        source ``topic``; a name ending in the DLQ suffix as is; for a source name, ours
        (``<topic>.dlq``) first, then the common foreign names (``-dlt``, ``.DLT``, ``-dlq``);
        an existing topic whose name or records say it is a DLQ as is."""
        names = self.topic_names()
        if group is not None:
            name = self.naming.group_dlq_topic(topic, group)
            return Resolved(
                requested=topic, dlq_topic=name, how="group", exists=name in names, tried=(name,)
            )
        if topic.endswith(self.naming.dlq_suffix) or topic in self._foreign:
            return Resolved(
                requested=topic, dlq_topic=topic, how="given", exists=topic in names, tried=(topic,)
            )
        tried = (self.naming.dlq_topic(topic), *(topic + s for s in FOREIGN_SUFFIXES))
        for i, name in enumerate(tried):
            if name in names:
                how = "ours" if i == 0 else "foreign"
                return Resolved(requested=topic, dlq_topic=name, how=how, exists=True, tried=tried)
        if topic in names and (
            DLQ_NAME.search(topic)
            or any(m.dialect != dialects.RAW for m in self.reader.sample(topic, 3))
        ):
            self._foreign.add(topic)
            return Resolved(
                requested=topic, dlq_topic=topic, how="given", exists=True, tried=(topic,)
            )
        return Resolved(requested=topic, dlq_topic=tried[0], how="ours", exists=False, tried=tried)

    def exists(self, topic: str) -> bool:
        return self.dlq_topic(topic) in self.topic_names()

    def list_dlq_topics(self) -> list[str]:
        """Existing topics named like a DLQ: ``*<dlq suffix>``, Spring's ``*.DLT`` / ``*-dlt``,
        ``*-dlq``, and share-group DLQs (``dlq.*``, the broker's default required prefix)."""
        suffixes = (self.naming.dlq_suffix, *FOREIGN_SUFFIXES)
        return sorted(
            t
            for t in self.topic_names()
            if not t.startswith("__")
            and (t.endswith(suffixes) or t.startswith(share_group.DEFAULT_DLQ_PREFIX))
        )

    # -- reading ----------------------------------------------------------------------------
    def get_dlq_messages(
        self, topic: str, limit: int | None = 100, **filters: Any
    ) -> list[DlqMessage]:
        """The oldest ``limit`` records of the DLQ, filtered by ``errors``, ``since``, ``until``,
        ``key``, ``reason`` (see :func:`make_filter`)."""
        flt = make_filter(**filters) if filters else None
        return self.reader.list_messages(self.dlq_topic(topic), limit=limit, flt=flt)

    def get_message(
        self,
        topic: str,
        *,
        partition: int | None = None,
        offset: int | None = None,
        message_id: str | None = None,
    ) -> DlqMessage | None:
        """One record by ``partition`` + ``offset`` or by ``message_id``; None when not found."""
        dlq = self.dlq_topic(topic)
        if message_id is not None:
            return self.reader.find(dlq, message_id)
        if partition is None or offset is None:
            raise DlqError("get_message needs partition and offset, or message_id")
        return self.reader.show(dlq, partition=partition, offset=offset)

    def stats(
        self, topic: str | None = None, *, scan_limit: int = DEFAULT_SCAN_LIMIT
    ) -> dict[str, Any]:
        """``total_messages``, ``topic_breakdown``, ``error_class_breakdown``, oldest/newest
        timestamps, … for one DLQ or (``topic=None``) every DLQ topic of the cluster."""
        topics = [self.dlq_topic(topic)] if topic is not None else self.list_dlq_topics()
        out = merge(
            [topic_stats(self.conf, t, naming=self.naming, scan_limit=scan_limit) for t in topics]
        )
        out["trimmed_total"] = self.trimmed_total
        return out

    # -- replay -----------------------------------------------------------------------------
    def replay(
        self,
        topic: str,
        options: ReplayOptions | None = None,
        *,
        should_stop: Callable[[], bool] | None = None,
        progress: Callable[[ReplayResult], None] | None = None,
    ) -> ReplayResult:
        """Replay with full options and a detailed result (see ``ReplayOptions``).

        A record whose target is illegal, missing or refuses it is skipped and listed in
        ``result.skipped`` (``result.partial`` is then True); progress moves past it.
        ``ReplayTargetError`` when ``to_topic`` itself is illegal or missing.
        """
        opts = options or ReplayOptions(max_replays=self.max_replays)
        replayer = Replayer(
            self.conf, self.dlq_topic(topic), opts, should_stop, progress, naming=self.naming
        )
        self.last_replay = replayer.result
        return replayer.run()

    def replay_dlq_messages(
        self, topic: str, max_messages: int | None = None, **options: Any
    ) -> int:
        """Replay up to ``max_messages`` records; returns how many were re-published.

        Records that could not be replayed are in ``self.last_replay.skipped`` (see :meth:`replay`).

        Options: ``to_topic``, ``rate`` (records/s), ``errors``, ``since``, ``until``, ``key``,
        ``reason``, ``dry_run`` (returns how many would be), ``force``, ``max_replays``,
        ``group_id``, ``max_time_s``, ``transactional``, ``from_source`` (resend the original
        re-read from its topic), ``should_stop``, ``progress``.
        """
        should_stop = options.pop("should_stop", None)
        progress = options.pop("progress", None)
        filt = {
            k: options.pop(k) for k in ("errors", "since", "until", "key", "reason") if k in options
        }
        if "rate" in options:
            options["rate_per_s"] = options.pop("rate")
        options.setdefault("max_replays", self.max_replays)
        try:
            opts = ReplayOptions(max_messages=max_messages, filter=make_filter(**filt), **options)
        except TypeError as exc:
            raise DlqError(f"replay_dlq_messages: {exc}") from None
        return self.replay(topic, opts, should_stop=should_stop, progress=progress).replayed

    # -- maintenance ------------------------------------------------------------------------
    def clear_dlq(self, topic: str) -> int:
        """Delete every record of the DLQ (``delete_records`` up to the high watermark)."""
        return self.maintenance.clear(self.dlq_topic(topic))

    def purge_before(self, topic: str, before: int | str | datetime) -> int:
        """Delete the records stamped before ``before`` (Kafka-native ``offsets_for_times`` cut)."""
        before_ms = _to_ms(before)
        assert before_ms is not None
        return self.maintenance.purge_before(self.dlq_topic(topic), before_ms)

    def enforce_max_size(self, topic: str, max_size: int) -> int:
        """Trim the oldest records so that exactly ``max_size`` remain; returns how many were
        trimmed."""
        return self.maintenance.enforce_max_size(self.dlq_topic(topic), max_size)

    def check_alerts(
        self,
        topic: str,
        *,
        size_threshold: int | None = None,
        expiry_margin_ms: int = DEFAULT_EXPIRY_MARGIN_MS,
    ) -> list[Alert]:
        """Size and retention-expiry alerts for one DLQ (sent to the alert callback or logged)."""
        return self.maintenance.check(
            self.dlq_topic(topic), size_threshold=size_threshold, expiry_margin_ms=expiry_margin_ms
        )
