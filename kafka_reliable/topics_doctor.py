"""``topics doctor``: topic settings that can lose or stall records, for sources and companions.

:func:`gather` reads what the cluster says (partitions, replicas, configs) in two admin calls;
:func:`diagnose` is pure and returns one :class:`Finding` per problem:

* ``replication_factor``: a topic with one replica loses its records with its broker;
* ``min_insync_replicas``: ``min.insync.replicas`` above the replication factor refuses every
  ``acks=all`` write; equal to it (RF > 1) stalls writes while one replica is down; 1 with
  RF >= 3 lets one replica acknowledge a write that is lost with it;
* ``companion_missing`` / ``companion_partitions``: ``.retry`` / ``.dlq`` absent (a cluster
  that does not create topics on first use refuses the failed record) or with fewer
  partitions than the source (the retry worker and replays keep a key in one partition);
* ``dlq_retention``: ``.dlq`` deletes records sooner than someone notices them;
* ``max_message_bytes``: a companion taking smaller records than the source: a record that
  failed because of its size cannot be retried or dead-lettered;
* ``compacted_companion``: ``cleanup.policy=compact`` on ``.retry`` / ``.dlq`` keeps only the
  last record per key, so earlier failures of the same key are lost.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka.admin import AdminClient, ConfigResource

from kafka_reliable.config import TopicNaming

#: Default time someone needs to notice a dead letter (``--notice-within``), ms.
DEFAULT_NOTICE_MS = 7 * 24 * 3600 * 1000
CHECKS = (
    "replication_factor",
    "min_insync_replicas",
    "companion_missing",
    "companion_partitions",
    "dlq_retention",
    "max_message_bytes",
    "compacted_companion",
)
_CONFIGS = ("min.insync.replicas", "retention.ms", "max.message.bytes", "cleanup.policy")


@dataclass(frozen=True, kw_only=True)
class TopicFacts:
    """What the cluster says about one topic (``exists`` False: the rest is empty)."""

    name: str
    exists: bool = True
    partitions: int = 0
    replication_factor: int = 0
    configs: dict[str, str] = field(default_factory=dict)

    def int_config(self, key: str) -> int | None:
        try:
            return int(self.configs[key])
        except (KeyError, ValueError):
            return None


@dataclass(frozen=True, kw_only=True)
class Finding:
    source: str
    topic: str
    check: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {
            "source": self.source,
            "topic": self.topic,
            "check": self.check,
            "message": self.message,
        }


def companions_of(names: Iterable[str], naming: TopicNaming) -> list[str]:
    """Source topics that have a ``.retry`` or ``.dlq`` companion among ``names``."""
    names = set(names)
    return sorted(s for t in names if (s := naming.source_of(t)) is not None and s in names)


def gather(admin: AdminClient, topics: Iterable[str], timeout_s: float) -> dict[str, TopicFacts]:
    """Facts of ``topics`` (missing ones: ``exists=False``): one metadata, one config call."""
    md = admin.list_topics(timeout=timeout_s)
    out: dict[str, TopicFacts] = {}
    present = []
    for name in dict.fromkeys(topics):
        t = md.topics.get(name)
        if t is None or t.error is not None or not t.partitions:
            out[name] = TopicFacts(name=name, exists=False)
        else:
            present.append(
                (name, len(t.partitions), min(len(p.replicas) for p in t.partitions.values()))
            )
    resources = [ConfigResource(ConfigResource.Type.TOPIC, name) for name, _, _ in present]
    futures = admin.describe_configs(resources, request_timeout=timeout_s) if resources else {}
    for (name, n, rf), res in zip(present, resources, strict=True):
        entries = futures[res].result(timeout=timeout_s)
        configs = {k: str(entries[k].value) for k in _CONFIGS if k in entries}
        out[name] = TopicFacts(name=name, partitions=n, replication_factor=rf, configs=configs)
    return out


def _durability(source: str, f: TopicFacts) -> list[Finding]:
    out = []
    rf, isr = f.replication_factor, f.int_config("min.insync.replicas")
    if rf == 1:
        out.append(
            Finding(
                source=source,
                topic=f.name,
                check="replication_factor",
                message="replication factor 1: the records are lost with their one broker",
            )
        )
    problem = _isr_problem(isr, rf)
    if problem is not None:
        out.append(
            Finding(source=source, topic=f.name, check="min_insync_replicas", message=problem)
        )
    return out


def _isr_problem(isr: int | None, rf: int) -> str | None:
    """What is wrong with ``min.insync.replicas`` for replication factor ``rf``, if anything."""
    if isr is not None and isr > rf:
        return (
            f"min.insync.replicas={isr} > replication factor {rf}: every acks=all write is refused"
        )
    if isr is not None and isr == rf > 1:
        return (
            f"min.insync.replicas={isr} = replication factor {rf}: "
            "acks=all writes stall while any "
            "replica is down"
        )
    if isr == 1 and rf >= 3:
        return (
            f"min.insync.replicas=1 with replication factor {rf}: "
            "a write acknowledged by one replica "
            "is lost with it"
        )
    return None


def _companion(
    source: str, src: TopicFacts, f: TopicFacts, kind: str, notice_ms: int
) -> list[Finding]:
    def finding(check: str, message: str) -> Finding:
        return Finding(source=source, topic=f.name, check=check, message=message)

    if not f.exists:
        return [
            finding(
                "companion_missing",
                f"{kind} topic {f.name} does not exist: a cluster that does not "
                "create topics on first use refuses the failed record "
                "(kafka-reliable topics ensure)",
            )
        ]
    out = _durability(source, f)
    if f.partitions < src.partitions:
        out.append(
            finding(
                "companion_partitions",
                f"{f.partitions} partitions, fewer than {source}'s {src.partitions}",
            )
        )
    src_max, own_max = src.int_config("max.message.bytes"), f.int_config("max.message.bytes")
    if src_max is not None and own_max is not None and own_max < src_max:
        out.append(
            finding(
                "max_message_bytes",
                f"max.message.bytes={own_max} < {source}'s {src_max}: a record "
                f"that failed for its size cannot go to the {kind} topic",
            )
        )
    if "compact" in f.configs.get("cleanup.policy", ""):
        out.append(
            finding(
                "compacted_companion",
                f"cleanup.policy={f.configs['cleanup.policy']}: compaction "
                "keeps only the last record per key; earlier failures of a key are lost",
            )
        )
    retention = f.int_config("retention.ms")
    if kind == "DLQ" and retention is not None and 0 <= retention < notice_ms:
        out.append(
            finding(
                "dlq_retention",
                f"retention.ms={retention} ({_human(retention)}) is shorter than "
                f"the time to notice a dead letter ({_human(notice_ms)})",
            )
        )
    return out


def _human(ms: int) -> str:
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms >= size:
            return f"{ms / size:g}{unit}"
    return f"{ms}ms"


def diagnose(
    sources: Iterable[str],
    facts: Mapping[str, TopicFacts],
    naming: TopicNaming,
    *,
    notice_ms: int = DEFAULT_NOTICE_MS,
    skip: Iterable[str] = (),
) -> list[Finding]:
    """Every finding for ``sources`` and their companions (``facts`` from :func:`gather`)."""
    out: list[Finding] = []
    for source in sources:
        src = facts[source]
        if not src.exists:
            continue
        out.extend(_durability(source, src))
        for kind, name in (
            ("retry", naming.retry_topic(source)),
            ("DLQ", naming.dlq_topic(source)),
        ):
            out.extend(_companion(source, src, facts[name], kind, notice_ms))
    skipped = set(skip)
    return [f for f in out if f.check not in skipped]


def examine(
    admin: AdminClient,
    sources: Iterable[str] | None,
    naming: TopicNaming,
    *,
    timeout_s: float,
    notice_ms: int = DEFAULT_NOTICE_MS,
    skip: Iterable[str] = (),
) -> dict[str, Any]:
    """``{"sources", "missing", "findings"}`` of ``sources`` (None: all with companions)."""
    if sources is None:
        names = admin.list_topics(timeout=timeout_s).topics
        sources = companions_of((n for n in names if not n.startswith("__")), naming)
    sources = list(dict.fromkeys(sources))
    wanted = [t for s in sources for t in (s, naming.retry_topic(s), naming.dlq_topic(s))]
    facts = gather(admin, wanted, timeout_s)
    findings = diagnose(sources, facts, naming, notice_ms=notice_ms, skip=skip)
    return {
        "sources": sources,
        "missing": [s for s in sources if not facts[s].exists],
        "findings": findings,
    }
