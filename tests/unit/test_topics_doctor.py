"""``topics doctor`` checks as pure units (the cluster facts given), including RF >= 3 cases."""

from __future__ import annotations

from kafka_reliable.config import TopicNaming
from kafka_reliable.topics_doctor import TopicFacts, companions_of, diagnose

NAMING = TopicNaming()
HOUR = 3_600_000


def _t(name: str, *, n: int = 3, rf: int = 3, **configs: str) -> TopicFacts:
    base = {
        "min.insync.replicas": "2",
        "retention.ms": str(14 * 24 * HOUR),
        "max.message.bytes": "1048588",
        "cleanup.policy": "delete",
    }
    return TopicFacts(
        name=name,
        partitions=n,
        replication_factor=rf,
        configs={**base, **{k.replace("_", "."): v for k, v in configs.items()}},
    )


def _facts(*topics: TopicFacts) -> dict[str, TopicFacts]:
    return {t.name: t for t in topics}


def _checks(facts: dict[str, TopicFacts], **kw: object) -> list[tuple[str, str]]:
    found = diagnose(["orders"], facts, NAMING, **kw)
    return [(f.topic, f.check) for f in found]


def test_a_healthy_source_with_companions_has_no_findings() -> None:
    assert _checks(_facts(_t("orders"), _t("orders.retry"), _t("orders.dlq"))) == []


def test_min_insync_replicas_against_the_replication_factor() -> None:
    facts = _facts(
        _t("orders", min_insync_replicas="3"),
        _t("orders.retry", min_insync_replicas="1"),
        _t("orders.dlq", rf=2, min_insync_replicas="3"),
    )
    found = diagnose(["orders"], facts, NAMING)
    assert [(f.topic, f.check) for f in found] == [
        ("orders", "min_insync_replicas"),
        ("orders.retry", "min_insync_replicas"),
        ("orders.dlq", "min_insync_replicas"),
    ]
    assert found[0].message == (
        "min.insync.replicas=3 = replication factor 3: acks=all writes stall while any "
        "replica is down"
    )
    assert found[1].message == (
        "min.insync.replicas=1 with replication factor 3: a write acknowledged by one "
        "replica is lost with it"
    )
    assert (
        found[2].message
        == "min.insync.replicas=3 > replication factor 2: every acks=all write is refused"
    )


def test_replication_factor_one_and_its_min_isr_of_one_is_one_finding() -> None:
    facts = _facts(
        _t("orders", rf=1, min_insync_replicas="1"), _t("orders.retry"), _t("orders.dlq")
    )
    assert _checks(facts) == [("orders", "replication_factor")]
    assert _checks(facts, skip=["replication_factor"]) == []


def test_companions_missing_narrow_small_compacted_or_short_lived() -> None:
    facts = _facts(
        _t("orders", n=6, max_message_bytes="5000000"),
        TopicFacts(name="orders.retry", exists=False),
        _t(
            "orders.dlq",
            n=3,
            retention_ms=str(HOUR),
            max_message_bytes="1048588",
            cleanup_policy="compact,delete",
        ),
    )
    found = {(f.topic, f.check): f.message for f in diagnose(["orders"], facts, NAMING)}
    assert set(found) == {
        ("orders.retry", "companion_missing"),
        ("orders.dlq", "companion_partitions"),
        ("orders.dlq", "max_message_bytes"),
        ("orders.dlq", "compacted_companion"),
        ("orders.dlq", "dlq_retention"),
    }
    assert found[("orders.dlq", "dlq_retention")] == (
        "retention.ms=3600000 (1h) is shorter than the time to notice a dead letter (7d)"
    )
    assert _checks(facts, notice_ms=HOUR, skip=["companion_missing"]) == [
        ("orders.dlq", "companion_partitions"),
        ("orders.dlq", "max_message_bytes"),
        ("orders.dlq", "compacted_companion"),
    ]


def test_unlimited_retention_is_fine_and_sources_with_companions_are_found() -> None:
    facts = _facts(_t("orders"), _t("orders.retry"), _t("orders.dlq", retention_ms="-1"))
    assert _checks(facts) == []
    assert companions_of(
        ["orders", "orders.dlq", "lonely", "gone.retry", "orders.billing.dlq"], NAMING
    ) == ["orders"]
