"""Kafka share-group DLQs (KIP-1191) written by the real Apache Kafka 4.4 broker, read and replayed.

The dev broker needs nothing extra: 4.4.0 formats with ``share.version=2`` (its latest production
level, ``ShareVersion.SV_2`` -> ``IBP_4_4_IV0``), and the DLQ is set per group
(``errors.deadletterqueue.topic.name``, ``share.delivery.count.limit``) and per topic
(``errors.deadletterqueue.group.enable=true``; the name must start with ``dlq.``), so these
tests touch only their own topics and group. A confluent-kafka ``ShareConsumer`` REJECTs five of
twenty records and RELEASEs one until it passes the delivery-count limit: the broker writes six
DLQ records, which the tools list with their reasons and replay (copy on: the DLQ copy, byte for
byte; copy off: re-read from the source with ``--from-source``).
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from typing import Any

import pytest
from confluent_kafka import AcknowledgeType, Producer, ShareConsumer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)

from kafka_reliable import headers as h
from kafka_reliable.dlq import share_group
from tests.helpers.cli import cli, json_lines
from tests.helpers.kafka import create_topic, headers_dict, read_to_end, unique_name
from tests.helpers.waits import wait_until

pytestmark = pytest.mark.usefixtures("wide_tables")

REJECTED = (1, 4, 7, 10, 13)
POISON = 16  # released until its delivery count passes the limit
LIMIT = 2
N = 20


@dataclass(frozen=True)
class ShareDlq:
    source: str
    dlq: str
    group: str
    sent: dict[int, tuple[bytes, bytes, list[tuple[str, bytes]]]]  # offset -> key, value, headers


def _record(i: int) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """Binary key and value (not UTF-8) and headers, so byte-for-byte means something."""
    return (
        b"k\xff" + bytes([i]),
        b"\x00v\xfe" + bytes(range(i, i + 8)),
        [("app", b"a%d" % i), ("bin", b"\x80")],
    )


def _configure(admin: AdminClient, group: str, dlq: str, *, copy: bool) -> None:
    res = ConfigResource(
        ResourceType.GROUP,
        group,
        incremental_configs=[
            ConfigEntry(
                share_group.GROUP_DLQ_TOPIC, dlq, incremental_operation=AlterConfigOpType.SET
            ),
            ConfigEntry(
                share_group.GROUP_COPY_RECORD,
                str(copy).lower(),
                incremental_operation=AlterConfigOpType.SET,
            ),
            ConfigEntry(
                "share.delivery.count.limit",
                str(LIMIT),
                incremental_operation=AlterConfigOpType.SET,
            ),
            ConfigEntry(
                "share.auto.offset.reset", "earliest", incremental_operation=AlterConfigOpType.SET
            ),
        ],
    )
    for f in admin.incremental_alter_configs([res]).values():
        f.result(timeout=30)


def _high(bootstrap: str, topic: str) -> int:
    from confluent_kafka import Consumer

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_name("wm")})
    try:
        return int(c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1])
    finally:
        c.close()


def _consume_and_reject(bootstrap: str, d: ShareDlq) -> None:
    sc = ShareConsumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": d.group,
            "share.acknowledgement.mode": "explicit",
        }
    )
    sc.subscribe([d.source])
    accepted: set[int] = set()
    poison_seen = 0
    deadline = time.monotonic() + 90
    try:
        while (
            len(accepted) < N - len(REJECTED) - 1 or poison_seen < LIMIT
        ) and time.monotonic() < deadline:
            msgs = sc.poll(1.0)
            for m in msgs:
                assert m.error() is None, m.error()
                o = m.offset()
                if o in REJECTED:
                    sc.acknowledge(m, AcknowledgeType.REJECT)
                elif o == POISON:
                    poison_seen += 1
                    sc.acknowledge(m, AcknowledgeType.RELEASE)
                else:
                    sc.acknowledge(m, AcknowledgeType.ACCEPT)
                    accepted.add(o)
            if msgs:
                sc.commit_sync(30)
    finally:
        sc.close()
    assert len(accepted) == N - len(REJECTED) - 1 and poison_seen == LIMIT
    # the broker writes its DLQ records asynchronously after the acknowledgements
    wait_until(
        lambda: _high(bootstrap, d.dlq) >= len(REJECTED) + 1,
        60,
        lambda: f"{d.dlq} has {_high(bootstrap, d.dlq)} records, wanted 6",
    )


def _share_dlq(admin: AdminClient, bootstrap: str, *, copy: bool) -> ShareDlq:
    u = unique_name("share")
    d = ShareDlq(
        source=create_topic(admin, f"{u}-src"),
        dlq=create_topic(
            admin,
            f"{share_group.DEFAULT_DLQ_PREFIX}{u}",
            config={share_group.TOPIC_DLQ_ENABLE: "true"},
        ),
        group=f"{u}-group",
        sent={i: _record(i) for i in range(N)},
    )
    _configure(admin, d.group, d.dlq, copy=copy)
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for i in range(N):
        k, v, hs = d.sent[i]
        p.produce(d.source, key=k, value=v, headers=hs, partition=0)
    assert p.flush(30) == 0
    _consume_and_reject(bootstrap, d)
    return d


def _listed(
    capsys: pytest.CaptureFixture[str], bootstrap: str, d: ShareDlq
) -> list[dict[str, Any]]:
    code, out, err = cli(capsys, "dlq", "list", d.dlq, "--json", "--bootstrap-servers", bootstrap)
    assert code == 0, err
    rows: list[dict[str, Any]] = json_lines(out)
    assert len(rows) == len(REJECTED) + 1
    by_offset = {r["original_offset"]: r for r in rows}
    assert set(by_offset) == {*REJECTED, POISON}
    for o, r in by_offset.items():
        assert (r["dialect"], r["original_topic"], r["original_partition"]) == (
            "share_group",
            d.source,
            0,
        )
        assert r["extra"] == {"share_group": d.group} and r["notes"] == []
        want = (
            ("delivery_count_exceeded", "DELIVERY_COUNT_EXCEEDED", LIMIT)
            if o == POISON
            else ("rejected", "CLIENT_REJECT", 1)
        )
        assert (r["reason"], r["error_code"], r["retry_count"]) == want
    return rows


def test_copied_share_group_dlq_records_are_listed_and_replayed_byte_for_byte(
    capsys: pytest.CaptureFixture[str],
    kafka_bootstrap: str,
    admin: AdminClient,
) -> None:
    # Given a share group whose DLQ copies the record: 5 rejected, 1 past the delivery limit
    d = _share_dlq(admin, kafka_bootstrap, copy=True)
    # When listed: six records, with their reasons, pointing at the source
    rows = _listed(capsys, kafka_bootstrap, d)
    for r in rows:
        k, v, _ = d.sent[int(r["original_offset"])]
        assert r["headers_only"] is False and r["key"] == "base64:" + base64.b64encode(k).decode()
    code, out, _ = cli(
        capsys, "dlq", "stats", d.dlq, "--json", "--bootstrap-servers", kafka_bootstrap
    )
    stats = json.loads(out)
    assert code == 0 and stats["total_messages"] == 6
    assert stats["reason_breakdown"] == {"rejected": 5, "delivery_count_exceeded": 1}
    # When replayed (no target given: the original topic from __dlq.errors.topic)
    code, out, err = cli(
        capsys, "dlq", "replay", d.dlq, "--yes", "--json", "--bootstrap-servers", kafka_bootstrap
    )
    result = json.loads(out)
    assert code == 0, err
    assert (
        result["replayed"] == 6 and result["by_target"] == {d.source: 6} and result["skipped"] == []
    )
    # Then the source got the six back, key and value byte for byte, in DLQ order
    recs = read_to_end(kafka_bootstrap, d.source)
    assert len(recs) == N + 6
    by_dlq_offset = sorted(rows, key=lambda r: int(r["offset"]))
    order = [int(r["original_offset"]) for r in by_dlq_offset]
    for m, o in zip(recs[N:], order, strict=True):
        k, v, _ = d.sent[o]
        assert (m.key(), m.value()) == (k, v)
        hs = headers_dict(m)
        assert hs[h.REPLAY_COUNT] == b"1" and not [
            n for n in hs if n.startswith(share_group.PREFIX)
        ]
        assert "app" not in hs  # the broker never copies the original headers
    assert _high(kafka_bootstrap, d.dlq) == 6  # nothing written back into the DLQ


@pytest.mark.slow
def test_headers_only_share_group_records_are_refused_then_replayed_from_the_source(
    capsys: pytest.CaptureFixture[str],
    kafka_bootstrap: str,
    admin: AdminClient,
) -> None:
    # Given a share group whose DLQ records carry only headers (copy.record.enable=false)
    d = _share_dlq(admin, kafka_bootstrap, copy=False)
    rows = _listed(capsys, kafka_bootstrap, d)
    assert all(r["headers_only"] and r["key"] is None and r["value"] is None for r in rows)
    first = next(r for r in rows if r["original_offset"] == REJECTED[0])
    at = f"0:{first['offset']}"
    code, out, _ = cli(
        capsys, "dlq", "show", d.dlq, "--offset", at, "--bootstrap-servers", kafka_bootstrap
    )
    assert (
        code == 0 and "replay with --from-source" in out and f"{d.source}[0]@{REJECTED[0]}" in out
    )
    code, out, err = cli(capsys, "dlq", "list", d.dlq, "--bootstrap-servers", kafka_bootstrap)
    assert code == 0 and f"the original is {d.source}[0]@{POISON}: replay with --from-source" in err
    # When replayed plainly: every record refused, each with the one-line reason
    code, out, err = cli(
        capsys, "dlq", "replay", d.dlq, "--yes", "--json", "--bootstrap-servers", kafka_bootstrap
    )
    result = json.loads(out)
    assert code == 5 and result["replayed"] == 0 and result["skipped_unsendable"] == 6
    for s in result["skipped"]:
        assert s["reason"].startswith("headers-only share-group DLQ record (group " + d.group)
        assert (
            s["reason"].endswith("--from-source re-reads it there if still retained")
            and "\n" not in s["reason"]
        )
    assert len(read_to_end(kafka_bootstrap, d.source)) == N
    # Given the source no longer retains offset 1 (deleted up to offset 3)
    admin.delete_records([TopicPartition(d.source, 0, 3)])[TopicPartition(d.source, 0, 3)].result(
        timeout=30
    )
    # When replayed --from-source
    code, out, err = cli(
        capsys,
        "dlq",
        "replay",
        d.dlq,
        "--from-source",
        "--yes",
        "--json",
        "--bootstrap-servers",
        kafka_bootstrap,
    )
    result = json.loads(out)
    # Then five originals are resent with key, value and headers as stored; offset 1 is refused
    assert code == 5, err
    assert result["replayed"] == 5 and result["skipped_unsendable"] == 1
    assert [s["reason"] for s in result["skipped"]] == [
        f"--from-source: {d.source}[0]@1 is no longer retained (the partition starts at offset 3)"
    ]
    recs = read_to_end(kafka_bootstrap, d.source)
    assert len(recs) == N - 3 + 5
    resent = recs[N - 3 :]
    by_key = {k: (o, v, hs) for o, (k, v, hs) in d.sent.items()}
    assert sorted(by_key[m.key()][0] for m in resent) == [4, 7, 10, 13, POISON]
    for m in resent:
        _, v, hs = by_key[m.key()]
        got = m.headers() or []
        assert m.value() == v and [x for x in got if x[0] in ("app", "bin")] == hs
        assert headers_dict(m)[h.REPLAY_COUNT] == b"1"
    # and a second run replays nothing twice
    code, out, _ = cli(
        capsys,
        "dlq",
        "replay",
        d.dlq,
        "--from-source",
        "--yes",
        "--json",
        "--bootstrap-servers",
        kafka_bootstrap,
    )
    assert (
        json.loads(out)["replayed"] == 0
        and len(read_to_end(kafka_bootstrap, d.source)) == N - 3 + 5
    )
