"""Clearing, purging and size limits of DLQ topics, Kafka-native (``delete_records``).

``enforce_max_size`` keeps exactly ``max_size`` records, dropping the oldest: by offset on a
single partition; by timestamp across partitions (a binary search over ``offsets_for_times``,
ties broken by partition order). Alerts (size over threshold, records about to expire by
retention) go to ``alert_callback`` or, without one, to a log warning.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, OffsetSpec

from kafka_reliable.config import client_config
from kafka_reliable.dlq.reader import DlqError, Offsets
from kafka_reliable.dlq.timespec import now_ms
from kafka_reliable.health.alerts import Alert, AlertCallback, make_alert

log = logging.getLogger(__name__)

#: ``{partition: (low, cut)}``: delete ``[low, cut)`` of each partition.
Cuts = dict[int, tuple[int, int]]
#: ``topic -> {partition: (low, high)}`` (empty when the topic does not exist), e.g. a client shared
#: with the producer, so that periodic checks do not open a consumer per DLQ topic.
WatermarkReader = Callable[[str], Mapping[int, tuple[int, int]]]

#: Records this close to their retention deadline count as "about to expire".
DEFAULT_EXPIRY_MARGIN_MS = 24 * 3600 * 1000


class DlqMaintenance:
    """Deletes DLQ records and watches sizes; counts what it trimmed (thread-safe counters).

    ``watermarks``: an optional shared watermark reader; without it each call opens a
    short-lived consumer. Only cuts by time (``purge_before``, trimming across partitions,
    retention-expiry counts) still need one of their own, and only when there is work.
    """

    def __init__(
        self,
        conf: Mapping[str, Any],
        *,
        admin: AdminClient | None = None,
        alert_callback: AlertCallback | None = None,
        timeout_s: float = 30.0,
        watermarks: WatermarkReader | None = None,
    ) -> None:
        self._conf = dict(conf)
        self._watermark_reader = watermarks
        self._admin = admin
        self.alert_callback = alert_callback
        self._timeout_s = timeout_s
        self._lock = threading.Lock()
        self.trimmed_total = 0
        self.trimmed_by_topic: dict[str, int] = {}

    @property
    def admin(self) -> AdminClient:
        if self._admin is None:
            self._admin = AdminClient(client_config(self._conf))
        return self._admin

    # -- planning ---------------------------------------------------------------------------
    def watermarks(self, dlq_topic: str) -> dict[int, tuple[int, int]]:
        """``{partition: (low, high)}`` through the shared reader when there is one."""
        if self._watermark_reader is not None:
            return dict(self._watermark_reader(dlq_topic))
        with Offsets(self._conf) as o:
            return o.watermarks(dlq_topic)

    def plan_clear(self, dlq_topic: str) -> Cuts:
        return {p: (lo, hi) for p, (lo, hi) in self.watermarks(dlq_topic).items()}

    def plan_before(self, dlq_topic: str, before_ms: int) -> Cuts:
        """Cuts removing the records before the first one stamped at or after ``before_ms``."""
        if (
            self._watermark_reader is not None
        ):  # the shared client: ListOffsets by timestamp, no consumer
            wm = self.watermarks(dlq_topic)
            if all(lo >= hi for lo, hi in wm.values()):
                return {p: (lo, lo) for p, (lo, _hi) in wm.items()}
            return {
                p: (wm[p][0], c)
                for p, c in self._admin_offsets_for_time(dlq_topic, before_ms, wm).items()
            }
        with Offsets(self._conf) as o:
            wm = o.watermarks(dlq_topic)
            if not wm:
                return {}
            cut = o.offsets_for_time(dlq_topic, before_ms, wm)
            return {p: (lo, cut[p]) for p, (lo, hi) in wm.items()}

    def _admin_offsets_for_time(
        self, topic: str, ts_ms: int, wm: Mapping[int, tuple[int, int]]
    ) -> dict[int, int]:
        """Per partition, the first offset stamped at or after ``ts_ms`` (high when none)."""
        req = {TopicPartition(topic, p): OffsetSpec.for_timestamp(ts_ms) for p in wm}
        out: dict[int, int] = {}
        for tp, fut in self.admin.list_offsets(req, request_timeout=self._timeout_s).items():
            lo, hi = wm[tp.partition]
            off = fut.result(timeout=self._timeout_s).offset
            out[tp.partition] = hi if off < 0 else min(max(off, lo), hi)
        return out

    def plan_max_size(self, dlq_topic: str, max_size: int) -> Cuts:
        """Cuts leaving exactly ``max_size`` records (the newest); empty when under the limit."""
        if max_size < 0:
            raise DlqError(f"max_size must be >= 0, got {max_size}")
        wm = self.watermarks(dlq_topic)
        excess = sum(hi - lo for lo, hi in wm.values()) - max_size
        if excess <= 0:
            return {}
        if max_size == 0:
            return dict(wm)
        if len(wm) == 1:
            ((p, (lo, _hi)),) = wm.items()
            return {p: (lo, lo + excess)}
        with Offsets(self._conf) as o:
            return _time_cuts(o, dlq_topic, wm, max_size)

    # -- acting -----------------------------------------------------------------------------
    def delete(
        self, dlq_topic: str, cuts: Cuts, progress: Callable[[int], None] | None = None
    ) -> int:
        """``delete_records`` up to each cut; returns the number of records deleted."""
        todo = [TopicPartition(dlq_topic, p, cut) for p, (lo, cut) in cuts.items() if cut > lo]
        if not todo:
            return 0
        futures = self.admin.delete_records(
            todo, request_timeout=self._timeout_s, operation_timeout=self._timeout_s
        )
        deleted = 0
        for tp, fut in futures.items():
            try:
                fut.result(timeout=self._timeout_s)
            except KafkaException as exc:
                raise DlqError(
                    f"delete_records on {dlq_topic}[{tp.partition}] failed: {exc}"
                ) from exc
            n = tp.offset - cuts[tp.partition][0]
            deleted += n
            if progress is not None:
                progress(n)
        log.info("deleted %d records from %s", deleted, dlq_topic)
        return deleted

    def clear(self, dlq_topic: str) -> int:
        return self.delete(dlq_topic, self.plan_clear(dlq_topic))

    def purge_before(self, dlq_topic: str, before_ms: int) -> int:
        return self.delete(dlq_topic, self.plan_before(dlq_topic, before_ms))

    def enforce_max_size(self, dlq_topic: str, max_size: int) -> int:
        """Trim the oldest records so that exactly ``max_size`` remain; returns how many went."""
        cuts = self.plan_max_size(dlq_topic, max_size)
        excess = sum(cut - lo for lo, cut in cuts.values())
        if excess <= 0:
            return 0
        self.alert(
            make_alert(
                type="dlq_size",
                timestamp=time.time(),
                topic=dlq_topic,
                value=max_size + excess,
                threshold=max_size,
                severity="warning",
                message=f"DLQ {dlq_topic} holds {max_size + excess} records, above its max size "
                f"{max_size}: trimming the oldest {excess}",
            )
        )
        trimmed = self.delete(dlq_topic, cuts)
        with self._lock:
            self.trimmed_total += trimmed
            self.trimmed_by_topic[dlq_topic] = self.trimmed_by_topic.get(dlq_topic, 0) + trimmed
        return trimmed

    # -- watching ---------------------------------------------------------------------------
    def retention_ms(self, dlq_topic: str) -> int | None:
        """The topic's ``retention.ms`` (None when infinite or not readable)."""
        res = ConfigResource(ConfigResource.Type.TOPIC, dlq_topic)
        try:
            cfg = self.admin.describe_configs([res])[res].result(timeout=self._timeout_s)
            value = int(cfg["retention.ms"].value)
        except (KafkaException, KeyError, ValueError):
            return None
        return None if value < 0 else value

    def expiring(self, dlq_topic: str, margin_ms: int = DEFAULT_EXPIRY_MARGIN_MS) -> int:
        """Records stamped before ``now - retention + margin``: retention may drop them soon."""
        retention = self.retention_ms(dlq_topic)
        if retention is None:
            return 0
        cuts = self.plan_before(dlq_topic, now_ms() - retention + margin_ms)
        return sum(cut - lo for lo, cut in cuts.values())

    def check(
        self,
        dlq_topic: str,
        *,
        size_threshold: int | None = None,
        expiry_margin_ms: int = DEFAULT_EXPIRY_MARGIN_MS,
    ) -> list[Alert]:
        """Alerts for a DLQ over its size threshold and for records about to expire; each is
        sent."""
        alerts: list[Alert] = []
        if size_threshold is not None:
            size = sum(hi - lo for lo, hi in self.watermarks(dlq_topic).values())
            if size > size_threshold:
                alerts.append(
                    make_alert(
                        type="dlq_size",
                        timestamp=time.time(),
                        topic=dlq_topic,
                        value=size,
                        threshold=size_threshold,
                        severity="warning",
                        message=(
                            f"DLQ {dlq_topic} holds {size} records (threshold {size_threshold})"
                        ),
                    )
                )
        expiring = self.expiring(dlq_topic, expiry_margin_ms)
        if expiring:
            alerts.append(
                make_alert(
                    type="dlq_retention_expiry",
                    timestamp=time.time(),
                    topic=dlq_topic,
                    value=expiring,
                    threshold=0,
                    severity="critical",
                    message=f"{expiring} records of {dlq_topic} expire by retention within "
                    f"{expiry_margin_ms // 3_600_000}h: inspect or replay them now",
                )
            )
        for a in alerts:
            self.alert(a)
        return alerts

    def alert(self, alert: Alert) -> None:
        if self.alert_callback is None:
            log.warning("DLQ alert %s: %s", alert["type"], alert["message"])
            return
        try:
            self.alert_callback(alert)
        except Exception:  # noqa: BLE001 - a broken callback must not break maintenance
            log.exception("DLQ alert callback failed for %s", alert["type"])


def _time_cuts(o: Offsets, topic: str, wm: Mapping[int, tuple[int, int]], keep: int) -> Cuts:
    """Cuts keeping exactly ``keep`` records, the newest by timestamp across partitions."""

    def remaining(ts_ms: int) -> tuple[int, dict[int, int]]:
        offs = o.offsets_for_time(topic, ts_ms, wm)
        return sum(wm[p][1] - off for p, off in offs.items()), offs

    lo_ts, hi_ts = 0, now_ms() + 10 * 365 * 86_400_000  # remaining(0) = all records > keep
    if remaining(hi_ts)[0] >= keep:  # timestamps in the far future: trim by offset
        hi_ts = 1 << 62
    while hi_ts - lo_ts > 1:  # largest T with remaining(T) >= keep
        mid = (lo_ts + hi_ts) // 2
        if remaining(mid)[0] >= keep:
            lo_ts = mid
        else:
            hi_ts = mid
    count, at = remaining(lo_ts)
    _, after = remaining(lo_ts + 1)
    excess = count - keep
    cuts: Cuts = {}
    for p in sorted(wm):
        extra = min(excess, after[p] - at[p])
        excess -= extra
        cuts[p] = (wm[p][0], at[p] + extra)
    return cuts
